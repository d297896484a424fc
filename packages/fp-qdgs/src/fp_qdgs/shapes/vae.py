"""The shapes VAE of the public QDGS code (6-d latent), its trainer, and its decoder as a QDGS generator.

Encoder: three 3x3 convolutions, stride 2, padding 1, ReLU, channels 3 -> 16 -> 32 -> 32, so 128 -> 64 -> 32 ->
16 pixels and ``32 * 16 * 16 = 8192`` features; two linear heads 8192 -> 6 for the mean and the log-variance.
Decoder: linear 6 -> 8192 (ReLU), reshaped to ``[32, 16, 16]``, three 4x4 transposed convolutions, stride 2,
padding 1 (16 -> 32 -> 64 -> 128; channels 32 -> 32 -> 16 -> 3; ReLU between), sigmoid.

Training maximises the ELBO: loss per image = binary cross-entropy of the reconstruction summed over pixels +
``KL(q(z|x) || N(0, I))`` summed over latent dims, averaged over the batch (BCE because the images are mostly
saturated white and two flat colours; the decoder ends in a sigmoid). Adam, on
:class:`fp_core.training.TrainingHarness` (checkpoints and resume). :func:`save_vae` / :func:`load_vae` write
and read a trained VAE: ``model.safetensors`` + ``config.json`` + a ``"shapes-vae"`` manifest, no pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

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

__all__ = [
    "LATENT_DIM",
    "VAE_KIND",
    "DecoderGenerator",
    "ShapesVAE",
    "VAEOutput",
    "elbo_loss",
    "load_vae",
    "save_vae",
    "train_vae",
]

LATENT_DIM = 6
VAE_KIND = "shapes-vae"
VAE_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class VAEOutput(NamedTuple):
    """``reconstruction [B, 3, 128, 128]``, ``mean [B, 6]``, ``logvar [B, 6]``, ``z [B, 6]``."""

    reconstruction: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


class ShapesVAE(nn.Module):
    """Convolutional VAE for ``[B, 3, 128, 128]`` images in ``[0, 1]`` with a ``latent_dim``-d latent."""

    def __init__(self, latent_dim: int = LATENT_DIM) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.fc_mean = nn.Linear(32 * 16 * 16, latent_dim)
        self.fc_logvar = nn.Linear(32 * 16 * 16, latent_dim)
        self.decoder_fc = nn.Linear(latent_dim, 32 * 16 * 16)
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1),
        )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, 128, 128] -> (mean [B, d], logvar [B, d])``."""
        h = self.encoder(images)
        return self.fc_mean(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, d] -> images [B, 3, 128, 128]`` in ``(0, 1)``."""
        h = F.relu(self.decoder_fc(z)).view(-1, 32, 16, 16)
        return torch.sigmoid(self.decoder_conv(h))

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, sample ``z = mean + exp(logvar / 2) * eps``, decode."""
        mean, logvar = self.encode(images)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * eps
        return VAEOutput(self.decode(z), mean, logvar, z)


def elbo_loss(out: VAEOutput, images: torch.Tensor) -> torch.Tensor:
    """Negative ELBO per image, batch mean: ``BCE summed over pixels + KL summed over dims`` -> scalar."""
    bce = F.binary_cross_entropy(out.reconstruction, images, reduction="sum")
    kl = 0.5 * torch.sum(out.logvar.exp() + out.mean.square() - 1.0 - out.logvar)
    return (bce + kl) / images.shape[0]


def _check_training(images: torch.Tensor, epochs: int, batch_size: int) -> None:
    if images.dim() != 4 or images.shape[1:] != (3, 128, 128):
        raise ValueError(f"images must have shape [N, 3, 128, 128], got {tuple(images.shape)}")
    if len(images) == 0:
        raise ValueError("images is empty; the VAE needs at least one training image")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")


