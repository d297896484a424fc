"""The face parser: a segmentation-models-pytorch U-Net behind ImageNet input normalisation.

``build_parser`` makes a :class:`FaceParser` (``images [B, 3, H, W]`` in [0, 1] -> logits ``[B, C, H, W]``;
``H`` and ``W`` divisible by ``2 ** encoder_depth``). Pretrained encoder weights are never downloaded
implicitly: they are looked up locally and :class:`EncoderWeightsUnavailable` says what to place where when
they are missing. ``save_parser`` / ``load_parser`` write and read ``model.safetensors`` +
``parser_config.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fp_core.weights import WeightsNotFoundError, hub_cache_dir, hub_file

__all__ = [
    "CONFIG_FILENAME",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WEIGHTS_FILENAME",
    "EncoderWeightsUnavailable",
    "FaceParser",
    "build_parser",
    "encoder_weight_source",
    "fetch_encoder_weights",
    "load_parser",
    "save_parser",
]

WEIGHTS_FILENAME = "model.safetensors"
CONFIG_FILENAME = "parser_config.json"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ARCHITECTURE_KEYS = (
    "encoder_name",
    "num_classes",
    "in_channels",
    "encoder_depth",
    "decoder_channels",
    "normalize",
)
_NULL_HINT = "or set parsing.model.encoder_weights: null to start from random weights"


class EncoderWeightsUnavailable(FileNotFoundError):
    """Pretrained encoder weights were asked for but are not available locally (nothing is downloaded)."""


class FaceParser(nn.Module):
    """U-Net (``self.unet``, an ``smp.Unet``) that takes images in [0, 1].

    ``forward(images [B, in_channels, H, W]) -> logits [B, num_classes, H, W]``. With ``normalize`` (and 3
    input channels) the images are standardised with the ImageNet mean / std first, as the pretrained
    encoders expect. The constants are non-persistent buffers, so the state dict is the U-Net's own.
    ``architecture`` holds the settings that rebuild the network (what ``parser_config.json`` stores).
    """

    def __init__(self, unet: nn.Module, architecture: Mapping[str, Any]) -> None:
        super().__init__()
        self.unet = unet
        self.architecture: dict[str, Any] = dict(architecture)
        channels = int(self.architecture["in_channels"])
        normalize = bool(self.architecture["normalize"]) and channels == 3
        mean = torch.tensor(IMAGENET_MEAN if normalize else (0.0,) * channels).view(1, channels, 1, 1)
        std = torch.tensor(IMAGENET_STD if normalize else (1.0,) * channels).view(1, channels, 1, 1)
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)
        self._normalize = normalize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, C_in, H, W]`` in [0, 1] -> logits ``[B, num_classes, H, W]``."""
        if self._normalize:
            images = (images - self.input_mean.to(images.dtype)) / self.input_std.to(images.dtype)
        return self.unet(images)


def encoder_weight_source(encoder_name: str, encoder_weights: str) -> dict[str, str]:
    """Where smp 0.6 gets ``encoder_weights`` for ``encoder_name``: ``{"repo_id", "revision"}`` on the Hub.

    Raises ``ValueError`` for an unknown encoder or weights name (listing the valid ones).
    """
    from segmentation_models_pytorch.encoders import encoders

    if encoder_name not in encoders:
        raise ValueError(
            f"unknown encoder_name {encoder_name!r}; expected one of smp's encoders, e.g. resnet34"
        )
    settings = encoders[encoder_name].get("pretrained_settings", {})
    if encoder_weights not in settings:
        raise ValueError(
            f"encoder {encoder_name!r} has no pretrained weights {encoder_weights!r}; "
            f"available: {sorted(settings)}"
        )
    entry = settings[encoder_weights]
    return {"repo_id": str(entry["repo_id"]), "revision": str(entry["revision"])}


