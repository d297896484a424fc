"""The embedded default face generator: a convolutional VAE on the 64 x 64 synthetic faces.

The shapes VAE (:mod:`fp_qdgs.shapes.vae`) generalised by a config, in a module of its own (the shapes VAE and
its saved format stay as they are): encoder ``n`` 4x4 convolutions, stride 2, padding 1, ReLU, channels
``3 -> channels[0] -> ...`` (``S -> S / 2**n`` pixels), two linear heads to the ``latent_dim``-d mean and
log-variance; decoder a linear layer (ReLU) back to ``[channels[-1], S / 2**n, S / 2**n]`` and ``n`` 4x4
transposed convolutions, stride 2, padding 1 (ReLU between), sigmoid. Defaults: ``S = 64``, channels
``(32, 64, 128)`` (64 -> 8 pixels), ``latent_dim = 32``.

Training maximises the ELBO with the shapes VAE's loss (:func:`fp_qdgs.shapes.vae.elbo_loss`: pixel BCE summed
+ KL, per image) and its seeded :class:`~fp_core.sampling.EpochPermutation` batch order, with Adam on
:class:`fp_core.training.TrainingHarness` (checkpoints, resume). ``encode`` gives the latents of labelled
renders for :func:`fp_qdgs.faces.variants.fit_directions`; :class:`FaceDecoderGenerator` is the decoder as a
QDGS generator. :func:`save_face_vae` / :func:`load_face_vae`: ``model.safetensors`` + ``config.json`` + a
``"face-vae"`` manifest, no pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fp_core.atomic import atomic_output_dir, write_json
from fp_core.logging import LogFn, null_log
from fp_core.manifest import ManifestError, read_manifest, write_manifest
from fp_core.sampling import EpochPermutation
from fp_core.seeds import torch_generator
from fp_core.training import HarnessConfig, TrainingHarness
from fp_qdgs.protocols import gaussian_mean_norm
from fp_qdgs.shapes.vae import VAEOutput, elbo_loss

__all__ = [
    "FACE_VAE_KIND",
    "FaceDecoderGenerator",
    "FaceVAE",
    "FaceVAEConfig",
    "load_face_vae",
    "save_face_vae",
    "train_face_vae",
]

FACE_VAE_KIND = "face-vae"
FACE_VAE_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class FaceVAEConfig:
    """``image_size`` S (divisible by ``2 ** len(channels)``), ``latent_dim``, encoder ``channels``."""

    image_size: int = 64
    latent_dim: int = 32
    channels: tuple[int, ...] = (32, 64, 128)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        n = len(self.channels)
        if n < 1 or any(c < 1 for c in self.channels) or self.latent_dim < 1:
            raise ValueError(f"need channels >= 1 (at least one) and latent_dim >= 1, got {self}")
        if self.image_size < 2**n or self.image_size % 2**n:
            raise ValueError(f"image_size {self.image_size} must be a multiple of 2**{n} = {2**n}")

    @property
    def bottleneck(self) -> int:
        """Pixels per side at the bottleneck: ``S / 2 ** len(channels)``."""
        return self.image_size // 2 ** len(self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}


class FaceVAE(nn.Module):
    """Convolutional VAE for ``[B, 3, S, S]`` images in ``[0, 1]`` (module docstring)."""

    def __init__(self, config: FaceVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or FaceVAEConfig()
        chans, b = self.config.channels, self.config.bottleneck
        layers: list[nn.Module] = []
        for c_in, c_out in zip((3, *chans[:-1]), chans):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        features = chans[-1] * b * b
        self.fc_mean = nn.Linear(features, self.config.latent_dim)
        self.fc_logvar = nn.Linear(features, self.config.latent_dim)
        self.decoder_fc = nn.Linear(self.config.latent_dim, features)
        up: list[nn.Module] = []
        outs = (*chans[::-1][1:], 3)
        for i, (c_in, c_out) in enumerate(zip(chans[::-1], outs)):
            up.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(chans) - 1:
                up.append(nn.ReLU())
        self.decoder_conv = nn.Sequential(*up)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, S, S] -> (mean [B, d], logvar [B, d])``."""
        s = self.config.image_size
        if images.dim() != 4 or images.shape[1:] != (3, s, s):
            raise ValueError(f"images must have shape [B, 3, {s}, {s}], got {tuple(images.shape)}")
        h = self.encoder(images)
        return self.fc_mean(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, d] -> images [B, 3, S, S]`` in ``(0, 1)``."""
        b = self.config.bottleneck
        h = F.relu(self.decoder_fc(z)).view(-1, self.config.channels[-1], b, b)
        return torch.sigmoid(self.decoder_conv(h))

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, sample ``z = mean + exp(logvar / 2) * eps``, decode."""
        mean, logvar = self.encode(images)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * eps
        return VAEOutput(self.decode(z), mean, logvar, z)


