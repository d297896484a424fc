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

SDXL: an SDXL base is saved by ``StableDiffusionXLPipeline`` (``text_encoder_2/`` and ``tokenizer_2/``
more; ``configs`` gains ``text_encoder_2``). A folder or cached repo whose ``model_index.json`` names ``text_encoder_2`` (and :data:`SDXL_HUB_ID`
always) also needs ``text_encoder_2/`` (CLIPTextModelWithProjection) and ``tokenizer_2/``; the result has
:attr:`BaseComponents.is_sdxl`. For :data:`SDXL_HUB_ID` the VAE is :data:`SDXL_VAE_FIX` (the same
latents, fine-tuned so its activations do not overflow in fp16) when that repo is cached; else SDXL's own
VAE with a warning (in fp16 it gives NaN / black images: keep that VAE in float32 or bfloat16).
"""

from __future__ import annotations

import json
import os
import warnings
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


_VAE_FIX_FILES = ("config.json", f"{_WEIGHTS}")


def component_files(repo_id: str) -> dict[str, tuple[str, ...]]:
    """The files ``load_base`` needs per component of the SD-layout repo ``repo_id`` (SDXL: two more)."""
    files = {"pipeline": ("model_index.json",), **_SD_FILES}
    return {**files, **_SDXL_EXTRA} if repo_id == SDXL_HUB_ID else files


def _index_is_sdxl(model_index: Path) -> bool:
    """Whether the ``model_index.json`` at ``model_index`` names a second text encoder (SDXL's layout)."""
    try:
        index = json.loads(model_index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FileNotFoundError(f"{model_index} is not a readable model_index.json: {error}") from error
    entry = index.get("text_encoder_2") if isinstance(index, dict) else None
    return isinstance(entry, list) and any(part is not None for part in entry)


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(config), default=str))


def _write_slow_tokenizer_files(folder: Path, tokenizer: Any) -> None:
    """transformers 5 saves only ``tokenizer.json``; SD's layout (and transformers 4's slow CLIPTokenizer)
    also has ``vocab.json`` + ``merges.txt``, written here when the tokenizer has CLIP's vocabulary."""
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return
    if len(tokenizer) == VOCAB_SIZE and tokenizer.convert_tokens_to_ids(BOS_TOKEN) == VOCAB_SIZE - 2:
        write_clip_tokenizer_files(folder)


def _pipeline_to_save(components: BaseComponents) -> Any:
    """``StableDiffusionPipeline`` (no safety checker) or, for SDXL, ``StableDiffusionXLPipeline``."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if components.is_sdxl:
        return StableDiffusionXLPipeline(
            vae=components.vae,
            text_encoder=components.text_encoder,
            text_encoder_2=components.text_encoder_2,
            tokenizer=components.tokenizer,
            tokenizer_2=components.tokenizer_2,
            unet=components.unet,
            scheduler=components.noise_scheduler,
            add_watermarker=False,
        )
    return StableDiffusionPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=components.noise_scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_base(
    components: BaseComponents,
    directory: str | os.PathLike[str],
    *,
    config: Any | None = None,
    extra: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``components`` to ``directory`` (replaced atomically) in diffusers' layout with a manifest.

    An SDXL base (``components.is_sdxl``) is written by ``StableDiffusionXLPipeline`` (no watermarker).
    ``config`` (a :class:`~fp_diffusion.base.config.DiffusionBaseConfig`, or None) becomes the manifest's
    ``params``; ``inputs`` its ``inputs``; ``extra`` (e.g. the training history) more manifest fields.
    """
    pipe = _pipeline_to_save(components)
    configs = {
        "vae": _jsonable(components.vae.config),
        "unet": _jsonable(components.unet.config),
        "text_encoder": _jsonable(components.text_encoder.config.to_dict()),
        "scheduler": _jsonable(components.noise_scheduler.config),
    }
    if components.is_sdxl:
        configs["text_encoder_2"] = _jsonable(components.text_encoder_2.config.to_dict())
    directory = Path(directory)
    with atomic_output_dir(directory) as tmp:
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        _write_slow_tokenizer_files(tmp / "tokenizer", components.tokenizer)
        if components.is_sdxl:
            _write_slow_tokenizer_files(tmp / "tokenizer_2", components.tokenizer_2)
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


def _find_hub(
    repo_id: str, files: Mapping[str, tuple[str, ...]], folders: dict[str, Path], missing: list[str]
) -> None:
    """Add each component's folder to ``folders`` and each file not found to ``missing``."""
    for component, names in files.items():
        for name in names:
            try:
                found = hub_file(repo_id, name, what=f"{repo_id} {component}")
            except WeightsNotFoundError:
                missing.append(name)
                continue
            folders.setdefault(component, found.parent)


def _resolve_hub(repo_id: str) -> dict[str, Path]:
    """Component name -> the local folder holding it, for ``repo_id``; raises naming all missing files.

    A repo other than :data:`SDXL_HUB_ID` whose ``model_index.json`` names ``text_encoder_2`` needs the
    SDXL components too."""
    folders: dict[str, Path] = {}
    missing: list[str] = []
    _find_hub(repo_id, component_files(repo_id), folders, missing)
    index = folders.get("pipeline")
    if "text_encoder_2" not in folders and index is not None and _index_is_sdxl(index / "model_index.json"):
        _find_hub(repo_id, _SDXL_EXTRA, folders, missing)
    if missing:
        raise _missing_error(repo_id, missing)
    return folders


