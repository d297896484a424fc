"""CAGrad (Liu et al. 2021): conflict-averse gradient descent.

Math. With ``g0 = (1/K) Σ_i g_i``, CAGrad moves along ``d`` maximising ``min_i g_iᵀ d`` in the ball
``‖d - g0‖ <= c ‖g0‖``. Its dual is ``min_{w ∈ Δ} g_wᵀ g0 + c ‖g0‖ ‖g_w‖`` with ``g_w = Gᵀ w``, and
``d = g0 + (c ‖g0‖ / ‖g_w‖) g_w``. Like the reference code (``rescale=1``) the step is divided by ``1 + c²``,
so the weights are ``(1/K + (c ‖g0‖ / ‖g_w‖) w) / (1 + c²)``; ``c = 0`` is the loss mean.

Solved on the Gramian normalised by its largest diagonal entry (the weights are scale-invariant) with scipy's
SLSQP and the analytic gradient. Cost: the Gramian plus a small SLSQP solve (about a millisecond for K <= 10).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fp_gradagg.base import GramianWeighting, Solution
from fp_gradagg.conditioning import gramian_to_numpy

__all__ = ["CAGrad"]

_EPS = 1e-12  # smooths ‖g_w‖ at the origin (normalised units)


class CAGrad(GramianWeighting):
    """Conflict-averse weights ``[K]`` (module docstring).

    Args:
        c: radius of the trust ball relative to ``‖g0‖``, ``>= 0`` (the paper's default 0.5).
    """

    def __init__(self, c: float = 0.5) -> None:
        if not (math.isfinite(c) and c >= 0.0):
            raise ValueError(f"c must be a finite number >= 0, got {c!r}")
        self.c = float(c)

    def dual_weights(self, matrix: np.ndarray) -> np.ndarray:
        """``argmin_{w ∈ Δ} wᵀ A b + c ‖g0‖ sqrt(wᵀ A w)`` for ``A`` ``[K, K]`` (float64), ``b = 1/K``."""
        from scipy.optimize import minimize  # imported on first use: scipy.optimize is slow to import

        k = matrix.shape[0]
        mean_weights = np.full(k, 1.0 / k)
        radius = self.c * math.sqrt(max(float(mean_weights @ matrix @ mean_weights), 0.0))
        toward_mean = matrix @ mean_weights

        def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
            aw = matrix @ w
            norm = math.sqrt(max(float(w @ aw), 0.0) + _EPS)
            return float(w @ toward_mean) + radius * norm, toward_mean + radius * aw / norm

        result = minimize(
            objective,
            mean_weights,
            jac=True,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * k,
            constraints=[{"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones_like(w)}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        weights = np.clip(result.x, 0.0, None)
        total = weights.sum()
        return weights / total if total > 0 else mean_weights

    def solve(self, gramian: torch.Tensor) -> Solution:
        """CAGrad weights ``[K]`` for ``gramian`` ``[K, K]``."""
        matrix = gramian_to_numpy(gramian)
        k = matrix.shape[0]
        scale = float(np.max(np.diag(matrix)))
        mean_weights = np.full(k, 1.0 / k)
        if scale <= 0.0 or self.c == 0.0:
            weights = mean_weights / (1.0 + self.c**2)
        else:
            normalised = matrix / scale
            dual = self.dual_weights(normalised)
            g0_norm = math.sqrt(max(float(mean_weights @ normalised @ mean_weights), 0.0))
            gw_norm = math.sqrt(max(float(dual @ normalised @ dual), 0.0))
            step = self.c * g0_norm / gw_norm if gw_norm > 1e-12 * max(g0_norm, 1e-300) else 0.0
            weights = (mean_weights + step * dual) / (1.0 + self.c**2)
        return Solution(weights=torch.as_tensor(weights, dtype=gramian.dtype, device=gramian.device))

    def __repr__(self) -> str:
        return f"CAGrad(c={self.c:g})"
