"""Every knob of the small text-to-image latent diffusion base (VAE, UNet, text encoder, scheduler, training).

The architecture is Stable Diffusion's, shrunk: a diffusers ``AutoencoderKL`` whose latent is
``2 ** (len(vae_block_out_channels) - 1)`` times smaller than the image (4x at the defaults: 64x64x3 ->
16x16x4), a ``UNet2DConditionModel`` with cross-attention down / up blocks on the latent, a
``transformers.CLIPTextModel`` trained from scratch on CLIP's tokenizer (:mod:`fp_diffusion.base.tokenizer`,
49408 tokens, ``text_max_length`` positions) and SD's ``DDPMScheduler`` (1000 steps, ``scaled_linear``
betas 0.00085 .. 0.012).

The defaults are the toy scale the CPU pipeline trains (``DiffusionBaseConfig()``, 64x64):

* VAE: blocks (16, 32, 64), 1 layer each, 8 norm groups, mid-block attention, latent 16x16x4: 681,911
  parameters. UNet: blocks (32, 64, 128), cross-attention in the first two down blocks (and the last two up
  blocks and the middle), 32 channels per head, 16 norm groups: 3,168,324 parameters. Text encoder: 2 layers,
  hidden 64, 4 heads, 32 positions: 3,264,256 parameters, 3,162,112 of them the token embeddings.
* Runs: ``dataset_repeats`` 4, so on 410 images an epoch is 51 steps of 32; VAE 3 epochs (153 steps, lr 1e-3),
  UNet + text encoder 16 epochs (816 steps, lr 1e-3, 100 warm-up steps, cosine), caption dropout 0.1.
* Cost per step on this project's 2-core CPU: VAE 0.58 s with ``torch.set_num_threads(1)``, 0.31 s with 2;
  UNet + text encoder 0.34 s / 0.19-0.24 s; so the whole base is ~50 s + ~3 min (+ ~15 s of latent encoding,
  checkpoints and samples) = ~4 min on 2 threads, ~6.5 min on 1. (Per-step costs measured on a shared
  machine; the full run there, under a load average of 3-6 from other jobs, took 410 s + 872 s wall.)
* What it reaches on 410 structured 64x64 "faces" (ellipse, hair, eyes, mouth; captions such as "a photo
  of a young woman with long blond hair"), at these defaults: UNet epoch loss 0.72, 0.21, 0.11 ... 0.048;
  DDIM 25-step samples (guidance 3) show a skin-coloured oval, a hair cap (blond for "blond" captions, brown
  for most others), two eyes and a mouth, on blotchy greyish backgrounds; the VAE's reconstruction L1 is 0.19
  (in [-1, 1] units; latent std 2.9, scaling factor 0.344) and is the weak part: an earlier run with 180 VAE
  steps (and 960 UNet steps) reached L1 0.14 and clearer colours, so ``vae_epochs=4`` is the first knob to
  turn when the budget allows (not measured end to end).

``mixed_precision``, ``cpu``, ``checkpoint_every``, ``keep_checkpoints`` and ``max_grad_norm`` are the
training harness's (``fp_core.training.HarnessConfig.from_settings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BETA_SCHEDULES",
    "LR_SCHEDULES",
    "PREDICTION_TYPES",
    "TINY_SETTINGS",
    "ConfigError",
    "DiffusionBaseConfig",
    "build_scheduler",
    "build_text_encoder",
    "build_unet",
    "build_vae",
]

PREDICTION_TYPES = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("scaled_linear", "linear", "squaredcos_cap_v2")
LR_SCHEDULES = ("constant_with_warmup", "cosine", "linear")
MIXED_PRECISION = ("no", "fp16", "bf16")
_TUPLES = ("vae_block_out_channels", "unet_block_out_channels", "unet_cross_attention")


TINY_SETTINGS: dict[str, Any] = {
    "resolution": 16,
    "vae_block_out_channels": (8, 8),
    "vae_norm_num_groups": 4,
    "unet_block_out_channels": (16, 16),
    "unet_cross_attention": (True, False),
    "unet_attention_head_dim": 8,
    "unet_norm_num_groups": 8,
    "text_hidden_size": 16,
    "text_layers": 1,
    "text_heads": 2,
    "text_intermediate_size": 32,
    "text_max_length": 8,
    "vae_epochs": 2,
    "unet_epochs": 2,
    "vae_batch_size": 4,
    "unet_batch_size": 4,
    "unet_warmup_steps": 2,
    "dataset_repeats": 1,
    "num_samples": 2,
    "sample_steps": 2,
}
"""A few-thousand-parameter base at 16x16 (latent 8x8) for tests: ``DiffusionBaseConfig.tiny()``."""


class ConfigError(ValueError):
    """A diffusion-base setting that is unknown or out of range."""


def _int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")


def _number(name: str, value: Any, *, positive: bool = False, at_most: float | None = None) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    ok = ok and (value > 0 if positive else value >= 0) and (at_most is None or value <= at_most)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(
            f"{name} must be a number {bound}{f' and <= {at_most}' if at_most else ''}, got {value!r}"
        )


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")


def _channels(name: str, values: tuple[int, ...], groups: int) -> None:
    if len(values) < 1:
        raise ConfigError(f"{name} must hold at least one width, got {values!r}")
    for width in values:
        _int(name, width)
        if width % groups:
            raise ConfigError(
                f"every width of {name} must be divisible by the norm groups {groups}, got {values}"
            )


@dataclass
class DiffusionBaseConfig:
    """One diffusion base's architecture and training run.

    Attributes:
        resolution: image side in pixels (square); a multiple of the VAE factor times the UNet factor.
        vae_block_out_channels, vae_layers_per_block, vae_latent_channels, vae_norm_num_groups: the
            ``AutoencoderKL`` (one down block per width; ``len - 1`` of them halve the size).
        vae_mid_block_attention: the self-attention of the VAE's middle block (SD has it).
        unet_block_out_channels, unet_layers_per_block, unet_norm_num_groups: the ``UNet2DConditionModel``.
        unet_cross_attention: per down block, whether it is a ``CrossAttnDownBlock2D`` (else ``DownBlock2D``);
            the up blocks mirror it (SD 1.5: True, True, True, False).
        unet_attention_head_dim: channels per attention head (diffusers' ``attention_head_dim`` of SD 1.x is
            in fact the head count; here heads are ``width // unet_attention_head_dim`` per block).
        text_hidden_size, text_layers, text_heads, text_intermediate_size: the ``CLIPTextModel``; its hidden
            size is the UNet's ``cross_attention_dim``.
        text_max_length: tokenizer ``model_max_length`` = the text encoder's ``max_position_embeddings``.
        num_train_timesteps, beta_start, beta_end, beta_schedule, prediction_type: the ``DDPMScheduler``.
        vae_epochs, vae_lr, vae_batch_size, vae_kl_weight: the VAE run (L1 + MSE reconstruction +
            ``vae_kl_weight`` x KL).
        unet_epochs, unet_lr, unet_batch_size, unet_warmup_steps, lr_schedule, weight_decay: the UNet + text
            encoder run (AdamW, diffusers' ``get_scheduler``).
        gradient_accumulation_steps: batches per optimiser step of the UNet run.
        caption_dropout: probability a caption is replaced by ``""`` (classifier-free guidance).
        dataset_repeats: passes over the data per epoch (each a fresh shuffle): on a few hundred images
            an epoch is a dozen steps, and the harness checkpoints at every epoch end.
        flip: random horizontal flips (of the image, hence of its latent) in both runs.
        seed: initialisation, data order, noise, timesteps and dropout all derive from it.
        max_steps_per_epoch: cap on batches per epoch (0: all), for quick runs.
        num_samples, sample_steps, sample_guidance: what ``on_samples`` grids show.
    """

    resolution: int = 64
    vae_block_out_channels: tuple[int, ...] = (16, 32, 64)
    vae_layers_per_block: int = 1
    vae_latent_channels: int = 4
    vae_norm_num_groups: int = 8
    vae_mid_block_attention: bool = True
    unet_block_out_channels: tuple[int, ...] = (32, 64, 128)
    unet_layers_per_block: int = 1
    unet_cross_attention: tuple[bool, ...] = (True, True, False)
    unet_attention_head_dim: int = 32
    unet_norm_num_groups: int = 16
    text_hidden_size: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_intermediate_size: int = 256
    text_max_length: int = 32
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "scaled_linear"
    prediction_type: str = "epsilon"
    vae_epochs: int = 3
    vae_lr: float = 1e-3
    vae_batch_size: int = 32
    vae_kl_weight: float = 1e-6
    unet_epochs: int = 16
    unet_lr: float = 1e-3
    unet_batch_size: int = 32
    unet_warmup_steps: int = 100
    lr_schedule: str = "cosine"
    weight_decay: float = 1e-2
    gradient_accumulation_steps: int = 1
    caption_dropout: float = 0.1
    dataset_repeats: int = 4
    flip: bool = True
    seed: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    max_grad_norm: float | None = 1.0
    max_steps_per_epoch: int = 0
    num_samples: int = 8
    sample_steps: int = 25
    sample_guidance: float = 3.0

    def __post_init__(self) -> None:
        for name in _TUPLES:
            value = getattr(self, name)
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{name} must be a sequence, got {value!r}")
            setattr(self, name, tuple(value))
        _channels("vae_block_out_channels", self.vae_block_out_channels, self.vae_norm_num_groups)
        _channels("unet_block_out_channels", self.unet_block_out_channels, self.unet_norm_num_groups)
        if len(self.unet_cross_attention) != len(self.unet_block_out_channels):
            raise ConfigError(
                f"unet_cross_attention has {len(self.unet_cross_attention)} entries, one per UNet block "
                f"({len(self.unet_block_out_channels)}) expected"
            )
        for width in self.unet_block_out_channels:
            if width % self.unet_attention_head_dim:
                raise ConfigError(
                    f"UNet width {width} is not divisible by unet_attention_head_dim {self.unet_attention_head_dim}"
                )
        if self.text_hidden_size % self.text_heads:
            raise ConfigError(
                f"text_hidden_size {self.text_hidden_size} is not divisible by text_heads {self.text_heads}"
            )
        self._check_ints()
        self._check_numbers()
        _choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        _choice("prediction_type", self.prediction_type, PREDICTION_TYPES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        if self.resolution % self.total_factor:
            raise ConfigError(
                f"resolution {self.resolution} is not divisible by {self.total_factor} (VAE factor "
                f"{self.latent_factor} x UNet factor {self.total_factor // self.latent_factor})"
            )

    def _check_ints(self) -> None:
        for name in ("resolution", "vae_layers_per_block", "vae_latent_channels", "vae_norm_num_groups"):
            _int(name, getattr(self, name))
        for name in ("unet_layers_per_block", "unet_attention_head_dim", "unet_norm_num_groups"):
            _int(name, getattr(self, name))
        for name in ("text_hidden_size", "text_layers", "text_heads", "text_intermediate_size"):
            _int(name, getattr(self, name))
        _int("text_max_length", self.text_max_length, minimum=3)
        for name in ("num_train_timesteps", "vae_epochs", "vae_batch_size", "unet_epochs", "unet_batch_size"):
            _int(name, getattr(self, name))
        for name in (
            "gradient_accumulation_steps",
            "keep_checkpoints",
            "num_samples",
            "sample_steps",
            "dataset_repeats",
        ):
            _int(name, getattr(self, name))
        for name in ("unet_warmup_steps", "seed", "checkpoint_every", "max_steps_per_epoch"):
            _int(name, getattr(self, name), minimum=0)

    def _check_numbers(self) -> None:
        for name in ("beta_start", "beta_end", "vae_lr", "unet_lr"):
            _number(name, getattr(self, name), positive=True)
        if not self.beta_start < self.beta_end < 1:
            raise ConfigError(f"need beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        for name in ("vae_kl_weight", "weight_decay", "sample_guidance"):
            _number(name, getattr(self, name))
        _number("caption_dropout", self.caption_dropout, at_most=1.0)
        if self.max_grad_norm is not None:
            _number("max_grad_norm", self.max_grad_norm, positive=True)

    # -- derived values -----------------------------------------------------------------------------------
    @property
    def latent_factor(self) -> int:
        """How many times smaller the latent is than the image: ``2 ** (len(vae_block_out_channels) - 1)``."""
        return 2 ** (len(self.vae_block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        """The latent's side: ``resolution // latent_factor``."""
        return self.resolution // self.latent_factor

    @property
    def total_factor(self) -> int:
        """The image side must be a multiple of this (VAE factor times the UNet's downsamplings)."""
        return self.latent_factor * 2 ** (len(self.unet_block_out_channels) - 1)

    # -- (de)serialisation --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DiffusionBaseConfig:
        """Build from a params mapping (lists accepted for tuples); unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"unknown diffusion-base setting(s) {unknown}; expected some of {sorted(names)}"
            )
        return cls(**dict(values))

    @classmethod
    def tiny(cls, **overrides: Any) -> DiffusionBaseConfig:
        """The test scale (:data:`TINY_SETTINGS`) with ``overrides``."""
        return cls.from_dict({**TINY_SETTINGS, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (tuples as lists) for manifests, checkpoints and MLflow params."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def build_vae(config: DiffusionBaseConfig) -> Any:
    """An untrained ``AutoencoderKL``: [B, 3, R, R] in [-1, 1] <-> latents [B, C, R/f, R/f]."""
    from diffusers import AutoencoderKL

    n = len(config.vae_block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=config.vae_block_out_channels,
        layers_per_block=config.vae_layers_per_block,
        latent_channels=config.vae_latent_channels,
        norm_num_groups=config.vae_norm_num_groups,
        sample_size=config.resolution,
        mid_block_add_attention=config.vae_mid_block_attention,
        scaling_factor=1.0,
    )


def build_unet(config: DiffusionBaseConfig) -> Any:
    """An untrained ``UNet2DConditionModel`` on latents [B, C, R/f, R/f] with text states [B, L, D]."""
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if c else "DownBlock2D" for c in config.unet_cross_attention)
    up = tuple("CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(config.unet_cross_attention))
    heads = tuple(w // config.unet_attention_head_dim for w in config.unet_block_out_channels)
    return UNet2DConditionModel(
        sample_size=config.latent_size,
        in_channels=config.vae_latent_channels,
        out_channels=config.vae_latent_channels,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=config.unet_block_out_channels,
        layers_per_block=config.unet_layers_per_block,
        norm_num_groups=config.unet_norm_num_groups,
        cross_attention_dim=config.text_hidden_size,
        attention_head_dim=heads,
    )


def build_text_encoder(config: DiffusionBaseConfig) -> Any:
    """An untrained ``transformers.CLIPTextModel``: ids [B, L] -> last hidden states [B, L, D]."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from fp_diffusion.base.tokenizer import VOCAB_SIZE

    text_config = CLIPTextConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=config.text_hidden_size,
        intermediate_size=config.text_intermediate_size,
        num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads,
        max_position_embeddings=config.text_max_length,
        projection_dim=config.text_hidden_size,
        bos_token_id=VOCAB_SIZE - 2,
        eos_token_id=VOCAB_SIZE - 1,
        pad_token_id=VOCAB_SIZE - 1,
    )
    return CLIPTextModel(text_config)


def build_scheduler(config: DiffusionBaseConfig) -> Any:
    """SD's training ``DDPMScheduler`` (``prediction_type`` sets the target: noise or velocity)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
        clip_sample=False,
        steps_offset=1,
    )
