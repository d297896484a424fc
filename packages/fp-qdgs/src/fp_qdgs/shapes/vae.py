"""The shapes VAE of the public QDGS code (6-d latent), its trainer, and its decoder as a QDGS generator.

Encoder: three 3x3 convolutions, stride 2, padding 1, ReLU, channels 3 -> 16 -> 32 -> 32, so 128 -> 64 -> 32 ->
16 pixels and ``32 * 16 * 16 = 8192`` features; two linear heads 8192 -> 6 for the mean and the log-variance.
Decoder: linear 6 -> 8192 (ReLU), reshaped to ``[32, 16, 16]``, three 4x4 transposed convolutions, stride 2,
padding 1 (16 -> 32 -> 64 -> 128; channels 32 -> 32 -> 16 -> 3; ReLU between), sigmoid.

Training maximises the ELBO: loss per image = binary cross-entropy of the reconstruction summed over pixels +
``KL(q(z|x) || N(0, I))`` summed over latent dims, averaged over the batch (BCE because the images are mostly
saturated white and two flat colours; the decoder ends in a sigmoid). Adam.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fp_core.logging import LogFn, null_log
from fp_core.seeds import torch_generator
from fp_qdgs.protocols import gaussian_mean_norm

__all__ = ["LATENT_DIM", "DecoderGenerator", "ShapesVAE", "VAEOutput", "elbo_loss", "train_vae"]

LATENT_DIM = 6


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


def train_vae(
    vae: ShapesVAE,
    images: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    log: LogFn = null_log,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Train ``vae`` on ``images [N, 3, 128, 128]`` in ``[0, 1]`` with Adam; the mean loss of each epoch.

    Shuffling and the reparameterisation noise come from ``(seed, "vae", ...)`` streams. ``log`` gets
    ``{"vae/loss": ...}`` at every epoch end (step = epoch, from 1).
    """
    if images.dim() != 4 or images.shape[1:] != (3, 128, 128):
        raise ValueError(f"images must have shape [N, 3, 128, 128], got {tuple(images.shape)}")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    vae.to(device).train()
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    noise = torch_generator(seed, "vae", "noise", device=device)
    losses: list[float] = []
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=torch_generator(seed, "vae", "order", epoch))
        total, count = 0.0, 0
        for start in range(0, len(images), batch_size):
            x = images[order[start : start + batch_size]].to(device)
            loss = elbo_loss(vae(x, generator=noise), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(x)
            count += len(x)
        losses.append(total / max(count, 1))
        log({"vae/loss": losses[-1]}, epoch + 1)
    vae.eval()
    return losses


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
