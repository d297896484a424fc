"""LoRA adapters on the UNet's attention projections (FairHuman: rank 256), saved in diffusers' layout.

``add_lora(unet, LoraSettings(rank=256))`` freezes the UNet and adds peft LoRA layers (``unet.add_adapter``,
diffusers' peft integration) to every ``to_q``, ``to_k``, ``to_v`` and ``to_out.0``; only they train.
``save_lora`` writes ``pytorch_lora_weights.safetensors`` with
``StableDiffusionPipeline.save_lora_weights`` (keys ``unet.<module>.lora_A.weight`` / ``lora_B.weight``, the
adapter's ``LoraConfig`` in the safetensors metadata so ``lora_alpha`` survives), which diffusers pipelines load
with ``pipe.load_lora_weights(directory)``, plus ``manifest.json`` (kind ``"fairhuman-lora"``).
``load_lora`` puts such a file on a UNet without adapters; ``fuse_lora`` merges the adapters into the base
weights (inference; ``W + (alpha / r) B A``) and removes the LoRA layers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from fp_core.atomic import atomic_output_dir
from fp_core.manifest import read_manifest, write_manifest

__all__ = [
    "LORA_KIND",
    "LORA_TARGETS",
    "LORA_WEIGHTS_FILE",
    "LoraSettings",
    "add_lora",
    "fuse_lora",
    "load_lora",
    "lora_parameters",
    "save_lora",
]

LORA_KIND = "fairhuman-lora"
LORA_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"
#: The attention projections FairHuman adapts (self- and cross-attention).
LORA_TARGETS: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters.

    Attributes:
        rank: ``r`` (the paper's 256).
        alpha: ``lora_alpha``; the update is scaled by ``alpha / rank``. ``None``: equal to ``rank`` (scale 1).
        dropout: dropout on the LoRA branch's input.
        init: peft's ``init_lora_weights``: ``"gaussian"`` (diffusers' training scripts), ``True`` (peft's
            Kaiming A), both with ``B = 0`` so training starts from the base model.
        targets: module names to adapt.
    """

    rank: int = 256
    alpha: float | None = None
    dropout: float = 0.0
    init: str | bool = "gaussian"
    targets: tuple[str, ...] = field(default=LORA_TARGETS)

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoRA rank must be a positive int, got {self.rank!r}")
        if self.alpha is not None and not (isinstance(self.alpha, int | float) and self.alpha > 0):
            raise ValueError(f"LoRA alpha must be a number > 0 or None, got {self.alpha!r}")
        if not (isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise ValueError(f"LoRA targets must be non-empty module names, got {self.targets!r}")

    @property
    def lora_alpha(self) -> float:
        """``alpha``, defaulting to ``rank``."""
        return float(self.rank if self.alpha is None else self.alpha)

    def lora_config(self) -> Any:
        """The ``peft.LoraConfig``."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=float(self.dropout),
            init_lora_weights=self.init,
            target_modules=list(self.targets),
        )


def add_lora(unet: torch.nn.Module, settings: LoraSettings | None = None) -> list[torch.nn.Parameter]:
    """Freeze ``unet`` and add LoRA adapters per ``settings``; returns the trainable LoRA parameters (a list)."""
    settings = settings or LoraSettings()
    if not hasattr(unet, "add_adapter"):
        raise ValueError(f"unet must be a diffusers model with add_adapter, got {type(unet).__name__}")
    unet.requires_grad_(False)
    unet.add_adapter(settings.lora_config())
    params = lora_parameters(unet)
    if not params:
        raise ValueError(f"no module of {type(unet).__name__} matched the LoRA targets {settings.targets}")
    return params


def lora_parameters(unet: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The LoRA parameters (``lora_A`` / ``lora_B``) of ``unet``, as a list (never a one-shot generator)."""
    return [p for name, p in unet.named_parameters() if ".lora_A." in name or ".lora_B." in name]


def _adapter_config(unet: torch.nn.Module) -> Any:
    configs = getattr(unet, "peft_config", None) or {}
    if len(configs) != 1:
        raise ValueError(f"unet must carry exactly one LoRA adapter to save, found {sorted(configs)}")
    return next(iter(configs.values()))


def save_lora(
    unet: torch.nn.Module,
    directory: str | os.PathLike[str],
    *,
    extra: Mapping[str, Any] | None = None,
    settings: LoraSettings | None = None,
) -> Path:
    """Write ``directory/pytorch_lora_weights.safetensors`` (diffusers' layout) and ``manifest.json``.

    ``extra`` (JSON-serialisable: base model name, weighting, steps, ...) is stored in the manifest under
    ``"extra"``; ``settings`` (when given) under ``"params"``. The folder is written atomically.
    """
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict

    config = _adapter_config(unet)
    state = get_peft_model_state_dict(unet)
    if not state:
        raise ValueError("unet has no LoRA weights to save")
    metadata = config.to_dict()
    metadata["target_modules"] = sorted(metadata.get("target_modules") or [])
    with atomic_output_dir(directory) as tmp:
        StableDiffusionPipeline.save_lora_weights(
            tmp, unet_lora_layers=state, unet_lora_adapter_metadata=metadata, weight_name=LORA_WEIGHTS_FILE
        )
        write_manifest(
            tmp,
            LORA_KIND,
            params={} if settings is None else _settings_dict(settings),
            weights=LORA_WEIGHTS_FILE,
            rank=int(config.r),
            lora_alpha=float(config.lora_alpha),
            target_modules=metadata["target_modules"],
            num_tensors=len(state),
            num_parameters=int(sum(t.numel() for t in state.values())),
            extra=dict(extra or {}),
        )
    return Path(directory)


def _settings_dict(settings: LoraSettings) -> dict[str, Any]:
    values = asdict(settings)
    values["targets"] = list(settings.targets)
    return values


def load_lora(unet: torch.nn.Module, directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Put the LoRA adapter saved in ``directory`` on ``unet`` (one without adapters); returns the manifest.

    Raises:
        fp_core.manifest.ManifestError: when ``directory`` is not a ``"fairhuman-lora"`` folder.
        ValueError: when the weights file is missing or ``unet`` already carries an adapter.
    """
    from diffusers import StableDiffusionPipeline

    manifest = read_manifest(directory, LORA_KIND, required=("weights", "rank", "lora_alpha"), max_version=1)
    file = Path(directory) / str(manifest["weights"])
    if not file.is_file():
        raise ValueError(f"{file} is missing: the manifest of {directory} names it as the LoRA weights")
    if getattr(unet, "peft_config", None):
        raise ValueError(f"unet already carries adapters {sorted(unet.peft_config)}: load onto a clean UNet")
    state, alphas, metadata = StableDiffusionPipeline.lora_state_dict(
        str(directory), weight_name=file.name, return_lora_metadata=True
    )
    StableDiffusionPipeline.load_lora_into_unet(state, alphas, unet, metadata=metadata)
    return manifest


def fuse_lora(unet: torch.nn.Module, *, scale: float = 1.0) -> torch.nn.Module:
    """Merge the adapters into the base weights (``W += scale · (alpha/r) B A``), drop them; returns ``unet``."""
    if not getattr(unet, "peft_config", None):
        raise ValueError("unet carries no LoRA adapter to fuse")
    unet.fuse_lora(lora_scale=float(scale))
    unet.unload_lora()
    return unet
