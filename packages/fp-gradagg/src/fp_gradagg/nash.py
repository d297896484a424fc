"""Nash-MTL (Navon et al. 2022): the Nash bargaining solution over the objectives' first-order gains.

Math. ``d`` maximises ``Σ_i log(g_iᵀ d) - ½ ‖d‖²``; stationarity gives ``d = Σ_i g_i / (g_iᵀ d)``, so
``d = Gᵀ w`` with ``w_i = 1 / (g_iᵀ d)``, i.e. ``(G Gᵀ) w = 1 / w``: FairGrad with ``alpha = 1``.

This module solves it from the *direction* side, independently of :mod:`fp_gradagg.fairgrad` (which solves the
weight equation), so the two cross-check each other: factor the (conditioned) Gramian ``B = M Mᵀ`` with
``M = U_r Λ_r^(1/2)`` (its positive eigenpairs; ``M`` is ``G`` in an orthonormal basis of its row space), then
maximise the strictly concave ``φ(z) = Σ_i log (M z)_i - ½ ‖z‖²`` over ``M z > 0`` by damped Newton, started
from the MGDA min-norm point (where every ``(M z)_i > 0``). Weights ``w = 1 / (M z)``.

The published Nash-MTL solves a sequence of convex programs with cvxpy and normalises the Gramian; this is the
exact bargaining solution instead (same degenerate-Gramian rule as FairGrad). Cost: one ``K × K``
eigendecomposition plus O(K³) per Newton iteration.
"""

from __future__ import annotations

import math

import numpy as np

from fp_gradagg.conditioning import ConditionedGramian
from fp_gradagg.fairgrad import FixedPointWeighting, fixed_point_residual
from fp_gradagg.min_norm import min_norm_point

__all__ = ["NashMTL", "solve_nash_bargaining"]


def _phi(factor: np.ndarray, z: np.ndarray) -> float:
    gains = factor @ z
    return float(np.sum(np.log(gains)) - 0.5 * z @ z) if np.all(gains > 0) else -math.inf


def solve_nash_bargaining(
    matrix: np.ndarray, *, tol: float = 1e-13, max_iter: int = 100
) -> tuple[np.ndarray, float, int]:
    """Nash bargaining weights for a well-posed ``B`` ``[k, k]``: ``(w [k], residual, iterations)``."""
    k = matrix.shape[0]
    if k == 0:
        return np.zeros(0), 0.0, 0
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    keep = eigenvalues > 1e-14 * max(float(eigenvalues.max()), 0.0)
    factor = eigenvectors[:, keep] * np.sqrt(eigenvalues[keep])  # M [k, r], M Mᵀ = B
    hull_weights, _ = min_norm_point(matrix)
    z = factor.T @ hull_weights  # the min-norm hull point: every gain (M z)_i >= ‖z‖² > 0
    z *= math.sqrt(k) / max(float(np.linalg.norm(z)), 1e-300)  # the best multiple of it
    iterations = 0
    while iterations < max_iter:
        gains = factor @ z
        gradient = factor.T @ (1.0 / gains) - z
        hessian = -(factor.T * (1.0 / gains**2)) @ factor - np.eye(factor.shape[1])
        step = np.linalg.solve(hessian, -gradient)
        decrement = float(gradient @ step)
        if decrement <= tol**2 * max(1.0, float(z @ z)):
            break
        iterations += 1
        direction_gain = factor @ step
        falling = direction_gain < 0.0
        t = (
            min(1.0, 0.995 * float(np.min(-gains[falling] / direction_gain[falling])))
            if falling.any()
            else 1.0
        )
        value = _phi(factor, z)
        while _phi(factor, z + t * step) < value + 1e-4 * t * decrement and t > 1e-12:
            t *= 0.5
        z = z + t * step
    weights = 1.0 / (factor @ z)
    return weights, fixed_point_residual(matrix, weights, 1.0), iterations


class NashMTL(FixedPointWeighting):
    """Nash-MTL weights (the Nash bargaining solution); equal to ``FairGrad(alpha=1)`` (module docstring).

    Args:
        zero_tol, stationary_tol: the degenerate-Gramian rule, as for :class:`~fp_gradagg.FairGrad`.
        tol: Newton stops when the squared Newton decrement falls below ``tol²``.
        max_iter: Newton iteration cap.
    """

    def __init__(
        self,
        *,
        zero_tol: float = 1e-12,
        stationary_tol: float = 1e-3,
        tol: float = 1e-13,
        max_iter: int = 100,
    ) -> None:
        super().__init__(1.0, zero_tol=zero_tol, stationary_tol=stationary_tol, tol=tol, max_iter=max_iter)

    def _solve_conditioned(self, conditioned: ConditionedGramian) -> tuple[np.ndarray, float, int]:
        return solve_nash_bargaining(conditioned.matrix, tol=self.tol, max_iter=self.max_iter)

    def __repr__(self) -> str:
        return "NashMTL()"
