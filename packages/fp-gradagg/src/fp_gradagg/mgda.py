"""MGDA (Désidéri 2012; Sener & Koltun 2018): the min-norm point of the convex hull of the gradients.

Math. ``w = argmin_{w ∈ Δ} wᵀ (G Gᵀ) w`` (``Δ`` the probability simplex); ``d = Gᵀ w`` is the hull point
nearest the origin, a common descent direction whenever one exists (``g_iᵀ d >= ‖d‖²`` for every ``i``) and
zero at a Pareto-stationary point. Solved exactly by Wolfe's min-norm-point algorithm on the Gramian
(:func:`~fp_gradagg.min_norm.min_norm_point`), not by Frank-Wolfe iterations.

Weights: on the simplex (``Σ w = 1``, the *mean* scale). Scale-invariant: ``A -> c A`` leaves ``w`` unchanged.
An all-zero Gramian gives the uniform weights (``d = 0``). Cost: the Gramian plus O(K³) per active-set change.
"""

from __future__ import annotations

import torch

from fp_gradagg.base import GramianWeighting, Solution
from fp_gradagg.conditioning import gramian_to_numpy
from fp_gradagg.min_norm import min_norm_point

__all__ = ["MGDA"]


class MGDA(GramianWeighting):
    """Min-norm hull point weights (module docstring); ``MGDA()(gramian)`` is ``[K]`` on the simplex."""

    def solve(self, gramian: torch.Tensor) -> Solution:
        """Simplex weights ``[K]`` of the min-norm point of the hull of the gradients behind ``gramian``."""
        matrix = gramian_to_numpy(gramian)
        weights, _ = min_norm_point(matrix)
        return Solution(weights=torch.as_tensor(weights, dtype=gramian.dtype, device=gramian.device))

    def __repr__(self) -> str:
        return "MGDA()"
