"""A toy differentiable generator and scorer: pyribs' sphere benchmark with linear-projection measures.

``LinearSigmoidGenerator`` turns latents ``[B, n]`` into small images ``sigmoid(z W) -> [B, 3, s, s]`` with a
fixed random ``W``, so there is a real image path to differentiate through. ``SphereScorer`` scores the latents
the way pyribs' DQD tutorials do:

* objective ``100 * (f(z) - f_worst) / (0 - f_worst)``, ``f(z) = sum_i (z_i - 0.4 * 5.12)^2`` (the shifted
  sphere), ``f_worst = n * (5.12 + 0.4 * 5.12)^2``: 100 at the optimum, 0 at the corner of ``[-5.12, 5.12]^n``;
* measures: ``(sum(z[:n/2]), sum(z[n/2:]))``, a linear projection (pyribs' "linear projection" domain without
  the clipping of large coordinates), so each measure's gradient is a constant 0/1 vector.

Optionally an image term ``image_weight * mean(images)`` joins the objective, to exercise the image gradient.
Used by the tests and by benchmarks; every sample is scored independently.
"""

from __future__ import annotations

import torch
from torch import nn

from fp_qdgs.protocols import gaussian_mean_norm

__all__ = ["LinearSigmoidGenerator", "SphereScorer"]


class LinearSigmoidGenerator(nn.Module):
    """``z [B, n] -> sigmoid(z @ W) [B, 3, size, size]`` with ``W [n, 3 * size^2]`` fixed by ``seed``; prior N(0, I)."""

    def __init__(self, latent_dim: int = 20, size: int = 4, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer(
            "weight", torch.randn(latent_dim, 3 * size * size, generator=g) / latent_dim**0.5
        )
        self._latent_dim, self.size = latent_dim, size

    @property
    def latent_dim(self) -> int:
        """``n``."""
        return self._latent_dim

    @property
    def mean_prior_norm(self) -> float:
        """``E ||z||`` under N(0, I_n)."""
        return gaussian_mean_norm(self._latent_dim)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, latent_dim]`` standard normal draws."""
        return torch.randn(n, self._latent_dim, generator=generator, device=self.weight.device)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, n] -> [B, 3, size, size]`` in ``(0, 1)``."""
        return torch.sigmoid(latents @ self.weight).view(-1, 3, self.size, self.size)


class SphereScorer:
    """Shifted-sphere objective and linear-projection measures of the latents (k = 2)."""

    def __init__(self, latent_dim: int = 20, image_weight: float = 0.0) -> None:
        if latent_dim < 2:
            raise ValueError(f"latent_dim must be >= 2, got {latent_dim}")
        self.latent_dim, self.image_weight = latent_dim, image_weight
        self.shift = 0.4 * 5.12
        self.worst = latent_dim * (5.12 + self.shift) ** 2

    @property
    def num_measures(self) -> int:
        """2."""
        return 2

    def __call__(self, images: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, H, W], latents [B, n] -> (objective [B], measures [B, 2])``."""
        f = (latents - self.shift).square().sum(dim=1)
        objective = 100.0 * (f - self.worst) / (0.0 - self.worst)
        if self.image_weight:
            objective = objective + self.image_weight * images.mean(dim=(1, 2, 3))
        half = self.latent_dim // 2
        measures = torch.stack([latents[:, :half].sum(dim=1), latents[:, half:].sum(dim=1)], dim=1)
        return objective, measures

    def update(self, images: torch.Tensor, accepted: torch.Tensor) -> None:
        """Stateless: nothing to do."""
