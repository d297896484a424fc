"""FairHuman evaluation: scene generation with a trained module, CLIP score, regional FD, optional scorers.

* :func:`generate_scenes` samples images with the LoRA-adapted UNet (diffusers' ``StableDiffusionPipeline``
  over the base) or with a pose ControlNet (``StableDiffusionControlNetPipeline`` via
  :func:`fp_diffusion.controlnet.build_pipeline`); for an SDXL base (``base.is_sdxl``) with
  ``StableDiffusionXLPipeline`` / ``StableDiffusionXLControlNetPipeline``; image ``i`` uses its own generator seeded with
  ``seeds[i]``, so it depends only on its seed and the settings.
* :func:`clip_score`: ``max(100 · cos(E_img, E_txt), 0)`` per image, the CLIP-score convention of Hessel et
  al. as torchmetrics computes it (its ``CLIPScore`` clamps at 0 the same way), with unit embeddings of an
  :class:`fp_metrics.clip_models.LoadedCLIP`.
* :func:`regional_fd`: the Fréchet distance between features of generated and real face (or hand) crops
  (:func:`fp_diffusion.fairhuman.regions.crop_regions`), :func:`fp_metrics.generative.fid_from_features`.
* :func:`optional_metric`: HPS v2 and ImageReward need their own weights; this looks for them locally and
  says where to put them. Nothing here scores with a model it does not have (no random stand-ins).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fp_core.weights import WeightsNotFoundError, find_weight_file, weights_dir
from fp_diffusion.base.components import BaseComponents
from fp_metrics.clip_models import LoadedCLIP
from fp_metrics.generative import fid_from_features

__all__ = ["OPTIONAL_METRICS", "clip_score", "generate_scenes", "optional_metric", "regional_fd"]

#: name -> (weights file, where it is published): the scorers whose weights must be placed by hand.
OPTIONAL_METRICS: dict[str, tuple[str, str]] = {
    "hps_v2": ("HPS_v2_compressed.pt", "https://huggingface.co/xswu/HPSv2"),
    "image_reward": ("ImageReward.pt", "https://huggingface.co/THUDM/ImageReward"),
}


def clip_score(
    clip: LoadedCLIP, images: torch.Tensor, captions: Sequence[str], *, batch_size: int = 64
) -> torch.Tensor:
    """CLIP score ``[B]`` (float32, CPU) of ``images [B, 3, H, W]`` in ``[0, 1]`` against ``captions``:
    ``max(100 · cos, 0)`` (module docstring)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a [B, 3, H, W] tensor in [0, 1], got {shape}")
    if isinstance(captions, str) or len(captions) != images.shape[0]:
        raise ValueError(f"give one caption per image: {images.shape[0]} images, captions {captions!r}")
    low, high = float(images.min()), float(images.max())
    if low < -1e-4 or high > 1 + 1e-4:
        raise ValueError(f"images must lie in [0, 1], got values in [{low:g}, {high:g}]")
    with torch.no_grad():
        image_emb = clip.encode_images(images, batch_size=batch_size)
        text_emb = clip.encode_texts(list(captions)).to(image_emb.device)
    cosine = (image_emb * text_emb).sum(dim=-1)
    return (100.0 * cosine).clamp_min(0.0).float().cpu()


def regional_fd(generated_features: Any, real_features: Any) -> float:
    """Fréchet distance between ``generated_features [N, D]`` and ``real_features [M, D]`` of region crops
    (each set needs >= 2 rows; tensors or arrays)."""

    def plain(x: Any) -> np.ndarray:
        return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)

    return float(fid_from_features(plain(generated_features), plain(real_features)))


def _scheduler(base: BaseComponents, name: str) -> Any:
    from diffusers import DDIMScheduler, DDPMScheduler, UniPCMultistepScheduler

    classes = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "unipc": UniPCMultistepScheduler}
    if name not in classes:
        raise ValueError(f"scheduler must be one of {sorted(classes)}, got {name!r}")
    return classes[name].from_config(base.noise_scheduler.config)


def _sdxl_pipeline(base: BaseComponents, unet: Any, controlnet: Any | None, scheduler: str) -> Any:
    """``StableDiffusionXLPipeline`` (or ``StableDiffusionXLControlNetPipeline`` with ``controlnet``) over
    ``base``'s networks, no watermarker; an empty negative prompt gives zero embeddings, as in SDXL."""
    from diffusers import StableDiffusionXLControlNetPipeline, StableDiffusionXLPipeline

    parts = {
        "vae": base.vae,
        "text_encoder": base.text_encoder,
        "text_encoder_2": base.text_encoder_2,
        "tokenizer": base.tokenizer,
        "tokenizer_2": base.tokenizer_2,
        "unet": unet,
        "scheduler": _scheduler(base, scheduler),
        "add_watermarker": False,
    }
    if controlnet is None:
        return StableDiffusionXLPipeline(**parts)
    return StableDiffusionXLControlNetPipeline(controlnet=controlnet, **parts)


