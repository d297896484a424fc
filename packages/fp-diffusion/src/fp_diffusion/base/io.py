"""A diffusion base on disk: diffusers' Stable Diffusion layout plus an fp manifest; loading real SD offline.

:func:`save_base` writes, atomically as a whole::

    model_index.json                 StableDiffusionPipeline's (no safety checker / feature extractor)
    vae/ unet/ text_encoder/         config.json + safetensors weights
    tokenizer/ scheduler/            CLIP tokenizer files, the DDPM training scheduler's config
    manifest.json                    kind "diffusion-base", resolution, latent_scale, params = the
                                     DiffusionBaseConfig, configs = each component's config

so ``StableDiffusionPipeline.from_pretrained(directory)`` loads it. :func:`load_base` reads such a folder,
any SD-layout folder, or a Hugging Face hub id (default :data:`SD15_HUB_ID`) from the local caches only
(``local_files_only=True``, never a network call); a missing file raises
:class:`fp_core.weights.WeightsNotFoundError` naming the repo, the missing component files, the hub cache,
``$FP_WEIGHTS_DIR`` and the ``hf download`` command.

TODO(SDXL): :data:`SDXL_HUB_ID` has two text encoders / tokenizers, which :class:`BaseComponents` does not
hold; its files are looked up (so the error path names them) but loading it raises ``NotImplementedError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fp_core.atomic import atomic_output_dir
from fp_core.manifest import MANIFEST_FILENAME, read_manifest, write_manifest
from fp_core.weights import WeightsNotFoundError, hub_cache_dir, hub_file, weights_dir
from fp_diffusion.base.components import BaseComponents
from fp_diffusion.base.tokenizer import BOS_TOKEN, VOCAB_SIZE, write_clip_tokenizer_files

__all__ = [
    "BASE_KIND",
    "SD15_HUB_ID",
    "SDXL_HUB_ID",
    "SDXL_VAE_FIX",
    "component_files",
    "load_base",
    "save_base",
]

BASE_KIND = "diffusion-base"
SD15_HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SDXL_HUB_ID = "stabilityai/stable-diffusion-xl-base-1.0"
SDXL_VAE_FIX = "madebyollin/sdxl-vae-fp16-fix"
_WEIGHTS = "diffusion_pytorch_model.safetensors"
_SD_FILES = {
    "vae": ("vae/config.json", f"vae/{_WEIGHTS}"),
    "unet": ("unet/config.json", f"unet/{_WEIGHTS}"),
    "text_encoder": ("text_encoder/config.json", "text_encoder/model.safetensors"),
    "tokenizer": ("tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json"),
    "scheduler": ("scheduler/scheduler_config.json",),
}
_SDXL_EXTRA = {
    "text_encoder_2": ("text_encoder_2/config.json", "text_encoder_2/model.safetensors"),
    "tokenizer_2": ("tokenizer_2/vocab.json", "tokenizer_2/merges.txt", "tokenizer_2/tokenizer_config.json"),
}


def component_files(repo_id: str) -> dict[str, tuple[str, ...]]:
    """The files ``load_base`` needs per component of the SD-layout repo ``repo_id`` (SDXL: two more)."""
    files = {"pipeline": ("model_index.json",), **_SD_FILES}
    return {**files, **_SDXL_EXTRA} if repo_id == SDXL_HUB_ID else files


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(config), default=str))


def _write_slow_tokenizer_files(folder: Path, tokenizer: Any) -> None:
    """transformers 5 saves only ``tokenizer.json``; SD's layout (and transformers 4's slow CLIPTokenizer)
    also has ``vocab.json`` + ``merges.txt``, written here when the tokenizer has CLIP's vocabulary."""
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return
    if len(tokenizer) == VOCAB_SIZE and tokenizer.convert_tokens_to_ids(BOS_TOKEN) == VOCAB_SIZE - 2:
        write_clip_tokenizer_files(folder)


