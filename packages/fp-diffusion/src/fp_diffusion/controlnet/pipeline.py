"""Generation with a ControlNet: diffusers' ``StableDiffusionControlNetPipeline`` over a base, and loading.

``generate_from_maps`` gives each image its own ``torch.Generator`` seeded with its own seed, so image ``i``
depends only on ``seeds[i]`` (and the settings), not on its batch or position. ``load_controlnet`` reads a
``save_pretrained`` directory or ``lllyasviel/control_v11p_sd15_seg`` from the local cache only; nothing here
downloads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fp_core.weights import WeightsNotFoundError, hub_file, weights_dir
from fp_diffusion.base.components import BaseComponents
from fp_diffusion.controlnet.conditioning import labels_to_condition

__all__ = [
    "CONTROLNET_FILES",
    "SCHEDULERS",
    "SEG_CONTROLNET_HUB_ID",
    "build_pipeline",
    "generate_from_maps",
    "load_controlnet",
    "vae_factor",
]

SEG_CONTROLNET_HUB_ID = "lllyasviel/control_v11p_sd15_seg"
"""The ADE20K-segmentation ControlNet for SD 1.5 that paper 1 fine-tunes."""
CONTROLNET_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
SCHEDULERS = ("ddim", "ddpm", "unipc")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def vae_factor(vae: Any) -> int:
    """How much the VAE downsamples: ``2 ** (len(vae.config.block_out_channels) - 1)`` (8 for SD)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def _scheduler(base: BaseComponents, name: str) -> Any:
    from diffusers import DDIMScheduler, DDPMScheduler, UniPCMultistepScheduler

    classes = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "unipc": UniPCMultistepScheduler}
    if name not in classes:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {name!r}")
    return classes[name].from_config(base.noise_scheduler.config)


def build_pipeline(base: BaseComponents, controlnet: Any, *, scheduler: str = "ddim") -> Any:
    """A ``StableDiffusionControlNetPipeline`` of ``base``'s networks and ``controlnet`` (no safety checker),
    sampling with ``scheduler`` (``"ddim"``, ``"ddpm"`` or ``"unipc"``, built from the base's scheduler
    config)."""
    from diffusers import StableDiffusionControlNetPipeline

    return StableDiffusionControlNetPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=base.unet,
        controlnet=controlnet,
        scheduler=_scheduler(base, scheduler),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _prompts(prompts: str | Sequence[str], count: int) -> list[str]:
    if isinstance(prompts, str):
        return [prompts] * count
    prompts = [str(p) for p in prompts]
    if len(prompts) != count:
        raise ValueError(f"got {len(prompts)} prompts for {count} label maps; give one each or one string")
    return prompts


def generate_from_maps(
    pipeline: Any,
    labels: torch.Tensor | np.ndarray,
    prompts: str | Sequence[str],
    *,
    seeds: Sequence[int],
    steps: int = 20,
    guidance_scale: float = 7.5,
    controlnet_conditioning_scale: float = 1.0,
    batch_size: int = 8,
    progress: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Faces generated from face-parsing maps: ``labels`` int ``[B, H, W]`` -> float ``[B, 3, R, R]`` in
    ``[0, 1]`` on the CPU (``R``: the pipeline's UNet sample size times the VAE factor).

    Each map is drawn in the face palette at ``R`` (nearest neighbour), paired with its prompt (or one prompt
    for all) and sampled with ``steps`` steps from a generator seeded with ``seeds[i]``. ``on_batch(done,
    total)`` reports progress between batches.
    """
    labels = torch.as_tensor(np.asarray(labels)) if not isinstance(labels, torch.Tensor) else labels
    if labels.ndim != 3:
        raise ValueError(f"labels must be [B, H, W], got shape {tuple(labels.shape)}")
    count = int(labels.shape[0])
    if len(seeds) != count:
        raise ValueError(f"got {len(seeds)} seeds for {count} label maps")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = _prompts(prompts, count)
    resolution = int(pipeline.unet.config.sample_size) * vae_factor(pipeline.vae)
    conditions = labels_to_condition(labels, resolution)
    pipeline.set_progress_bar_config(disable=not progress)
    device = pipeline.unet.device
    dtype = pipeline.controlnet.dtype
    images = []
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds[start:stop]]
        result = pipeline(
            prompt=texts[start:stop],
            image=conditions[start:stop].to(device=device, dtype=dtype),
            height=resolution,
            width=resolution,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            controlnet_conditioning_scale=controlnet_conditioning_scale,
            generator=generators,
            output_type="pt",
        )
        images.append(result.images.float().cpu().clamp(0, 1))
        if on_batch is not None:
            on_batch(stop, count)
    return torch.cat(images)


def _missing_hub_files(repo_id: str) -> tuple[dict[str, Path], list[str]]:
    found, errors = {}, []
    for filename in CONTROLNET_FILES:
        try:
            found[filename] = hub_file(repo_id, filename, what=f"ControlNet {repo_id}")
        except WeightsNotFoundError as error:
            errors.append(str(error))
    return found, errors


def load_controlnet(path_or_hub_id: str | os.PathLike[str], *, torch_dtype: torch.dtype | None = None) -> Any:
    """A ``ControlNetModel`` from a ``save_pretrained`` directory or a hub id in the local cache only.

    A hub id (e.g. :data:`SEG_CONTROLNET_HUB_ID`) is looked up in the Hugging Face cache, then in
    ``$FP_WEIGHTS_DIR/<repo_id>/`` (``fp_core.weights.hub_file``); both of :data:`CONTROLNET_FILES` must be
    there. Raises ``fp_core.weights.WeightsNotFoundError`` naming the repo, the missing files, both places and
    the ``hf download`` command.
    """
    from diffusers import ControlNetModel

    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        missing = [name for name in CONTROLNET_FILES if not (path / name).is_file()]
        if missing:
            raise WeightsNotFoundError(
                f"{path} is not a saved ControlNet: {', '.join(missing)} missing (expected "
                f"{', '.join(CONTROLNET_FILES)}, as ControlNetModel.save_pretrained writes)"
            )
        return ControlNetModel.from_pretrained(path, torch_dtype=torch_dtype, local_files_only=True)
    repo_id = str(path_or_hub_id)
    if not _HUB_ID.match(repo_id):
        raise WeightsNotFoundError(
            f"{repo_id!r} is neither a directory nor a Hugging Face repo id (owner/name)"
        )
    found, errors = _missing_hub_files(repo_id)
    if errors:
        missing = [name for name in CONTROLNET_FILES if name not in found]
        raise WeightsNotFoundError(
            f"ControlNet {repo_id}: {', '.join(missing)} not available locally (needed: "
            f"{', '.join(CONTROLNET_FILES)}; fp never downloads; fetch with `hf download {repo_id} "
            f"{' '.join(CONTROLNET_FILES)}` on a connected machine, then copy the HF cache here or place the "
            f"files under {weights_dir() / repo_id} ($FP_WEIGHTS_DIR/{repo_id}/)).\n" + "\n".join(errors)
        )
    folders = {p.parent for p in found.values()}
    if len(folders) != 1:
        raise WeightsNotFoundError(
            f"ControlNet {repo_id}: its files are in different folders ({', '.join(map(str, sorted(folders)))}); "
            f"put {', '.join(CONTROLNET_FILES)} together in one snapshot or under {weights_dir() / repo_id}"
        )
    return ControlNetModel.from_pretrained(folders.pop(), torch_dtype=torch_dtype, local_files_only=True)
