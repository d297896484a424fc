"""``RecognitionTrainConfig``: every setting one recognition training run reads (a params.yaml mapping).

The defaults are a toy CPU run; the published recipes are settings of the same fields:

* **AdaFace** (Kim et al. 2022, IR-101 on MS1MV2/CASIA): ``backbone: ir101``, ``input_size: 112``,
  ``embedding_size: 512``, ``loss: adaface`` (``margin: 0.4``, ``adaface_h: 0.333``, ``scale: 64``,
  ``adaface_t_alpha: 0.01``), SGD ``lr: 0.1``, ``momentum: 0.9``, ``weight_decay: 5e-4``,
  ``schedule: multistep``, ``milestones: [12, 20, 24]``, ``gamma: 0.1``, ``epochs: 26``, batch 512, the
  AdaFace augmentation (crop, low resolution, photometric at 0.2 each, flip 0.5).
* **insightface arcface_torch**: ``backbone: iresnet50`` or ``iresnet100``, ``loss: arcface``
  (``margin: 0.5``, ``scale: 64``), SGD ``lr: 0.1``, ``momentum: 0.9``, ``weight_decay: 5e-4``,
  ``schedule: poly`` (``poly_power: 2``) after ``warmup_epochs``, ``max_grad_norm: 5``, flip only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fp_recognition.backbones import BACKBONES

__all__ = ["LOSSES", "SCHEDULES", "AugmentConfig", "ConfigError", "RecognitionTrainConfig"]

#: Margin losses :func:`~fp_recognition.train.train_recognizer` trains with.
LOSSES: tuple[str, ...] = ("arcface", "adaface", "cosface")
#: Learning-rate decays after the warm-up.
SCHEDULES: tuple[str, ...] = ("multistep", "poly", "constant")
_DEFAULT_MARGIN = {"arcface": 0.5, "adaface": 0.4, "cosface": 0.4}


class ConfigError(ValueError):
    """A recognition training setting that is unknown or out of range (the message names it)."""


def _from_mapping(cls: type, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    return cls(**values)


def _probability(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"augment.{name} must be in [0, 1], got {value}")


@dataclass
class AugmentConfig:
    """The training augmentation (:class:`fp_recognition.data.FaceAugment`, AdaFace's recipe).

    Attributes:
        enabled: augment at all (False: the images as stored).
        flip_prob, crop_prob, low_res_prob, photometric_prob: each step's probability (AdaFace: 0.5 and 0.2).
    """

    enabled: bool = True
    flip_prob: float = 0.5
    crop_prob: float = 0.2
    low_res_prob: float = 0.2
    photometric_prob: float = 0.2

    def __post_init__(self) -> None:
        for name in ("flip_prob", "crop_prob", "low_res_prob", "photometric_prob"):
            _probability(name, getattr(self, name))


@dataclass
class RecognitionTrainConfig:
    """One training run (see the module doc for the published recipes).

    Attributes:
        backbone: a name of :data:`fp_recognition.backbones.BACKBONES`.
        input_size: image side S (multiple of 16); images are resized to it.
        embedding_size: E.
        width: backbone channels of the first stage (64 published; 16 a toy CPU net).
        dropout: backbone dropout (None: the family's default).
        loss: ``arcface``, ``adaface`` or ``cosface``.
        margin: m (None: 0.5 ArcFace, 0.4 CosFace and AdaFace). scale: s.
        adaface_h, adaface_t_alpha: AdaFace's concentration h and EMA weight.
        lr, momentum, weight_decay: SGD (weight decay on every parameter, as AdaFace and insightface).
        warmup_epochs: linear warm-up from 0 over this many epochs (fractions allowed).
        schedule: ``multistep`` (``lr * gamma ** #milestones passed``, milestones in epochs), ``poly``
            (``lr * (1 - t / T) ** poly_power`` over the steps after the warm-up) or ``constant``.
        epochs, batch_size: the run's length and the images per step.
        seed: initialisation, shuffling and augmentation all derive from it.
        mixed_precision: accelerate's ``no``, ``fp16`` or ``bf16``. cpu: force the CPU.
        checkpoint_every: also checkpoint every this many steps (0: epoch ends only). keep_checkpoints.
        max_grad_norm: clip the gradient norm (None: no clipping; insightface: 5).
        num_workers: DataLoader workers. max_steps_per_epoch: cap (0: the whole set), for quick runs.
        augment: :class:`AugmentConfig`.
    """

    backbone: str = "iresnet18"
    input_size: int = 32
    embedding_size: int = 128
    width: int = 16
    dropout: float | None = None
    loss: str = "arcface"
    margin: float | None = None
    scale: float = 64.0
    adaface_h: float = 0.333
    adaface_t_alpha: float = 0.01
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    schedule: str = "multistep"
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    poly_power: float = 2.0
    epochs: int = 2
    batch_size: int = 64
    seed: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    max_grad_norm: float | None = None
    num_workers: int = 0
    max_steps_per_epoch: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augment, Mapping):
            self.augment = _from_mapping(AugmentConfig, self.augment, "augment")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {list(BACKBONES)}, got {self.backbone!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"mixed_precision must be 'no', 'fp16' or 'bf16', got {self.mixed_precision!r}")
        for name in ("epochs", "batch_size", "embedding_size", "width", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.input_size < 16 or self.input_size % 16:
            raise ConfigError(f"input_size must be a positive multiple of 16, got {self.input_size}")
        if not self.lr > 0 or self.warmup_epochs < 0 or not 0 < self.gamma <= 1:
            raise ConfigError(
                f"need lr > 0, warmup_epochs >= 0, 0 < gamma <= 1; got {self.lr}, {self.warmup_epochs}, "
                f"{self.gamma}"
            )
        self.milestones = [float(m) for m in self.milestones]
        if self.milestones != sorted(self.milestones):
            raise ConfigError(f"milestones must be ascending, got {self.milestones}")

    @property
    def margin_value(self) -> float:
        """m: ``margin`` or the loss's published default."""
        return _DEFAULT_MARGIN[self.loss] if self.margin is None else float(self.margin)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RecognitionTrainConfig:
        """Build from a params mapping; unknown keys raise :class:`ConfigError` naming them."""
        return _from_mapping(cls, dict(values), "recognition training settings")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (manifests, MLflow params, the harness's run config)."""
        return dataclasses.asdict(self)

    def backbone_config(self) -> dict[str, Any]:
        """What :func:`fp_recognition.train.load_backbone` needs to rebuild the network."""
        return {
            "name": self.backbone,
            "input_size": self.input_size,
            "embedding_size": self.embedding_size,
            "width": self.width,
            "dropout": self.dropout,
        }
