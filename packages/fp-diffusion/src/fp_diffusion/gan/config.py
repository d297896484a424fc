"""Every knob of one Pix2PixHD run (networks, losses, optimiser, schedule, harness), validated.

The dataclass defaults are NVIDIA pix2pixHD's (``label_nc`` 19, ``ngf`` 64, 4 downsamplings, 9 residual
blocks, ``ndf`` 64, 3 layers, 2 scales, feature matching and VGG with lambda 10, Adam 2e-4 / (0.5, 0.999),
100 + 100 epochs); :data:`TOY_SETTINGS` is the small 64x64 scale the CPU pipeline trains
(``Pix2PixHDConfig.toy()``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["GENERATORS", "TOY_SETTINGS", "ConfigError", "Pix2PixHDConfig", "lr_factor"]

GENERATORS = ("global", "local")
MIXED_PRECISION = ("no", "fp16", "bf16")

TOY_SETTINGS: dict[str, Any] = {
    "ngf": 16,
    "n_downsample": 2,
    "n_blocks": 3,
    "ndf": 16,
    "n_layers_D": 2,
    "num_D": 2,
    "niter": 3,
    "niter_decay": 2,
    "batch_size": 8,
    "resolution": 64,
}
"""The toy scale: a 285,059-parameter generator (95,458 in the discriminator) at 64x64 that trains on ~500 pairs in about a minute on 2 CPU
cores (measured in docs/diffusion.md)."""


class ConfigError(ValueError):
    """A Pix2PixHD setting that is unknown or out of range."""


def _positive(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}")


@dataclass
class Pix2PixHDConfig:
    """One Pix2PixHD run's settings.

    Attributes:
        label_nc: classes of the label maps (one-hot channels); a label >= ``label_nc`` is an error.
        edge_channel: add the instance-edge channel (from instance maps when given, else from the label map:
            the parsing export has no instance maps, so the edges are the boundaries between classes).
        output_nc: image channels (3).
        generator: ``"global"`` (GlobalGenerator) or ``"local"`` (LocalEnhancer at twice the global
            generator's resolution; its global part has ``2 * ngf`` filters, as upstream).
        ngf, n_downsample, n_blocks: generator width, stride-2 downsamplings, residual blocks (global part).
        n_blocks_local: residual blocks of the local enhancer.
        niter_fix_global: with ``"local"``, train only the local enhancer for this many first epochs.
        ndf, n_layers_D, num_D: PatchGAN width, stride-2 layers, number of scales.
        feat_match, lambda_feat: discriminator feature-matching loss and its weight.
        vgg, lambda_vgg, vgg_path: VGG19 perceptual loss, its weight, and an explicit weight file (else the fp
            weight cache / torch hub cache is searched; a missing file turns the term off with a note).
        lambda_l1: weight of the paper's ``lambda * |x_hat - x|_1`` term (0: off; upstream has none).
        lr, beta1, beta2: Adam for both networks.
        niter, niter_decay: epochs at constant learning rate, then epochs of linear decay to 0; the run has
            ``niter + niter_decay`` epochs.
        batch_size: pairs per step.
        resolution: the training resolution the caller resizes the data to (None: as exported); recorded.
        flip: random horizontal flips (applied to both the map and the image).
        seed: seeds the initialisation, the data order and the flips.
        num_workers, mixed_precision, cpu, checkpoint_every, keep_checkpoints, max_grad_norm: the data
            loader and the training harness (``fp_core.training.HarnessConfig.from_settings``).
        max_steps_per_epoch: cap on steps per epoch (0: the whole dataset), for quick runs.
        num_samples: pairs shown in each sample grid.
    """

    label_nc: int = 19
    edge_channel: bool = False
    output_nc: int = 3
    generator: str = "global"
    ngf: int = 64
    n_downsample: int = 4
    n_blocks: int = 9
    n_blocks_local: int = 3
    niter_fix_global: int = 0
    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2
    feat_match: bool = True
    lambda_feat: float = 10.0
    vgg: bool = True
    lambda_vgg: float = 10.0
    vgg_path: str | None = None
    lambda_l1: float = 0.0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    niter: int = 100
    niter_decay: int = 100
    batch_size: int = 1
    resolution: int | None = None
    flip: bool = True
    seed: int = 0
    num_workers: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    max_grad_norm: float | None = None
    max_steps_per_epoch: int = 0
    num_samples: int = 8

    def __post_init__(self) -> None:
        for name in ("label_nc", "output_nc", "ngf", "ndf", "n_layers_D", "num_D", "batch_size"):
            _positive(name, getattr(self, name))
        for name in ("n_downsample", "n_blocks", "n_blocks_local", "niter_fix_global", "niter"):
            _positive(name, getattr(self, name), minimum=0)
        for name in ("niter_decay", "num_workers", "checkpoint_every", "max_steps_per_epoch"):
            _positive(name, getattr(self, name), minimum=0)
        _positive("keep_checkpoints", self.keep_checkpoints)
        _positive("num_samples", self.num_samples)
        _positive("seed", self.seed, minimum=0)
        if self.epochs < 1:
            raise ConfigError(f"niter + niter_decay must be >= 1, got {self.niter} + {self.niter_decay}")
        for name in ("lambda_feat", "lambda_vgg", "lambda_l1"):
            _non_negative(name, getattr(self, name))
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.generator not in GENERATORS:
            raise ConfigError(f"generator must be one of {GENERATORS}, got {self.generator!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ConfigError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.resolution is not None:
            _positive("resolution", self.resolution)
            self.check_size(self.resolution, self.resolution)
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm!r}")

    # -- derived values -----------------------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        """``niter + niter_decay``: the epochs of the run."""
        return self.niter + self.niter_decay

    @property
    def input_nc(self) -> int:
        """Generator input channels: ``label_nc`` one-hot channels plus the edge channel when used."""
        return self.label_nc + int(self.edge_channel)

    @property
    def discriminator_input_nc(self) -> int:
        """Discriminator input channels: the generator's input and the image (``input_nc + output_nc``)."""
        return self.input_nc + self.output_nc

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: ``2 ** n_downsample``, twice that with the local enhancer."""
        return 2 ** (self.n_downsample + (1 if self.generator == "local" else 0))

    def check_size(self, height: int, width: int) -> None:
        """Raise :class:`ConfigError` unless ``height`` and ``width`` are multiples of :attr:`size_multiple`."""
        m = self.size_multiple
        if height % m or width % m:
            what = f"2**n_downsample = 2**{self.n_downsample}"
            if self.generator == "local":
                what += " x 2 (local enhancer)"
            raise ConfigError(
                f"image size {height}x{width} is not divisible by {m} ({what}); resize the data to a "
                f"multiple of {m} (e.g. {max(m, round(height / m) * m)})"
            )

    # -- (de)serialisation --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Pix2PixHDConfig:
        """Build from a params mapping; unknown keys raise :class:`ConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown Pix2PixHD setting(s) {unknown}; expected some of {sorted(names)}")
        return cls(**dict(values))

    @classmethod
    def toy(cls, **overrides: Any) -> Pix2PixHDConfig:
        """The toy scale (:data:`TOY_SETTINGS`) with ``overrides``."""
        return cls.from_dict({**TOY_SETTINGS, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (for manifests, checkpoints and MLflow params)."""
        return dataclasses.asdict(self)


def lr_factor(epoch: int, niter: int, niter_decay: int) -> float:
    """The learning-rate factor of 0-based ``epoch``: 1 for the first ``niter`` epochs, then
    ``1 - (epoch - niter) / niter_decay`` (as upstream, whose decay starts after epoch ``niter + 1``): the
    last epoch trains at ``1 / niter_decay`` and the rate reaches 0 when the run ends."""
    if epoch < niter or niter_decay == 0:
        return 1.0
    return max(0.0, 1.0 - (epoch - niter) / niter_decay)