def train_vae(
    vae: ShapesVAE,
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
    """Train ``vae`` on ``images [N, 3, 128, 128]`` in ``[0, 1]`` with Adam on :class:`fp_core.training.TrainingHarness`;
    return the mean batch loss of every epoch (the whole run's, a resumed one included).

    Checkpoints go to ``checkpoint_dir`` at every epoch end (and every ``harness.checkpoint_every`` steps);
    a run started on a directory holding one resumes from it, and ends with the same weights as an
    uninterrupted run: the batch order comes from ``(seed, "vae", "order", epoch)`` and the
    reparameterisation noise of step ``s`` of epoch ``e`` from ``(seed, "vae", "noise", e, s)``. ``harness``
    (default: ``HarnessConfig(checkpoint_dir, progress=False)``) sets device, precision and checkpointing;
    its ``checkpoint_dir`` is replaced by ``checkpoint_dir``. ``log`` gets ``{"vae/loss"}`` every step (step =
    global step, from 0) and ``{"epoch/vae/loss"}`` at each epoch end (step = epoch, from 0).
    """
    _check_training(images, epochs, batch_size)
    config = (
        replace(harness, checkpoint_dir=checkpoint_dir)
        if harness
        else HarnessConfig(checkpoint_dir, progress=False)
    )
    run_config = {
        "model": "shapes-vae",
        "latent_dim": vae.latent_dim,
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
        sampler=EpochPermutation(len(images), seed, "vae", "order"),
    )
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    model, optimizer, loader = trainer.prepare(vae, optimizer, loader)
    trainer.resume()
    for epoch in trainer.epochs(epochs):
        model.train()
        for (x,) in trainer.batches(loader, epoch):
            noise = torch_generator(
                seed, "vae", "noise", epoch, trainer.state.step_in_epoch, device=trainer.device
            )
            with trainer.autocast():
                loss = elbo_loss(model(x, generator=noise), x)
            trainer.check_finite({"vae/loss": loss})
            trainer.backward(loss)
            trainer.step(optimizer, model.parameters())
            trainer.log_step({"vae/loss": float(loss.detach())})
    trainer.unwrap(model).eval()
    return [float(row["epoch/vae/loss"]) for row in trainer.state.history]


class DecoderGenerator(nn.Module):
    """A trained VAE's decoder as a QDGS generator: ``z [B, 6] -> [B, 3, 128, 128]``, prior ``N(0, I_6)``."""

    def __init__(self, vae: ShapesVAE) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)

    @property
    def latent_dim(self) -> int:
        """6 (the VAE's latent size)."""
        return self.vae.latent_dim

    @property
    def mean_prior_norm(self) -> float:
        """``E ||z||`` for ``z ~ N(0, I_d)`` (about 2.35 for d = 6)."""
        return gaussian_mean_norm(self.vae.latent_dim)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, d]`` standard normal latents on the VAE's device."""
        device = next(self.vae.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, d] -> [B, 3, 128, 128]`` in ``(0, 1)``."""
        return self.vae.decode(latents)


def save_vae(
    vae: ShapesVAE, directory: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``vae`` to ``directory`` atomically: ``model.safetensors``, ``config.json`` (``latent_dim``) and a
    ``"shapes-vae"`` manifest (``extra``, JSON-serialisable, e.g. the training settings and losses, goes into
    it under ``"extra"``); return ``directory``."""
    directory = Path(directory)
    state = {name: t.detach().cpu().contiguous() for name, t in vae.state_dict().items()}
    config = {"latent_dim": int(vae.latent_dim)}
    with atomic_output_dir(directory) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        write_json(tmp / CONFIG_FILE, config)
        write_manifest(
            tmp,
            VAE_KIND,
            version=VAE_VERSION,
            params=config,
            weights=WEIGHTS_FILE,
            parameters=sum(t.numel() for t in state.values()),
            extra=dict(extra or {}),
        )
    return directory


def load_vae(directory: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> ShapesVAE:
    """The VAE :func:`save_vae` wrote to ``directory``, in eval mode on ``device``.

    Raises :class:`fp_core.manifest.ManifestError` naming the file when the manifest, the config or the
    weights are missing or do not match (wrong kind, missing or extra tensors, wrong shapes).
    """
    directory = Path(directory)
    read_manifest(directory, VAE_KIND, required=("weights",), max_version=VAE_VERSION)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        latent_dim = int(config["latent_dim"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ManifestError(
            f"{config_path} is not a readable VAE config with 'latent_dim': {error!r}"
        ) from None
    if not weights_path.is_file():
        raise ManifestError(f"{weights_path} is missing; {directory} is not a complete shapes VAE")
    try:
        state = load_file(str(weights_path), device="cpu")
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise ManifestError(f"{weights_path} is not a readable safetensors file: {error}") from None
    vae = ShapesVAE(latent_dim)
    expected = {name: tuple(t.shape) for name, t in vae.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in state.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        shapes = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
        raise ManifestError(
            f"{weights_path} does not hold a ShapesVAE(latent_dim={latent_dim}): missing {missing}, "
            f"unexpected {unexpected}, wrong shapes {[(n, found[n], expected[n]) for n in shapes]}"
        )
    vae.load_state_dict(state)
    return vae.to(device).eval()
