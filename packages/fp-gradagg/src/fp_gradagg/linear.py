"""Linear scalarisation: fixed weights, ``d = Σ_i w_i g_i = ∇ Σ_i w_i l_i``.

``"sum"`` (``w = 1``, the plain ``sum(losses).backward()``), ``"mean"`` (``w = 1/K``) or given weights.
The weights ignore the Gramian, so :func:`fp_gradagg.backward` runs one ordinary backward for it, with no
per-objective gradients. Cost: one backward (the baseline the others are compared with).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from fp_gradagg.base import GramianWeighting, Solution
from fp_gradagg.conditioning import gramian_to_numpy

__all__ = ["LinearScalarization"]


class LinearScalarization(GramianWeighting):
    """Fixed weights: ``"sum"`` (all 1), ``"mean"`` (all ``1/K``) or a sequence of ``K`` finite numbers."""

    def __init__(self, weights: Literal["sum", "mean"] | Sequence[float] = "sum") -> None:
        if isinstance(weights, str):
            if weights not in ("sum", "mean"):
                raise ValueError(f"weights must be 'sum', 'mean' or a sequence of numbers, got {weights!r}")
            self.fixed: tuple[float, ...] | None = None
            self.mode = weights
        else:
            values = tuple(float(w) for w in weights)
            if not values or not all(math.isfinite(w) for w in values):
                raise ValueError(f"weights must be a non-empty sequence of finite numbers, got {weights!r}")
            self.fixed = values
            self.mode = "fixed"

    def weights_for(
        self, k: int, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """The ``[K]`` weights for ``k`` objectives."""
        if self.fixed is not None:
            if len(self.fixed) != k:
                raise ValueError(
                    f"LinearScalarization has {len(self.fixed)} fixed weights but got {k} objectives"
                )
            return torch.tensor(self.fixed, dtype=dtype, device=device)
        value = 1.0 if self.mode == "sum" else 1.0 / k
        return torch.full((k,), value, dtype=dtype, device=device)

    def solve(self, gramian: torch.Tensor) -> Solution:
        """The fixed weights ``[K]`` (the Gramian only sets ``K``, dtype and device)."""
        gramian_to_numpy(gramian)
        return Solution(
            weights=self.weights_for(gramian.shape[0], dtype=gramian.dtype, device=gramian.device)
        )

    def __repr__(self) -> str:
        return f"LinearScalarization({self.fixed if self.fixed is not None else repr(self.mode)})"