def _locate_encoder_weights(encoder_name: str, encoder_weights: str) -> Path:
    """A local ``model.safetensors`` for the encoder, or :class:`EncoderWeightsUnavailable`."""
    explicit = Path(encoder_weights).expanduser()
    if encoder_weights.endswith(".safetensors") or explicit.is_file():
        if explicit.is_file():
            return explicit
        raise EncoderWeightsUnavailable(
            f"encoder_weights points to {explicit}, which does not exist; place the encoder's "
            f"model.safetensors there, {_NULL_HINT}"
        )
    if encoder_name.startswith(("tu-", "timm-")):
        raise EncoderWeightsUnavailable(
            f"pretrained weights for the timm encoder {encoder_name!r} are not loaded offline by fp-parsing; "
            f"use a native smp encoder such as resnet34, point encoder_weights to a local .safetensors file "
            f"holding the encoder's state dict, {_NULL_HINT}"
        )
    source = encoder_weight_source(encoder_name, encoder_weights)
    try:
        return hub_file(
            source["repo_id"],
            WEIGHTS_FILENAME,
            revision=source["revision"],
            what=f"{encoder_weights!r} weights for encoder {encoder_name!r}",
        )
    except WeightsNotFoundError as error:
        missing = str(error)
    # raised outside the handler: one short error of fp-parsing's own, nothing chained
    raise EncoderWeightsUnavailable(
        f"{missing} Or (c) fetch them with fp_parsing.model.fetch_encoder_weights({encoder_name!r}, "
        f"{encoder_weights!r}) on a connected machine and copy the hub cache; or (d) set encoder_weights to "
        f"the path of a local {WEIGHTS_FILENAME}; {_NULL_HINT}."
    )


def fetch_encoder_weights(encoder_name: str = "resnet34", encoder_weights: str = "imagenet") -> Path:
    """Download the encoder weights into the Hugging Face cache (run once on a connected machine).

    Returns the cached ``model.safetensors``. Build-time code never calls this: :func:`build_parser` only
    reads local files.
    """
    from huggingface_hub import hf_hub_download

    source = encoder_weight_source(encoder_name, encoder_weights)
    hf_hub_download(source["repo_id"], "config.json", revision=source["revision"], cache_dir=hub_cache_dir())
    path = hf_hub_download(
        source["repo_id"], WEIGHTS_FILENAME, revision=source["revision"], cache_dir=hub_cache_dir()
    )
    return Path(path)


def _read_safetensors(path: Path, error_type: type[Exception]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise error_type(f"{path} is not a readable safetensors file: {error}") from None


def _load_state(
    module: nn.Module, state: Mapping[str, torch.Tensor], path: Path, what: str, error_type: type[Exception]
) -> None:
    """``module.load_state_dict(state)`` (strict) with a short error naming ``path`` and the differences."""
    try:
        module.load_state_dict(dict(state))
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines()[1:4] if line.strip()]
        detail = "; ".join(line if len(line) <= 200 else line[:197] + "..." for line in lines)
        raise error_type(f"{path} does not hold the {what} weights: {detail}") from None


