"""Every knob of one ControlNet fine-tuning run, validated (defaults: diffusers' ``train_controlnet.py``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_EMBEDDING_CHANNELS",
    "LR_SCHEDULES",
    "ControlNetConfigError",
    "ControlNetTrainConfig",
    "embedding_channels_for",
]

LR_SCHEDULES = ("constant", "cosine")
MIXED_PRECISION = ("no", "fp16", "bf16")
DEFAULT_EMBEDDING_CHANNELS = (16, 32, 96, 256)
"""diffusers' ControlNet conditioning embedding (3 stride-2 convs: for a VAE that downsamples by 8)."""


class ControlNetConfigError(ValueError):
    """A ControlNet training setting that is unknown or out of range."""


def _int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ControlNetConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


def _fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ControlNetConfigError(f"{name} must be a number in [0, 1], got {value!r}")


def embedding_channels_for(vae_factor: int, channels: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The conditioning embedding's ``out_channels`` for a VAE that downsamples by ``vae_factor``.

    The embedding has ``len(channels) - 1`` stride-2 convolutions, which must equal ``log2(vae_factor)`` so
    that the embedded condition has the latents' size. ``None`` takes the first ``log2(vae_factor) + 1`` of
    :data:`DEFAULT_EMBEDDING_CHANNELS` (all four for SD's factor 8). Raises :class:`ControlNetConfigError`
    for a factor that is not a power of two or channels of the wrong length.
    """
    if vae_factor < 1 or vae_factor & (vae_factor - 1):
        raise ControlNetConfigError(f"the VAE downsampling factor must be a power of two, got {vae_factor}")
    downsamplings = int(math.log2(vae_factor))
    if channels is None:
        if downsamplings + 1 > len(DEFAULT_EMBEDDING_CHANNELS):
            raise ControlNetConfigError(
                f"no default conditioning embedding for VAE factor {vae_factor}; set "
                f"conditioning_embedding_out_channels to {downsamplings + 1} channel counts"
            )
        return DEFAULT_EMBEDDING_CHANNELS[: downsamplings + 1]
    channels = tuple(int(c) for c in channels)
    if len(channels) - 1 != downsamplings:
        raise ControlNetConfigError(
            f"conditioning_embedding_out_channels {channels} has {len(channels) - 1} stride-2 convolutions but "
            f"the VAE downsamples by {vae_factor} = 2**{downsamplings}: give {downsamplings + 1} channel counts "
            f"(e.g. {DEFAULT_EMBEDDING_CHANNELS[: downsamplings + 1]}) so the condition reaches the latent size"
        )
    return channels


@dataclass
class ControlNetTrainConfig:
    """One ControlNet run's settings.

    Attributes:
        resolution: the training size (pixels, square; None: the base's ``resolution``).
        conditioning_embedding_out_channels: the condition encoder's widths; ``len - 1`` stride-2 convs
            must equal log2 of the VAE factor (None: :func:`embedding_channels_for` picks them).
        epochs, batch_size: passes over the data and items per batch.
        lr, adam_beta1, adam_beta2, adam_weight_decay, adam_epsilon: AdamW (diffusers' defaults but lr).
        lr_scheduler, lr_warmup_steps: ``"constant"`` or ``"cosine"`` (to 0 at the last optimiser step)
            after a linear warmup over this many optimiser steps.
        gradient_accumulation_steps: batches per optimiser step.
        max_grad_norm: gradient clipping (None: off).
        proportion_empty_prompts: probability of replacing an item's caption with ``""`` (caption dropout).
        condition_dropout: probability of zeroing an item's condition image (FairHuman uses 0.3).
        flip: random horizontal flips of image and map (for the caller building the dataset; recorded).
        seed: seeds the ControlNet's data order and each step's noise, timesteps and dropouts.
        snapshot_epochs: 1-based epochs after which the ControlNet is saved to ``output_dir/epoch-<e>/``.
        max_steps_per_epoch: cap on batches per epoch (0: all).
        validation_steps, validation_guidance_scale: the sampler steps and CFG scale of validation images.
        num_workers, mixed_precision, cpu, checkpoint_every, keep_checkpoints: the loader and the harness.
    """

    resolution: int | None = None
    conditioning_embedding_out_channels: tuple[int, ...] | None = None
    epochs: int = 1
    batch_size: int = 4
    lr: float = 1e-5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    proportion_empty_prompts: float = 0.0
    condition_dropout: float = 0.0
    flip: bool = True
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = ()
    max_steps_per_epoch: int = 0
    validation_steps: int = 20
    validation_guidance_scale: float = 7.5
    num_workers: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.conditioning_embedding_out_channels is not None:
            self.conditioning_embedding_out_channels = tuple(self.conditioning_embedding_out_channels)
            for c in self.conditioning_embedding_out_channels:
                _int("conditioning_embedding_out_channels[...]", c, 1)
        self.snapshot_epochs = tuple(self.snapshot_epochs)
        for e in self.snapshot_epochs:
            _int("snapshot_epochs[...]", e, 1)
        if self.resolution is not None:
            _int("resolution", self.resolution, 1)
        for name in ("epochs", "batch_size", "gradient_accumulation_steps", "keep_checkpoints"):
            _int(name, getattr(self, name), 1)
        for name in ("lr_warmup_steps", "seed", "max_steps_per_epoch", "num_workers", "checkpoint_every"):
            _int(name, getattr(self, name), 0)
        _int("validation_steps", self.validation_steps, 1)
        for name in ("proportion_empty_prompts", "condition_dropout"):
            _fraction(name, getattr(self, name))
        if not self.lr > 0:
            raise ControlNetConfigError(f"lr must be > 0, got {self.lr!r}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ControlNetConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.adam_weight_decay >= 0 or not self.adam_epsilon > 0:
            raise ControlNetConfigError(
                f"adam_weight_decay must be >= 0 and adam_epsilon > 0, got {self.adam_weight_decay!r}, "
                f"{self.adam_epsilon!r}"
            )
        if self.lr_scheduler not in LR_SCHEDULES:
            raise ControlNetConfigError(
                f"lr_scheduler must be one of {LR_SCHEDULES}, got {self.lr_scheduler!r}"
            )
        if self.mixed_precision not in MIXED_PRECISION:
            raise ControlNetConfigError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ControlNetConfigError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm!r}")
        if not self.validation_guidance_scale >= 0:
            raise ControlNetConfigError(
                f"validation_guidance_scale must be >= 0, got {self.validation_guidance_scale!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ControlNetTrainConfig:
        """Build from a params mapping; unknown keys raise :class:`ControlNetConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ControlNetConfigError(
                f"unknown ControlNet setting(s) {unknown}; expected some of {sorted(names)}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (tuples as lists) for manifests, checkpoints and MLflow params."""
        values = dataclasses.asdict(self)
        for name in ("conditioning_embedding_out_channels", "snapshot_epochs"):
            if values[name] is not None:
                values[name] = list(values[name])
        return values