def _resolve_dir(directory: Path) -> dict[str, Path]:
    """Component name -> its subfolder of the SD-layout ``directory``; raises naming the missing files.

    Weights may be sharded or variant-named (``diffusion_pytorch_model*.safetensors``); the tokenizer needs
    ``tokenizer_config.json`` and either ``tokenizer.json`` or ``vocab.json`` + ``merges.txt``.
    """
    sdxl = (directory / "model_index.json").is_file() and _index_is_sdxl(directory / "model_index.json")
    encoders, tokenizers = ("text_encoder", "text_encoder_2") if sdxl else ("text_encoder",), ["tokenizer"]
    tokenizers += ["tokenizer_2"] if sdxl else []
    missing = [
        name
        for name in ("model_index.json", "vae/config.json", "unet/config.json")
        + tuple(f"{sub}/config.json" for sub in encoders)
        + tuple(f"{sub}/tokenizer_config.json" for sub in tokenizers)
        + ("scheduler/scheduler_config.json",)
        if not (directory / name).is_file()
    ]
    for sub, pattern in (("vae", "diffusion_pytorch_model*"), ("unet", "diffusion_pytorch_model*")) + tuple(
        (encoder, "model*") for encoder in encoders
    ):
        if not any((directory / sub).glob(f"{pattern}.safetensors")):
            missing.append(f"{sub}/{pattern.rstrip('*')}.safetensors")
    for sub in tokenizers:
        tokenizer = directory / sub
        if not (tokenizer / "tokenizer.json").is_file() and not (
            (tokenizer / "vocab.json").is_file() and (tokenizer / "merges.txt").is_file()
        ):
            missing.append(f"{sub}/tokenizer.json (or {sub}/vocab.json + {sub}/merges.txt)")
    if missing:
        kind = "an SDXL" if sdxl else "a Stable Diffusion"
        raise FileNotFoundError(f"{directory} is not {kind} layout folder: it lacks {', '.join(missing)}")
    names = [*_SD_FILES, *(_SDXL_EXTRA if sdxl else ())]
    return {name: directory / name for name in names} | {"pipeline": directory}


def _vae_fix_folder() -> Path | None:
    """The cached :data:`SDXL_VAE_FIX` folder, or None after a warning naming what is missing."""
    found: list[Path] = []
    missing: list[str] = []
    for name in _VAE_FIX_FILES:
        try:
            found.append(hub_file(SDXL_VAE_FIX, name, what=f"SDXL VAE fix {SDXL_VAE_FIX}"))
        except WeightsNotFoundError:
            missing.append(name)
    if not missing and len({path.parent for path in found}) == 1:
        return found[0].parent
    warnings.warn(
        f"{SDXL_VAE_FIX} is not cached locally ({', '.join(missing) or 'files in different folders'}): "
        f"using {SDXL_HUB_ID}'s own VAE, whose activations overflow in float16 (NaN / black images); keep the "
        f"VAE in float32 or bfloat16, or fetch the fix with `hf download {SDXL_VAE_FIX}` on a connected "
        f"machine and copy it into the hub cache ({hub_cache_dir()}) or {weights_dir() / SDXL_VAE_FIX}",
        stacklevel=3,
    )
    return None


def _load_text_encoder_2(folders: Mapping[str, Path], dtype: torch.dtype | None) -> tuple[Any, Any]:
    """``(CLIPTextModelWithProjection, CLIPTokenizer)`` of an SDXL layout, or ``(None, None)``."""
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    if "text_encoder_2" not in folders:
        return None, None
    encoder = CLIPTextModelWithProjection.from_pretrained(
        str(folders["text_encoder_2"]), dtype=dtype, local_files_only=True
    )
    return encoder, CLIPTokenizer.from_pretrained(str(folders["tokenizer_2"]), local_files_only=True)


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
    times the VAE factor (512 for SD 1.5, 1024 for SDXL). An SDXL layout (module docstring) gives a base with
    ``text_encoder_2`` / ``tokenizer_2``; :data:`SDXL_HUB_ID` takes the VAE of :data:`SDXL_VAE_FIX` when
    cached (else its own, with a warning). Raises ``WeightsNotFoundError`` (hub id not cached: every missing
    file named) or ``FileNotFoundError`` (a folder lacking files or a path that does not exist).
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
    if name == SDXL_HUB_ID and not path.is_dir():
        fix = _vae_fix_folder()
        folders = {**folders, "vae": fix} if fix is not None else folders
    vae, unet, text_encoder, tokenizer, scheduler = _load_folders(folders, dtype)
    text_encoder_2, tokenizer_2 = _load_text_encoder_2(folders, dtype)
    resolution = int(unet.config.sample_size) * 2 ** (len(vae.config.block_out_channels) - 1)
    if path.is_dir() and (path / MANIFEST_FILENAME).is_file():
        resolution = int(read_manifest(path, BASE_KIND, required=("resolution",))["resolution"])
    parts = BaseComponents(
        vae, unet, text_encoder, tokenizer, scheduler, name, resolution, text_encoder_2, tokenizer_2
    )
    for module in (vae, unet, text_encoder, text_encoder_2):
        if module is not None:
            module.eval()
    return parts
