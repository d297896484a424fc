"""Loading a CLIP model by path or by name, offline: the embedded (trained here) CLIP and open_clip's real ones.

Two kinds of source, one loader (:func:`load_clip`) and one result (:class:`LoadedCLIP`):

* **A directory written by** :func:`save_clip`: a small open_clip model trained by fp (``fp_qdgs.embedded_clip``)
  in open_clip's hf-hub layout, ``open_clip_config.json`` (``{"model_cfg": ..., "preprocess_cfg": ...}``) and
  ``open_clip_model.safetensors``, plus an fp ``manifest.json`` (kind ``"embedded-clip"``) naming the tokenizer
  (open_clip's bundled BPE tokenizer of a built-in model name, default ``"ViT-B-32"``: no download) and the
  context length. ``open_clip.create_model("local-dir:<dir>")`` reads the same directory.
* **An open_clip name**, ``"<model>"`` (tag ``"openai"``) or ``"<model>/<tag>"``, e.g. ``"ViT-B-32-quickgelu"``:
  the tag's weights are taken from the local caches only, through :func:`fp_core.weights.hub_file` (the Hugging
  Face hub cache, or ``$FP_WEIGHTS_DIR/<repo_id>/<file>``) for the hf-hub repo open_clip's pretrained registry
  names for the tag (``open_clip_model.safetensors``, else ``open_clip_pytorch_model.bin``), then
  ``$FP_WEIGHTS_DIR/open_clip-<model>-<tag>.bin`` (the file name :class:`fp_metrics.CLIPScore` uses). A missing
  file raises :class:`~fp_core.weights.WeightsNotFoundError` naming the file, the places searched and the
  ``hf download`` command. The tag's QuickGELU flag and its mean / std are applied. Nothing opens a connection.

Images go in as ``[B, 3, H, W]`` in ``[0, 1]``; :func:`preprocess_images` resizes the shorter side to the model's
input size (bicubic, antialiased when shrinking), centre-crops and normalises, differentiably; the same
computation as ``fp_qdgs.clip_model.preprocess_for_clip`` (fp-metrics sits below fp-qdgs, so it has its own).
open_clip is imported inside the functions (fp-metrics' ``clip`` extra).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fp_core.atomic import atomic_output_dir, write_json
from fp_core.manifest import ManifestError, read_manifest, write_manifest
from fp_core.weights import WeightsNotFoundError, find_weight_file, hub_file, weights_dir

__all__ = [
    "CONFIG_FILENAME",
    "EMBEDDED_CLIP_KIND",
    "OPENAI_MEAN",
    "OPENAI_STD",
    "WEIGHTS_FILENAME",
    "LoadedCLIP",
    "load_clip",
    "preprocess_images",
    "save_clip",
]

EMBEDDED_CLIP_KIND = "embedded-clip"
CONFIG_FILENAME = "open_clip_config.json"  # open_clip's HF_CONFIG_NAME
WEIGHTS_FILENAME = "open_clip_model.safetensors"  # open_clip's HF_SAFE_WEIGHTS_NAME
_BIN_WEIGHTS_FILENAME = "open_clip_pytorch_model.bin"  # open_clip's HF_WEIGHTS_NAME
_FORMAT_VERSION = 1
#: OpenAI CLIP's per-channel pixel mean and standard deviation (RGB in [0, 1]); the embedded CLIP uses them too.
OPENAI_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError as err:
        raise ImportError(
            "open_clip is not installed; install it with `pip install fp-metrics[clip]`"
        ) from err
    return open_clip


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def preprocess_images(
    images: torch.Tensor,
    size: int,
    mean: Sequence[float] = OPENAI_MEAN,
    std: Sequence[float] = OPENAI_STD,
) -> torch.Tensor:
    """CLIP preprocessing, differentiable: ``[B, 3, H, W]`` in ``[0, 1]`` -> ``[B, 3, size, size]`` normalised.

    Resize so the shorter side is ``size`` (bicubic, antialiased when shrinking, like CLIP's PIL resize),
    centre-crop to ``size x size``, then ``(x - mean) / std`` per channel.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must have shape [B, 3, H, W], got {shape}")
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) != (h, w):
        images = F.interpolate(
            images, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=scale < 1.0
        )
    top, left = (new_h - size) // 2, (new_w - size) // 2
    images = images[..., top : top + size, left : left + size]
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - m) / s


