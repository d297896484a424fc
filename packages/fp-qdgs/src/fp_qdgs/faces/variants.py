"""Latent-walk variants of QDGS solutions: a 3 x 3 lattice along two directions (head rotation, expression).

QDGS (Sec. 5-6) renders 9 variants per solution: offsets ``{-s1, 0, +s1} x {-s2, 0, +s2}`` along a yaw and a
smile direction. The public code ships its directions but not how they were found; :func:`fit_directions`
derives them by least squares: regress the latents ``z [N, D]`` on the labels ``[yaw, smile]`` with an intercept,
``z_i ~ a + yaw_i * b_1 + smile_i * b_2``, and take ``direction_k = b_k / ||b_k||``. Each coefficient is the
change of the latent per unit of its label *with the other label held fixed*, so a correlation between yaw and
smile in the data does not leak into the directions. The latents come either from the generator's encoder on
images with known labels (the synthetic renderer's yaw and smile) or from generated images labelled by a
classifier.

Latents of any trailing shape work the same way: for a StyleGAN2 W+ latent ``[N, L, 512]`` the directions have
shape ``[2, L, 512]`` (one regression over all ``L * 512`` numbers, normalised over all of them), and the lattice
moves every layer by its part of the direction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["NUM_VARIANTS", "fit_directions", "lattice", "lattice_offsets"]

NUM_VARIANTS = 9


def fit_directions(latents: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Unit directions ``[2, *S]`` from ``latents [N, *S]`` and ``labels [N, 2]`` (e.g. yaw, smile).

    Least squares of ``latents`` on ``[1, label_0, label_1]`` (float64); direction ``k`` is the coefficient
    vector of label ``k``, normalised to unit L2 norm over all of ``S``. Raises ``ValueError`` when the labels
    do not determine the fit (fewer than 3 samples, a constant label, or two collinear labels).
    """
    if not isinstance(latents, torch.Tensor) or latents.dim() < 2:
        raise ValueError(f"latents must be a tensor [N, *S], got {getattr(latents, 'shape', type(latents))}")
    labels = torch.as_tensor(labels)
    if labels.shape != (latents.shape[0], 2):
        raise ValueError(f"labels must have shape [N={latents.shape[0]}, 2], got {tuple(labels.shape)}")
    n = latents.shape[0]
    design = torch.cat([torch.ones(n, 1, dtype=torch.float64), labels.double().cpu()], dim=1)  # [N, 3]
    if n < 3 or torch.linalg.matrix_rank(design) < 3:
        raise ValueError(
            "labels must vary independently (>= 3 samples, neither label constant, the two not collinear) "
            "to fit two directions"
        )
    target = latents.detach().double().cpu().reshape(n, -1)  # [N, D]
    coef = torch.linalg.lstsq(design, target).solution  # [3, D]
    directions = coef[1:]
    norms = directions.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("a fitted direction is zero: the latents do not change with that label")
    out = (directions / norms).to(latents.dtype if latents.dtype.is_floating_point else torch.float32)
    return out.reshape(2, *latents.shape[1:]).to(latents.device)


def lattice_offsets(steps: Sequence[float]) -> torch.Tensor:
    """``[9, 2]`` float64 offsets, row-major over ``(-s1, 0, +s1) x (-s2, 0, +s2)``; row 4 is ``(0, 0)``."""
    if len(steps) != 2:
        raise ValueError(f"steps must be two step sizes (s1, s2), got {steps}")
    s1, s2 = (float(s) for s in steps)
    return torch.tensor([[a, b] for a in (-s1, 0.0, s1) for b in (-s2, 0.0, s2)], dtype=torch.float64)


def lattice(
    latents: torch.Tensor, directions: torch.Tensor, steps: Sequence[float] = (1.0, 1.0)
) -> torch.Tensor:
    """The 9 variants ``[N, 9, *S]`` of ``latents [N, *S]``: ``z + o1 * d1 + o2 * d2`` for the offsets of
    :func:`lattice_offsets` (row-major, ``(-s1, -s2), (-s1, 0), ..., (+s1, +s2)``); variant 4 equals ``z``.

    ``directions [2, *S]`` (from :func:`fit_directions`, or shipped ones) are used as given.
    """
    if not isinstance(latents, torch.Tensor) or latents.dim() < 2:
        raise ValueError(f"latents must be a tensor [N, *S], got {getattr(latents, 'shape', type(latents))}")
    if directions.shape != (2, *latents.shape[1:]):
        raise ValueError(
            f"directions must have shape [2, {', '.join(map(str, latents.shape[1:]))}] to match latents "
            f"{tuple(latents.shape)}, got {tuple(directions.shape)}"
        )
    offsets = lattice_offsets(steps).to(device=latents.device, dtype=latents.dtype)  # [9, 2]
    d = directions.to(device=latents.device, dtype=latents.dtype)
    tail = (1,) * (latents.dim() - 1)
    shift = offsets[:, 0].view(9, *tail) * d[0] + offsets[:, 1].view(9, *tail) * d[1]  # [9, *S]
    return latents.unsqueeze(1) + shift.unsqueeze(0)