def save_base(
    components: BaseComponents,
    directory: str | os.PathLike[str],
    *,
    config: Any | None = None,
    extra: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``components`` to ``directory`` (replaced atomically) in diffusers' layout with a manifest.

    ``config`` (a :class:`~fp_diffusion.base.config.DiffusionBaseConfig`, or None) becomes the manifest's
    ``params``; ``inputs`` its ``inputs``; ``extra`` (e.g. the training history) more manifest fields.
    """
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=components.noise_scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    configs = {
        "vae": _jsonable(components.vae.config),
        "unet": _jsonable(components.unet.config),
        "text_encoder": _jsonable(components.text_encoder.config.to_dict()),
        "scheduler": _jsonable(components.noise_scheduler.config),
    }
    directory = Path(directory)
    with atomic_output_dir(directory) as tmp:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        _write_slow_tokenizer_files(tmp / "tokenizer", components.tokenizer)
        write_manifest(
            tmp,
            BASE_KIND,
            inputs=inputs,
            params=config.to_dict() if config is not None else {},
            resolution=int(components.resolution),
            latent_scale=components.latent_scale,
            tokenizer_max_length=int(components.tokenizer.model_max_length),
            configs=configs,
            **dict(extra or {}),
        )
    return directory


def _missing_error(repo_id: str, missing: list[str]) -> WeightsNotFoundError:
    cache = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    return WeightsNotFoundError(
        f"diffusion base {repo_id}: {len(missing)} component file(s) are not available locally: "
        f"{', '.join(missing)}. fp never downloads at run time. Either (a) on a connected machine run "
        f"`hf download {repo_id}` and copy its Hugging Face cache here (looked in {cache}; the cache is "
        f"$HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), or (b) place the files under "
        f"{weights_dir() / repo_id} ($FP_WEIGHTS_DIR/{repo_id}/<file>, default ~/.cache/fp), or (c) pass "
        f"the path of a folder in the Stable Diffusion layout."
    )


def _resolve_hub(repo_id: str) -> dict[str, Path]:
    """Component name -> the local folder holding it, for ``repo_id``; raises naming all missing files."""
    folders: dict[str, Path] = {}
    missing: list[str] = []
    for component, files in component_files(repo_id).items():
        for name in files:
            try:
                found = hub_file(repo_id, name, what=f"{repo_id} {component}")
            except WeightsNotFoundError:
                missing.append(name)
                continue
            folders.setdefault(component, found.parent)
    if missing:
        raise _missing_error(repo_id, missing)
    return folders


def _resolve_dir(directory: Path) -> dict[str, Path]:
    """Component name -> its subfolder of the SD-layout ``directory``; raises naming the missing files.

    Weights may be sharded or variant-named (``diffusion_pytorch_model*.safetensors``); the tokenizer needs
    ``tokenizer_config.json`` and either ``tokenizer.json`` or ``vocab.json`` + ``merges.txt``.
    """
    missing = [
        name
        for name in ("model_index.json", "vae/config.json", "unet/config.json", "text_encoder/config.json")
        + ("tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json")
        if not (directory / name).is_file()
    ]
    for sub, pattern in (("vae", "diffusion_pytorch_model*"), ("unet", "diffusion_pytorch_model*")) + (
        ("text_encoder", "model*"),
    ):
        if not any((directory / sub).glob(f"{pattern}.safetensors")):
            missing.append(f"{sub}/{pattern.rstrip('*')}.safetensors")
    tokenizer = directory / "tokenizer"
    if not (tokenizer / "tokenizer.json").is_file() and not (
        (tokenizer / "vocab.json").is_file() and (tokenizer / "merges.txt").is_file()
    ):
        missing.append("tokenizer/tokenizer.json (or tokenizer/vocab.json + tokenizer/merges.txt)")
    if missing:
        raise FileNotFoundError(
            f"{directory} is not a Stable Diffusion layout folder: it lacks {', '.join(missing)}"
        )
    return {name: directory / name for name in _SD_FILES} | {"pipeline": directory}


def _load_folders(folders: Mapping[str, Path], dtype: torch.dtype | None) -> tuple[Any, ...]:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(str(folders["vae"]), torch_dtype=dtype, local_files_only=True)
    unet = UNet2DConditionModel.from_pretrained(
        str(folders["unet"]), torch_dtype=dtype, local_files_only=True
    )
    text_encoder = CLIPTextModel.from_pretrained(
        str(folders["text_encoder"]), dtype=dtype, local_files_only=True
    )
    tokenizer = CLIPTokenizer.from_pretrained(str(folders["tokenizer"]), local_files_only=True)
    scheduler_config = DDPMScheduler.load_config(str(folders["scheduler"]), local_files_only=True)
    return vae, unet, text_encoder, tokenizer, DDPMScheduler.from_config(scheduler_config)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not os.path.isabs(name)


def load_base(
    path_or_hub_id: str | os.PathLike[str] = SD15_HUB_ID, *, dtype: torch.dtype | None = None
) -> BaseComponents:
    """The :class:`BaseComponents` (eval mode) of a folder in SD's layout or of a hub id, offline only.

    The resolution is the manifest's for folders :func:`save_base` wrote, else the UNet's ``sample_size``
    times the VAE factor (512 for SD 1.5). Raises ``WeightsNotFoundError`` (hub id not cached),
    ``FileNotFoundError`` (a folder lacking files or a path that does not exist) or ``NotImplementedError``
    (SDXL, TODO).
    """
    name = os.fspath(path_or_hub_id)
    path = Path(name).expanduser()
    if path.is_dir():
        folders = _resolve_dir(path)
    elif _looks_like_hub_id(name) and not path.exists():
        folders = _resolve_hub(name)
    else:
        raise FileNotFoundError(
            f"{name} is neither a folder in the Stable Diffusion layout nor a hub id 'owner/name'"
        )
    if name == SDXL_HUB_ID:
        raise NotImplementedError(
            f"TODO: loading SDXL ({SDXL_HUB_ID}, two text encoders; VAE fix {SDXL_VAE_FIX})"
        )
    vae, unet, text_encoder, tokenizer, scheduler = _load_folders(folders, dtype)
    resolution = int(unet.config.sample_size) * 2 ** (len(vae.config.block_out_channels) - 1)
    if path.is_dir() and (path / MANIFEST_FILENAME).is_file():
        resolution = int(read_manifest(path, BASE_KIND, required=("resolution",))["resolution"])
    parts = BaseComponents(vae, unet, text_encoder, tokenizer, scheduler, name, resolution)
    for module in (vae, unet, text_encoder):
        module.eval()
    return parts