def build_parser(
    encoder_name: str = "resnet34",
    encoder_weights: str | None = None,
    num_classes: int = 19,
    in_channels: int = 3,
    *,
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] | None = None,
    normalize: bool = True,
) -> FaceParser:
    """A U-Net face parser: ``images [B, in_channels, H, W]`` in [0, 1] -> logits ``[B, num_classes, H, W]``.

    Args:
        encoder_name: an smp encoder (the paper: ``resnet34``).
        encoder_weights: ``None`` (random init), an smp weights name such as ``"imagenet"`` (read from the
            local Hugging Face cache or ``$FP_WEIGHTS_DIR/<repo_id>/model.safetensors``), or the path of a
            ``.safetensors`` file with the encoder's state dict. Missing weights raise
            :class:`EncoderWeightsUnavailable` at once (no download, no retries).
        num_classes: output classes (19 for CelebAMask-HQ).
        in_channels: input channels.
        encoder_depth: encoder stages (3..5); input sides must be divisible by ``2 ** encoder_depth``.
        decoder_channels: decoder widths, one per stage (default smp's ``(256, 128, 64, 32, 16)`` cut to
            ``encoder_depth``).
        normalize: standardise 3-channel inputs with the ImageNet mean / std inside the model.
    """
    import segmentation_models_pytorch as smp

    if num_classes < 1 or in_channels < 1:
        raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes} and {in_channels}")
    if not 1 <= encoder_depth <= 5:
        raise ValueError(f"encoder_depth must be in 1..5, got {encoder_depth}")
    channels = tuple(int(c) for c in (decoder_channels or (256, 128, 64, 32, 16)[:encoder_depth]))
    if len(channels) != encoder_depth:
        raise ValueError(
            f"decoder_channels must have encoder_depth={encoder_depth} entries, got {list(channels)}"
        )
    weights_file = None if encoder_weights is None else _locate_encoder_weights(encoder_name, encoder_weights)

    def build(channels_in: int) -> nn.Module:
        return smp.Unet(
            encoder_name=encoder_name,
            encoder_depth=encoder_depth,
            encoder_weights=None,
            decoder_channels=channels,
            in_channels=channels_in,
            classes=num_classes,
        )

    if weights_file is None:
        unet = build(in_channels)
    else:
        # As smp does it: a 3-channel encoder gets the weights, then its first conv is adapted.
        unet = build(3)
        state = _read_safetensors(weights_file, EncoderWeightsUnavailable)
        _load_state(unet.encoder, state, weights_file, f"{encoder_name} encoder", EncoderWeightsUnavailable)
        unet.encoder.set_in_channels(in_channels, pretrained=True)
    architecture = {
        "encoder_name": encoder_name,
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
        "encoder_depth": int(encoder_depth),
        "decoder_channels": list(channels),
        "normalize": bool(normalize),
    }
    return FaceParser(unet, architecture)


def _atomic_write_bytes(path: Path, write: Callable[[str], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_parser(
    model: nn.Module, directory: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model.safetensors`` and ``parser_config.json`` into ``directory`` (each atomically).

    ``config`` may carry extra keys (they are stored as given); its architecture keys, when present, must
    agree with the model's own ``architecture``, which is always written (``encoder_weights`` is kept for
    the record only: :func:`load_parser` never fetches weights). Returns ``directory``.
    """
    from safetensors.torch import save_file

    model = getattr(model, "module", model)  # DataParallel / DDP wrappers
    if not isinstance(model, FaceParser):
        raise TypeError(f"save_parser expects a FaceParser from build_parser, got {type(model).__name__}")
    record = dict(config or {})
    for key in _ARCHITECTURE_KEYS:
        if key in record and record[key] != model.architecture[key]:
            raise ValueError(
                f"config[{key!r}]={record[key]!r} disagrees with the model's {key}={model.architecture[key]!r}"
            )
    record.update(model.architecture)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().to("cpu").contiguous() for name, value in model.state_dict().items()}
    _atomic_write_bytes(
        directory / WEIGHTS_FILENAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"})
    )
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    _atomic_write_bytes(directory / CONFIG_FILENAME, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return directory


def load_parser(directory: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> FaceParser:
    """Rebuild the parser saved by :func:`save_parser` (random init, then the saved weights; no download).

    Raises ``FileNotFoundError`` naming a missing file and ``ValueError`` naming a corrupt or mismatched one.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILENAME, directory / WEIGHTS_FILENAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: expected a parser saved by fp_parsing.model.save_parser"
            )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(config, dict) or "encoder_name" not in config or "num_classes" not in config:
        raise ValueError(f"{config_path} must be a JSON object with at least encoder_name and num_classes")
    model = build_parser(
        encoder_name=str(config["encoder_name"]),
        encoder_weights=None,
        num_classes=int(config["num_classes"]),
        in_channels=int(config.get("in_channels", 3)),
        encoder_depth=int(config.get("encoder_depth", 5)),
        decoder_channels=config.get("decoder_channels"),
        normalize=bool(config.get("normalize", True)),
    )
    state = _read_safetensors(weights_path, ValueError)
    _load_state(model, state, weights_path, f"parser described in {config_path.name}", ValueError)
    return model.to(map_location)