@dataclass(frozen=True)
class LoadedCLIP:
    """A frozen CLIP model with its tokenizer and preprocessing.

    Attributes:
        model: an open_clip ``CLIP`` in eval mode, every parameter with ``requires_grad=False``.
        tokenizer: ``list of P strings -> tokens [P, context_length]``.
        image_size: the model's (square) input size.
        mean, std: the per-channel normalisation of its inputs.
        name: where it came from, ``"embedded:<absolute dir>"`` or ``"<model>/<tag>"``.
    """

    model: torch.nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str

    @property
    def device(self) -> torch.device:
        """The device the model's parameters live on."""
        return next(iter(self.model.parameters())).device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[0, 1]`` -> ``[B, 3, S, S]`` normalised model inputs (differentiable)."""
        return preprocess_images(images, self.image_size, self.mean, self.std)

    def encode_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Unit image embeddings ``[B, D]`` of ``images [B, 3, H, W]`` in ``[0, 1]`` (differentiable).

        Runs ``batch_size`` images at a time on the model's device; the result is float32 on that device.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        device = self.device
        out = [
            _unit(self.model.encode_image(self.preprocess(images[i : i + batch_size].to(device))).float())
            for i in range(0, images.shape[0], batch_size)
        ]
        if not out:
            raise ValueError("images is empty (shape [0, 3, H, W]); give at least one image")
        return torch.cat(out)

    @torch.no_grad()
    def encode_texts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unit text embeddings ``[P, D]`` of ``prompts`` (no gradient: text is embedded once, up front)."""
        if isinstance(prompts, str) or not prompts:
            raise ValueError(f"prompts must be a non-empty sequence of strings, got {prompts!r}")
        tokens = self.tokenizer(list(prompts)).to(self.device)
        return _unit(self.model.encode_text(tokens).float())


