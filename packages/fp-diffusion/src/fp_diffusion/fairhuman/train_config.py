"""Every knob of one FairHuman fine-tuning run (LoRA on the UNet, or a pose ControlNet), validated.

Defaults follow the paper where it says (LoRA rank 256, condition dropout 0.3, MPD) and diffusers' training
scripts elsewhere. ``normalise`` defaults to ``"mask"``: each masked loss is the mean squared error over its
own masked cells. The public FairHuman code divides the masked sum by *all* cells (``"all"``), which scales the
face / hand losses by the boxes' share of the image, so a small far-away face (the "human in the scene" case
the method is for) gets an almost-zero loss and almost no say in the weighting; ``"all"`` is kept to reproduce
that code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fp_diffusion.fairhuman.weighting import ALL_WEIGHTINGS

__all__ = ["FairHumanConfigError", "FairHumanTrainConfig", "MODULES"]

MODULES = ("lora", "controlnet")
NORMALISE = ("mask", "all")
LR_SCHEDULES = ("constant", "cosine")
MIXED_PRECISION = ("no", "fp16", "bf16")
PATHS = ("fast", "naive")


class FairHumanConfigError(ValueError):
    """A FairHuman training setting that is unknown or out of range (the message names it)."""


def _int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FairHumanConfigError(f"fairhuman.{name} must be an int >= {minimum}, got {value!r}")


def _number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise FairHumanConfigError(
            f"fairhuman.{name} must be a number in {bracket}{low}, {high}], got {value!r}"
        )


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise FairHumanConfigError(f"fairhuman.{name} must be one of {options}, got {value!r}")


@dataclass
class FairHumanTrainConfig:
    """One FairHuman run's settings.

    Attributes:
        module: ``"lora"`` (adapters on the UNet's attention) or ``"controlnet"`` (a pose ControlNet over the
            frozen UNet).
        weighting: one of :data:`~fp_diffusion.fairhuman.weighting.ALL_WEIGHTINGS` (the paper's ``"mpd"``).
        weighting_options: keyword options of the weighting (e.g. ``{"temperature": 2.0}`` for DWA,
            ``{"seed": 0}`` for RLW); JSON values.
        normalise: ``"mask"`` (default, module docstring) or ``"all"`` (the public code's normalisation).
        mask_dilation: box growth, a fraction of each box's size (for the caller building
            :class:`~fp_diffusion.fairhuman.HumanScenes`; recorded).
        lora_rank, lora_alpha, lora_dropout: the adapters (paper: rank 256; alpha None = rank).
        condition: the condition image the ControlNet sees (``"pose"``).
        condition_dropout: probability of zeroing an item's condition (paper 0.3; ControlNet only).
        caption_dropout: probability of replacing an item's caption by ``""``.
        conditioning_embedding_out_channels: the ControlNet's condition encoder (None: fitted to the VAE).
        resolution: the training size (None: the base's).
        epochs, batch_size, max_steps_per_epoch: passes, items per micro-batch, cap on batches per epoch.
        lr, lr_scheduler, lr_warmup_steps: AdamW's rate, ``"constant"`` / ``"cosine"``, warmup (optimiser steps).
        adam_beta1, adam_beta2, adam_weight_decay, adam_epsilon: AdamW.
        gradient_accumulation_steps: micro-batches per optimiser step.
        max_grad_norm: clip the combined direction's norm (None: off).
        gradient_path: fp-gradagg's path for the Gramian weightings (``"fast"`` or ``"naive"``).
        mixed_precision, cpu, checkpoint_every, keep_checkpoints, num_workers: the harness and the loader.
        seed: data order, initialisation and each step's noise, timesteps and dropouts.
        snapshot_epochs: 1-based epochs after which the module is saved to ``output_dir/epoch-<e>/``.
        validation_count, validation_steps, validation_guidance_scale: the validation images (count, sampler
            steps, CFG scale).
    """

    module: str = "lora"
    weighting: str = "mpd"
    weighting_options: dict[str, Any] = field(default_factory=dict)
    normalise: str = "mask"
    mask_dilation: float = 0.0
    lora_rank: int = 256
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    condition: str = "pose"
    condition_dropout: float = 0.3
    caption_dropout: float = 0.0
    conditioning_embedding_out_channels: tuple[int, ...] | None = None
    resolution: int | None = None
    epochs: int = 1
    batch_size: int = 4
    max_steps_per_epoch: int = 0
    lr: float = 1e-4
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    gradient_path: str = "fast"
    mixed_precision: str = "no"
    cpu: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    num_workers: int = 0
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = ()
    validation_count: int = 4
    validation_steps: int = 20
    validation_guidance_scale: float = 7.5

    def __post_init__(self) -> None:
        _choice("module", self.module, MODULES)
        _choice("weighting", self.weighting, ALL_WEIGHTINGS)
        _choice("normalise", self.normalise, NORMALISE)
        _choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULES)
        _choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _choice("gradient_path", self.gradient_path, PATHS)
        if not isinstance(self.weighting_options, Mapping):
            raise FairHumanConfigError(
                f"fairhuman.weighting_options must be a mapping, got {self.weighting_options!r}"
            )
        self.weighting_options = dict(self.weighting_options)
        if not isinstance(self.condition, str) or not self.condition:
            raise FairHumanConfigError(
                f"fairhuman.condition must be a condition name, got {self.condition!r}"
            )
        for name in ("epochs", "batch_size", "gradient_accumulation_steps", "keep_checkpoints", "lora_rank"):
            _int(name, getattr(self, name), 1)
        for name in ("max_steps_per_epoch", "lr_warmup_steps", "checkpoint_every", "num_workers", "seed"):
            _int(name, getattr(self, name), 0)
        _int("validation_count", self.validation_count, 1)
        _int("validation_steps", self.validation_steps, 1)
        if self.resolution is not None:
            _int("resolution", self.resolution, 8)
        for name in ("condition_dropout", "caption_dropout"):
            _number(name, getattr(self, name), 0.0, 1.0)
        _number("lora_dropout", self.lora_dropout, 0.0, 0.999)
        _number("mask_dilation", self.mask_dilation, 0.0, 10.0)
        _number("lr", self.lr, 0.0, 1.0, open_low=True)
        _number("adam_beta1", self.adam_beta1, 0.0, 0.9999)
        _number("adam_beta2", self.adam_beta2, 0.0, 0.9999)
        _number("adam_weight_decay", self.adam_weight_decay, 0.0, 10.0)
        _number("adam_epsilon", self.adam_epsilon, 0.0, 1.0, open_low=True)
        _number("validation_guidance_scale", self.validation_guidance_scale, 0.0, 100.0)
        if self.lora_alpha is not None:
            _number("lora_alpha", self.lora_alpha, 0.0, 1e6, open_low=True)
        if self.max_grad_norm is not None:
            _number("max_grad_norm", self.max_grad_norm, 0.0, 1e9, open_low=True)
        self.snapshot_epochs = tuple(self.snapshot_epochs)
        for epoch in self.snapshot_epochs:
            _int("snapshot_epochs[...]", epoch, 1)
        if self.conditioning_embedding_out_channels is not None:
            self.conditioning_embedding_out_channels = tuple(self.conditioning_embedding_out_channels)
            for channels in self.conditioning_embedding_out_channels:
                _int("conditioning_embedding_out_channels[...]", channels, 1)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FairHumanTrainConfig:
        """Build from a params mapping (missing keys: defaults); an unknown key raises naming it."""
        if not isinstance(values, Mapping):
            raise FairHumanConfigError(f"fairhuman settings must be a mapping, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise FairHumanConfigError(
                f"unknown fairhuman setting(s) {unknown}; expected some of {sorted(names)}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (tuples as lists) for manifests, checkpoints and tracking params."""
        values = dataclasses.asdict(self)
        for name in ("conditioning_embedding_out_channels", "snapshot_epochs"):
            if values[name] is not None:
                values[name] = list(values[name])
        return values
