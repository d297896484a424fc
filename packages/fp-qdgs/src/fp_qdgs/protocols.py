"""What QDGS needs from a generator and a scorer, and the checks that hold them to it.

A *generator* maps latents ``[B, n]`` to images ``[B, 3, H, W]`` with values in ``[0, 1]``, differentiably, and
has a latent prior it can sample from. A *scorer* maps images (and the latents that made them) to one
objective ``[B]`` (higher is better) and ``k`` measures ``[B, k]``. Both are structural protocols: any object
with these members plugs in.

Every sample must be scored independently of the others in its batch (no batch statistics, e.g. BatchNorm in
training mode): :mod:`fp_qdgs.jacobian` takes per-sample gradients from one batched backward pass.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch

__all__ = [
    "Generator",
    "Scorer",
    "check_images",
    "check_scores",
    "gaussian_mean_norm",
    "generate",
]


@runtime_checkable
class Generator(Protocol):
    """A differentiable ``latents [B, latent_dim] -> images [B, 3, H, W]`` in ``[0, 1]`` with a latent prior."""

    @property
    def latent_dim(self) -> int:
        """``n``, the length of one latent vector."""
        ...

    @property
    def mean_prior_norm(self) -> float:
        """``E ||z||`` under the prior (the scale of the latent-norm regulariser)."""
        ...

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latents drawn from the prior: ``[n, latent_dim]`` on the generator's device."""
        ...

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents [B, latent_dim] -> images [B, 3, H, W]`` in ``[0, 1]``."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Objective and measures of generated images.

    ``update`` is called by the sampler after every evaluated batch with the images and a mask of the ones the
    search archive accepted; stateless scorers make it a no-op (the CLIP scorer fills its image memory).
    """

    @property
    def num_measures(self) -> int:
        """``k``, the number of measures."""
        ...

    def __call__(self, images: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, H, W], latents [B, n] -> (objective [B], measures [B, k])``, differentiable."""
        ...

    def update(self, images: torch.Tensor, accepted: torch.Tensor) -> None:
        """Observe an evaluated batch: ``images [B, 3, H, W]``, ``accepted [B]`` bool."""
        ...


def gaussian_mean_norm(dim: int) -> float:
    """``E ||z||`` for ``z ~ N(0, I_dim)``: ``sqrt(2) * Gamma((dim + 1) / 2) / Gamma(dim / 2)``."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return math.sqrt(2.0) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))


def check_images(images: torch.Tensor, batch: int, *, name: str = "generator") -> torch.Tensor:
    """Check a generator's output: a ``[batch, 3, H, W]`` floating tensor with finite values in ``[0, 1]``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name} must return a torch.Tensor of images [B, 3, H, W], got {type(images).__name__}"
        )
    if images.dim() != 4 or images.shape[0] != batch or images.shape[1] != 3:
        raise ValueError(
            f"{name} must return images of shape [B={batch}, 3, H, W] for {batch} latents, "
            f"got shape {tuple(images.shape)}"
        )
    if not images.dtype.is_floating_point:
        raise ValueError(f"{name} must return floating-point images in [0, 1], got dtype {images.dtype}")
    with torch.no_grad():
        lo, hi = float(images.min()), float(images.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must return images with values in [0, 1], got values in [{lo:.4g}, {hi:.4g}]"
        )
    return images


def check_scores(
    objective: torch.Tensor, measures: torch.Tensor, batch: int, num_measures: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a scorer's output: ``objective [batch]`` and ``measures [batch, num_measures]``."""
    if not isinstance(objective, torch.Tensor) or tuple(objective.shape) != (batch,):
        shape = tuple(objective.shape) if isinstance(objective, torch.Tensor) else type(objective).__name__
        raise ValueError(f"scorer must return an objective of shape [B={batch}], got {shape}")
    if not isinstance(measures, torch.Tensor) or tuple(measures.shape) != (batch, num_measures):
        shape = tuple(measures.shape) if isinstance(measures, torch.Tensor) else type(measures).__name__
        raise ValueError(f"scorer must return measures of shape [B={batch}, k={num_measures}], got {shape}")
    return objective, measures


def generate(generator: Generator, latents: torch.Tensor) -> torch.Tensor:
    """``generator(latents)`` with its output checked: ``latents [B, n] -> images [B, 3, H, W]``."""
    if latents.dim() != 2 or latents.shape[1] != generator.latent_dim:
        raise ValueError(
            f"latents must have shape [B, latent_dim={generator.latent_dim}], got {tuple(latents.shape)}"
        )
    return check_images(generator(latents), latents.shape[0])