def train_face_vae(
    vae: FaceVAE,
    images: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    checkpoint_dir: str | os.PathLike[str],
    batch_size: int = 64,
    lr: float = 1e-3,
    log: LogFn = null_log,
    harness: HarnessConfig | None = None,
    tracking_id: str | None = None,
) -> list[float]:
    """Train ``vae`` on ``images [N, 3, S, S]`` in ``[0, 1]``; return each epoch's mean batch loss.

    As :func:`fp_qdgs.shapes.vae.train_vae`: checkpoints in ``checkpoint_dir`` (a run on a directory holding
    one resumes to the same weights), batch order from ``(seed, "vae", "order", epoch)``, reparameterisation
    noise from ``(seed, "face-vae", "noise", epoch, step)``; ``log`` gets ``{"vae/loss"}`` per step and
    ``{"epoch/vae/loss"}`` per epoch.
    """
    s = vae.config.image_size
    if images.dim() != 4 or images.shape[1:] != (3, s, s) or len(images) == 0:
        raise ValueError(f"images must have shape [N >= 1, 3, {s}, {s}], got {tuple(images.shape)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    config = (
        replace(harness, checkpoint_dir=checkpoint_dir)
        if harness
        else HarnessConfig(checkpoint_dir, progress=False)
    )
    run_config = {
        "model": FACE_VAE_KIND,
        **vae.config.to_dict(),
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "num_images": len(images),
    }
    trainer = TrainingHarness(config, run_config=run_config, log=log, tracking_id=tracking_id)
    loader = DataLoader(
        TensorDataset(images),
        batch_size=batch_size,
        sampler=EpochPermutation(len(images), seed, "face-vae", "order"),
    )
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    model, optimizer, loader = trainer.prepare(vae, optimizer, loader)
    trainer.resume()
    for epoch in trainer.epochs(epochs):
        model.train()
        for (x,) in trainer.batches(loader, epoch):
            step = trainer.state.step_in_epoch
            noise = torch_generator(seed, "face-vae", "noise", epoch, step, device=trainer.device)
            with trainer.autocast():
                loss = elbo_loss(model(x, generator=noise), x)
            trainer.check_finite({"vae/loss": loss})
            trainer.backward(loss)
            trainer.step(optimizer, model.parameters())
            trainer.log_step({"vae/loss": float(loss.detach())})
    trainer.unwrap(model).eval()
    return [float(row["epoch/vae/loss"]) for row in trainer.state.history]


class FaceDecoderGenerator(nn.Module):
    """A trained face VAE's decoder as a QDGS generator: ``z [B, d] -> [B, 3, S, S]``, prior ``N(0, I_d)``."""

    def __init__(self, vae: FaceVAE) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    @property
    def mean_prior_norm(self) -> float:
        return gaussian_mean_norm(self.vae.latent_dim)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, d]`` standard normal latents on the VAE's device."""
        device = next(self.vae.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents)


def save_face_vae(
    vae: FaceVAE, directory: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``vae`` to ``directory`` atomically (``model.safetensors``, ``config.json``, a ``"face-vae"``
    manifest with ``extra`` under ``"extra"``); return ``directory``."""
    directory = Path(directory)
    state = {name: t.detach().cpu().contiguous() for name, t in vae.state_dict().items()}
    config = vae.config.to_dict()
    with atomic_output_dir(directory) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        write_json(tmp / CONFIG_FILE, config)
        write_manifest(
            tmp,
            FACE_VAE_KIND,
            version=FACE_VAE_VERSION,
            params=config,
            weights=WEIGHTS_FILE,
            parameters=sum(t.numel() for t in state.values()),
            extra=dict(extra or {}),
        )
    return directory


def load_face_vae(directory: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> FaceVAE:
    """The VAE :func:`save_face_vae` wrote, in eval mode on ``device``; :class:`ManifestError` naming the file
    when the manifest, config or weights are missing or do not match."""
    directory = Path(directory)
    read_manifest(directory, FACE_VAE_KIND, required=("weights",), max_version=FACE_VAE_VERSION)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
        config = FaceVAEConfig(int(raw["image_size"]), int(raw["latent_dim"]), tuple(raw["channels"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"{config_path} is not a readable face VAE config: {error!r}") from None
    try:
        state = load_file(str(weights_path), device="cpu")
    except Exception as error:  # missing, or safetensors' own error types for corrupt files
        raise ManifestError(f"{weights_path} is not a readable safetensors file: {error}") from None
    vae = FaceVAE(config)
    try:
        vae.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ManifestError(f"{weights_path} does not hold a FaceVAE({config}): {error}") from None
    return vae.to(device).eval()