def _frozen(model: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _model_cfg_of(model: torch.nn.Module, model_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = model_cfg if model_cfg is not None else getattr(model, "fp_model_cfg", None)
    if cfg is None:
        raise ValueError(
            f"save_clip needs the open_clip model_cfg of this {type(model).__name__}: pass model_cfg=..., or "
            f"build the model with fp_qdgs.embedded_clip.build_embedded_clip (which records it as fp_model_cfg)"
        )
    missing = [key for key in ("embed_dim", "vision_cfg", "text_cfg") if key not in cfg]
    if missing:
        raise ValueError(
            f"model_cfg lacks {missing}; an open_clip model_cfg needs embed_dim, vision_cfg, text_cfg"
        )
    return json.loads(json.dumps(dict(cfg)))


def save_clip(
    model: torch.nn.Module,
    directory: str | os.PathLike[str],
    *,
    tokenizer: str = "ViT-B-32",
    context_length: int,
    extra: Mapping[str, Any] | None = None,
    model_cfg: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` (replaced atomically) in open_clip's hf-hub layout; return the directory.

    Files: ``open_clip_config.json`` (``model_cfg`` and ``preprocess_cfg``: size, OpenAI mean / std, bicubic,
    shortest-side resize), ``open_clip_model.safetensors`` (the state dict) and ``manifest.json`` (kind
    ``"embedded-clip"``: ``tokenizer``, the open_clip model name whose bundled tokenizer encodes the text,
    ``context_length``, ``embed_dim``, ``image_size`` and ``extra``, anything JSON-serialisable the trainer
    wants kept). ``model_cfg`` defaults to ``model.fp_model_cfg``.
    """
    from safetensors.torch import save_file

    cfg = _model_cfg_of(model, model_cfg)
    if context_length != cfg["text_cfg"].get("context_length", 77):
        raise ValueError(
            f"context_length {context_length} differs from the model's text_cfg context_length "
            f"{cfg['text_cfg'].get('context_length', 77)}"
        )
    image_size = int(cfg["vision_cfg"]["image_size"])
    preprocess_cfg = {
        "size": image_size,
        "mean": list(OPENAI_MEAN),
        "std": list(OPENAI_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_output_dir(directory) as tmp:
        write_json(tmp / CONFIG_FILENAME, {"model_cfg": cfg, "preprocess_cfg": preprocess_cfg})
        save_file(state, str(tmp / WEIGHTS_FILENAME))
        write_manifest(
            tmp,
            EMBEDDED_CLIP_KIND,
            version=_FORMAT_VERSION,
            tokenizer=tokenizer,
            context_length=int(context_length),
            embed_dim=int(cfg["embed_dim"]),
            image_size=image_size,
            extra=json.loads(json.dumps(dict(extra or {}), default=str)),
        )
    return Path(directory)


def _read_config(file: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: {file.parent} is not a complete embedded CLIP")
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{file} is not a readable open_clip config ({error})") from None
    if not isinstance(content, dict) or not isinstance(content.get("model_cfg"), dict):
        raise ManifestError(
            f"{file} has no 'model_cfg' object; expected {{'model_cfg': ..., 'preprocess_cfg': ...}}"
        )
    return content["model_cfg"], dict(content.get("preprocess_cfg") or {})


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: {file.parent} is not a complete embedded CLIP")
    try:
        return load_file(str(file))
    except Exception as error:  # safetensors raises its own error types for a damaged file
        raise ManifestError(f"{file} is not a readable safetensors file ({error})") from None


def _load_embedded(directory: Path, device: str | torch.device) -> LoadedCLIP:
    open_clip = _open_clip()
    manifest = read_manifest(
        directory, EMBEDDED_CLIP_KIND, required=("tokenizer", "context_length"), max_version=_FORMAT_VERSION
    )
    model_cfg, preprocess_cfg = _read_config(directory / CONFIG_FILENAME)
    state = _read_weights(directory / WEIGHTS_FILENAME)
    try:
        model = open_clip.CLIP(**model_cfg)
    except TypeError as error:
        raise ManifestError(
            f"{directory / CONFIG_FILENAME}: model_cfg is not an open_clip CLIP config ({error})"
        ) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # missing / unexpected keys or shape mismatches
        raise ManifestError(
            f"{directory / WEIGHTS_FILENAME} does not match the model of {directory / CONFIG_FILENAME}: {error}"
        ) from None
    model.fp_model_cfg = model_cfg
    tokenizer = open_clip.get_tokenizer(
        str(manifest["tokenizer"]), context_length=int(manifest["context_length"])
    )
    size = preprocess_cfg.get("size", model_cfg["vision_cfg"]["image_size"])
    return LoadedCLIP(
        model=_frozen(model, device),
        tokenizer=tokenizer,
        image_size=int(size if isinstance(size, int) else size[0]),
        mean=tuple(float(v) for v in preprocess_cfg.get("mean", OPENAI_MEAN)),
        std=tuple(float(v) for v in preprocess_cfg.get("std", OPENAI_STD)),
        name=f"embedded:{directory.resolve()}",
    )


def _split_name(source: str) -> tuple[str, str]:
    model, _, tag = source.partition("/")
    return model, tag or "openai"


def _tag_weights(model_name: str, tag: str, tag_cfg: Mapping[str, Any]) -> Path:
    """The local file of ``model_name``'s ``tag`` weights (hub cache, FP_WEIGHTS_DIR), or WeightsNotFoundError."""
    what = f"open_clip {model_name} ({tag})"
    hub = str(tag_cfg.get("hf_hub", "") or "")
    legacy = f"open_clip-{model_name}-{tag}.bin"
    if hub:
        repo_id, filename = os.path.split(hub)  # "org/name/" means open_clip's default file names
        names = [filename] if filename else [WEIGHTS_FILENAME, _BIN_WEIGHTS_FILENAME]
        first_error: WeightsNotFoundError = WeightsNotFoundError(what)
        for index, name in enumerate(names):
            try:
                return hub_file(repo_id, name, what=what)
            except WeightsNotFoundError as error:
                first_error = error if index == 0 else first_error
        legacy_file = weights_dir() / legacy
        if legacy_file.is_file():
            return legacy_file
        also = f"{', '.join(names[1:])} of the same repo in the same two places, and " if names[1:] else ""
        raise WeightsNotFoundError(f"{first_error} (Also looked for {also}{legacy_file}.)") from None
    url = str(tag_cfg.get("url", "") or "(no source known to open_clip)")
    return find_weight_file(legacy, url, None, what=what)


def _load_named(source: str, device: str | torch.device) -> LoadedCLIP:
    open_clip = _open_clip()
    model_name, tag = _split_name(source)
    if model_name not in open_clip.list_models():
        raise FileNotFoundError(
            f"{source!r} is neither a directory written by save_clip (no such directory: "
            f"{Path(source).expanduser().absolute()}) nor an open_clip model name ('<model>' or "
            f"'<model>/<tag>', e.g. 'ViT-B-32-quickgelu' or 'ViT-B-32/openai')"
        )
    tag_cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not tag_cfg:
        raise ValueError(
            f"unknown pretrained tag {tag!r} for {model_name}; open_clip knows "
            f"{open_clip.list_pretrained_tags_by_model(model_name)}"
        )
    checkpoint = _tag_weights(model_name, tag, tag_cfg)
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    model = open_clip.create_model(
        model_name,
        pretrained=str(checkpoint),
        force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
        force_preprocess_cfg=preprocess or None,
        pretrained_image=False,
        pretrained_text=False,
    )
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    return LoadedCLIP(
        model=_frozen(model, device),
        tokenizer=open_clip.get_tokenizer(model_name),
        image_size=int(size if isinstance(size, int) else size[0]),
        mean=tuple(float(v) for v in cfg.get("mean", OPENAI_MEAN)),
        std=tuple(float(v) for v in cfg.get("std", OPENAI_STD)),
        name=f"{model_name}/{tag}",
    )


def load_clip(source: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> LoadedCLIP:
    """Load a frozen CLIP from a :func:`save_clip` directory or an open_clip ``"<model>[/<tag>]"`` name.

    A directory must hold the three files :func:`save_clip` writes (:class:`ManifestError` or
    :class:`FileNotFoundError` naming the file otherwise). A name's weights must be in a local cache
    (:class:`WeightsNotFoundError` otherwise); see the module docstring for where they are looked for.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_embedded(path, device)
    if not isinstance(source, str) or path.is_file() or str(source).count("/") > 1:
        raise FileNotFoundError(f"{path} is not a directory (expected one written by save_clip)")
    return _load_named(source, device)
