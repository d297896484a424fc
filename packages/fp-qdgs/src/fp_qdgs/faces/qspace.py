"""QDGS's standardised W+ space for StyleGAN2: ``q = (w - w_avg) / w_std``.

QDGS (Sec. 6) samples the real-scale generator's W+ (``[L, 512]``, ``L = 14`` at 256) in the standardised
q-space, with ``w_avg`` and ``w_std`` per layer and channel from 10,000 mapped samples; the search starts from
the truncated mapping (``psi = 0.7``). :func:`w_statistics` maps ``n`` prior draws with that truncation and
returns their mean and (population) standard deviation per layer and channel; since the mapping broadcasts one
``w`` to every layer, the ``L`` rows are equal unless a ``truncation_cutoff`` is used.

:class:`QSpaceGenerator` is the StyleGAN2 generator as a QDGS generator over flat q latents ``[B, L * w_dim]``:
``q -> w = w_avg + q * w_std -> synthesis -> (img + 1) / 2`` clamped to ``[0, 1]``; its prior draws are the
truncated mapping's ``w`` expressed in q (where the QDGS search starts).
"""

from __future__ import annotations

import torch
from torch import nn

from fp_core.seeds import torch_generator
from fp_qdgs.faces.stylegan2 import StyleGAN2Generator
from fp_qdgs.protocols import gaussian_mean_norm

__all__ = ["QSpaceGenerator", "q_to_w", "w_statistics", "w_to_q"]


@torch.no_grad()
def w_statistics(
    generator: StyleGAN2Generator,
    n: int = 10_000,
    seed: int = 0,
    truncation: float = 0.7,
    *,
    batch_size: int = 1000,
    truncation_cutoff: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w_avg [L, w_dim], w_std [L, w_dim])`` of ``n`` mapped ``z ~ N(0, I)`` (stream ``(seed, "w-stats")``)
    at ``truncation``, on the generator's device; ``w_std`` uses ``1 / n`` (population)."""
    if n < 2 or batch_size < 1:
        raise ValueError(f"need n >= 2 samples and batch_size >= 1, got n={n}, batch_size={batch_size}")
    mapping = generator.mapping
    device = mapping.w_avg.device
    rng = torch_generator(seed, "w-stats")
    z_dim = generator.config.z_dim
    total = torch.zeros(generator.num_ws, generator.config.w_dim, dtype=torch.float64, device=device)
    square = torch.zeros_like(total)
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), z_dim, generator=rng).to(device)
        ws = mapping(z, truncation, truncation_cutoff).double()
        total += ws.sum(0)
        square += ws.square().sum(0)
    mean = total / n
    std = (square / n - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.float()


def _check(w_avg: torch.Tensor, w_std: torch.Tensor, x: torch.Tensor) -> None:
    if w_avg.shape != w_std.shape or x.shape[-w_avg.dim() :] != w_avg.shape:
        raise ValueError(
            f"latents {tuple(x.shape)} must end in the statistics' shape {tuple(w_avg.shape)} "
            f"(w_std {tuple(w_std.shape)})"
        )
    if bool((w_std <= 0).any()):
        raise ValueError("w_std must be > 0 everywhere (a constant channel cannot be standardised)")


def q_to_w(q: torch.Tensor, w_avg: torch.Tensor, w_std: torch.Tensor) -> torch.Tensor:
    """``w = w_avg + q * w_std``: ``q [B, L, D] -> w [B, L, D]``."""
    _check(w_avg, w_std, q)
    return w_avg + q * w_std


def w_to_q(w: torch.Tensor, w_avg: torch.Tensor, w_std: torch.Tensor) -> torch.Tensor:
    """``q = (w - w_avg) / w_std``: ``w [B, L, D] -> q [B, L, D]``."""
    _check(w_avg, w_std, w)
    return (w - w_avg) / w_std


class QSpaceGenerator(nn.Module):
    """``q [B, L * w_dim] -> images [B, 3, res, res]`` in ``[0, 1]`` through a frozen StyleGAN2 (module doc)."""

    def __init__(
        self,
        generator: StyleGAN2Generator,
        w_avg: torch.Tensor,
        w_std: torch.Tensor,
        *,
        truncation: float = 0.7,
        noise_mode: str = "const",
    ) -> None:
        super().__init__()
        shape = (generator.num_ws, generator.config.w_dim)
        if w_avg.shape != shape or w_std.shape != shape:
            raise ValueError(f"w_avg and w_std must have shape {shape}, got {w_avg.shape} and {w_std.shape}")
        self.generator = generator.eval().requires_grad_(False)
        self.register_buffer("w_avg", w_avg.detach().clone())
        self.register_buffer("w_std", w_std.detach().clone())
        self.truncation, self.noise_mode = truncation, noise_mode

    @property
    def latent_dim(self) -> int:
        """``L * w_dim`` (14 * 512 = 7168 at 256)."""
        return self.w_avg.numel()

    @property
    def mean_prior_norm(self) -> float:
        """``E ||q||`` of a standard normal q of ``latent_dim`` numbers (the regulariser's scale)."""
        return gaussian_mean_norm(self.latent_dim)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, latent_dim]``: mapped ``z ~ N(0, I)`` at ``truncation``, as q."""
        z = torch.randn(n, self.generator.config.z_dim, generator=generator).to(self.w_avg.device)
        ws = self.generator.mapping(z, self.truncation)
        return w_to_q(ws, self.w_avg, self.w_std).reshape(n, -1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """``q [B, latent_dim] -> [B, 3, res, res]`` in ``[0, 1]``."""
        ws = q_to_w(latents.reshape(len(latents), *self.w_avg.shape), self.w_avg, self.w_std)
        images = self.generator.synthesis(ws, self.noise_mode)
        return ((images + 1.0) / 2.0).clamp(0.0, 1.0)