def _pipeline(base: BaseComponents, module: Any | None, scheduler: str) -> tuple[Any, bool]:
    """``(pipeline, is_controlnet)`` for ``module``: None (the base), an adapted UNet or a ControlNet; the
    SDXL pipelines when ``base.is_sdxl``."""
    from diffusers import ControlNetModel, StableDiffusionPipeline

    from fp_diffusion.controlnet.pipeline import build_pipeline

    if isinstance(module, ControlNetModel):
        if base.is_sdxl:
            return _sdxl_pipeline(base, base.unet, module, scheduler), True
        return build_pipeline(base, module, scheduler=scheduler), True
    unet = base.unet if module is None else module
    if not hasattr(unet, "config") or not hasattr(unet.config, "cross_attention_dim"):
        raise ValueError(
            f"module must be None, a UNet2DConditionModel or a ControlNetModel, got {type(unet)}"
        )
    if base.is_sdxl:
        return _sdxl_pipeline(base, unet, None, scheduler), False
    pipeline = StableDiffusionPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=unet,
        scheduler=_scheduler(base, scheduler),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipeline, False


def generate_scenes(
    base: BaseComponents,
    module: Any | None,
    prompts: Sequence[str],
    conditions: torch.Tensor | None = None,
    *,
    seeds: Sequence[int],
    steps: int = 30,
    guidance_scale: float = 7.5,
    scheduler: str = "ddim",
    resolution: int | None = None,
    negative_prompt: str | None = None,
) -> torch.Tensor:
    """Images ``[N, 3, R, R]`` float32 in ``[0, 1]`` (CPU) for ``prompts`` (N), one seed each.

    Args:
        base: the base networks.
        module: ``None`` (the base UNet), the LoRA-adapted UNet, or a ControlNet (then ``conditions``
            ``[N, 3, H, W]`` in ``[0, 1]``, the pose images, is required).
        seeds: one per prompt; image ``i`` depends only on ``seeds[i]``.
        steps, guidance_scale, scheduler: the sampler (``"ddim"``, ``"ddpm"`` or ``"unipc"``).
        resolution: output side (default the base's).
    """
    prompts = [str(p) for p in prompts]
    if len(seeds) != len(prompts) or not prompts:
        raise ValueError(f"give one seed per prompt: {len(prompts)} prompts, {len(seeds)} seeds")
    pipeline, controlled = _pipeline(base, module, scheduler)
    if controlled and (conditions is None or conditions.dim() != 4 or len(conditions) != len(prompts)):
        shape = None if conditions is None else tuple(conditions.shape)
        raise ValueError(f"a ControlNet needs conditions [N={len(prompts)}, 3, H, W], got {shape}")
    size = resolution or base.resolution
    device = base.unet.device
    pipeline.set_progress_bar_config(disable=True)
    images = []
    for i, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True)):
        extra: dict[str, Any] = {}
        if controlled:
            extra["image"] = conditions[i : i + 1].to(device)  # type: ignore[index]
        out = pipeline(
            prompt,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            negative_prompt=negative_prompt,
            generator=torch.Generator(device=device).manual_seed(int(seed)),
            output_type="pt",
            **extra,
        )
        images.append(out.images.float().cpu())
    return torch.cat(images).clamp(0, 1)


def optional_metric(name: str) -> str | None:
    """``None`` when the weights of scorer ``name`` (``"hps_v2"`` or ``"image_reward"``) are found locally
    (``$FP_WEIGHTS_DIR`` / ``~/.cache/fp``), else ``"unavailable: place <file> at <path> (from <url>)"``.

    Only the weights are looked up here; scoring with them needs the scorer's own package, which fp-diffusion
    does not depend on. A missing scorer is reported, never replaced by a stand-in.
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in OPTIONAL_METRICS:
        raise ValueError(f"unknown optional metric {name!r}; known: {sorted(OPTIONAL_METRICS)}")
    filename, url = OPTIONAL_METRICS[key]
    try:
        find_weight_file(filename, url, what=f"{key} weights")
    except WeightsNotFoundError:
        return f"unavailable: place {filename} at {weights_dir() / filename} (from {url})"
    return None
