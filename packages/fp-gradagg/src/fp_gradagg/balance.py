"""Log-loss balancing: weigh ``log(L_i - m_i)`` instead of ``L_i``, so a loss's units do not set its weight.

Math. With ``m_i`` a known infimum of loss ``i`` (0 for a cross-entropy or a Dice loss, ``-1`` for a negated
correlation, ...), the balanced objective is ``log(L_i - m_i)``, whose gradient is ``∇L_i / (L_i - m_i)``.
It is implemented as ``L_i / c_i`` with the *detached* divisor ``c_i = max(L_i - m_i, floor)``: the same
gradient, without taking a logarithm of a tensor that may touch ``m_i``. Multiplying a loss by a constant
``a > 0`` (``L_i -> a L_i``, ``m_i -> a m_i``) multiplies ``c_i`` by ``a`` and leaves ``∇L_i / c_i`` unchanged,
so a Gramian method sees the same Gramian whatever each loss's units are. Raw-loss MPD does not have this
property: its weights follow each gradient's size, so a loss with tiny values (and gradients) receives a huge
weight and dominates the step.

Effective weights. A method that weights the balanced losses with ``w`` writes ``Σ_i w_i ∇L_i / c_i``, i.e.
the weights ``w_i / c_i`` on the raw losses; :func:`fp_gradagg.backward` reports both
(``result.weights`` and ``result.effective_weights``), the latter comparable with a hand-set schedule's.

Floor. ``c_i`` is at least ``floor``: a loss at (or, by round-off, below) its infimum is divided by ``floor``;
its gradient is then (near) zero anyway, and a Gramian method drops an objective whose gradient vanishes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["LogLosses"]


class LogLosses:
    """Balance ``K`` losses as ``log(L_i - m_i)`` (module docstring).

    Args:
        minima: ``K`` finite infima ``m_i`` of the (unscaled) losses.
        floor: smallest divisor, ``> 0``.
    """

    def __init__(self, minima: Sequence[float], floor: float = 1e-12) -> None:
        values = tuple(float(m) for m in minima)
        if not values or not all(math.isfinite(m) for m in values):
            raise ValueError(f"minima must be a non-empty sequence of finite numbers, got {minima!r}")
        if not (math.isfinite(floor) and floor > 0.0):
            raise ValueError(f"floor must be a finite number > 0, got {floor!r}")
        self.minima = values
        self.floor = float(floor)

    @property
    def num_objectives(self) -> int:
        """``K``, the number of losses this balances."""
        return len(self.minima)

    def divisors(self, values: torch.Tensor) -> torch.Tensor:
        """Detached divisors ``c = max(L - m, floor)`` ``[K]`` (float64, on ``values``' device).

        Args:
            values: the unscaled loss values ``[K]`` (detached or not; only their values are used).
        """
        if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() != len(self.minima):
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"LogLosses has {len(self.minima)} minima but got losses of shape {shape}")
        detached = values.detach().to(torch.float64)
        minima = torch.tensor(self.minima, dtype=torch.float64, device=detached.device)
        return (detached - minima).clamp_min(self.floor)

    def transform(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(balanced [K], divisors [K])`` with ``balanced = losses / divisors`` (differentiable in ``losses``).

        ``balanced_i`` has the gradient ``∇L_i / (L_i - m_i)``; ``divisors`` are float64 and detached.
        """
        divisors = self.divisors(losses)
        return losses / divisors.to(losses.dtype), divisors

    def __repr__(self) -> str:
        return f"LogLosses(minima={list(self.minima)}, floor={self.floor:g})"
