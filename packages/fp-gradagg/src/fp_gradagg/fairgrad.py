"""FairGrad (Ban & Ji 2024): alpha-fair weights from the positive fixed point ``(G Gᵀ) w = w^(-1/alpha)``.

Math. With ``A = G Gᵀ`` ``[K, K]`` and ``d = Gᵀ w``, the weights satisfy ``g_iᵀ d = (A w)_i = w_i^(-1/alpha)``:
each objective's first-order progress is tied to its weight by the alpha-fair utility. ``alpha -> 0`` is
linear scalarisation, ``alpha = 1`` proportional fairness (the Nash bargaining solution, Nash-MTL),
``alpha = 2`` minimum potential delay (MPD, used by FairHuman), ``alpha -> inf`` max-min fairness.

Solver. The fixed point is the unique minimiser of the strictly convex
``f(w) = ½ wᵀ A w - Σ_i h(w_i)`` on ``w > 0``, with ``h(w) = w^(1-1/alpha) / (1 - 1/alpha)`` (``log w`` for
``alpha = 1``), since ``∇f = A w - w^(-1/alpha)`` and ``∇²f = A + (1/alpha) diag(w^(-1/alpha-1)) ≻ 0``.
Damped Newton (fraction-to-the-boundary keeps ``w > 0``; a step is accepted when it lowers the residual or
meets Armijo's decrease of ``f``) from the best multiple of the orthogonal-gradient solution
``w_i = A_ii^(-alpha/(alpha+1))`` converges quadratically; on well-posed Gramians it reaches a relative residual
near 1e-14 in 3-10 iterations of one ``K × K`` linear solve each.

Scale. ``A -> c A`` gives ``w -> c^(-alpha/(alpha+1)) w``: the solver works on ``A / max_i A_ii`` and
rescales. So the weights are *not* normalised: they follow the gradient magnitude, and gradients scaled by an
AMP loss scale ``S`` must be unscaled first (``A / S²``), or the applied step silently shrinks by
``S^(-2 alpha/(alpha+1))`` (:func:`fp_gradagg.backward` unscales with ``grad_scale``).

The paper's printed closed form ``(Gᵀ G)^(-2/3) 1`` (its ``G`` is ``[P, K]``) is not this solution and can be
negative; see ``docs/gradagg.md``.

Cost per step: the Gramian (K gradients, see :mod:`fp_gradagg.gradients`) plus O(K³) per Newton iteration.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np
import torch

from fp_gradagg.base import GramianWeighting, Solution
from fp_gradagg.conditioning import ConditionedGramian, WarnOnce, condition_gramian, gramian_to_numpy

__all__ = ["MPD", "FairGrad", "FixedPointWeighting", "fixed_point_residual", "solve_fairgrad_fixed_point"]


def fixed_point_residual(matrix: np.ndarray, weights: np.ndarray, alpha: float) -> float:
    """Relative residual ``‖B w - w^(-1/alpha)‖₂ / ‖w^(-1/alpha)‖₂`` (``inf`` unless ``w > 0``)."""
    if weights.size == 0:
        return 0.0
    if not np.all(weights > 0.0) or not np.all(np.isfinite(weights)):
        return math.inf
    target = weights ** (-1.0 / alpha)
    return float(np.linalg.norm(matrix @ weights - target) / np.linalg.norm(target))


def _objective(matrix: np.ndarray, weights: np.ndarray, alpha: float) -> float:
    power = 1.0 - 1.0 / alpha
    barrier = np.sum(np.log(weights)) if abs(power) < 1e-12 else np.sum(weights**power) / power
    return float(0.5 * weights @ matrix @ weights - barrier)


def solve_fairgrad_fixed_point(
    matrix: np.ndarray, alpha: float, *, tol: float = 1e-13, max_iter: int = 100
) -> tuple[np.ndarray, float, int]:
    """The positive solution of ``B w = w^(-1/alpha)`` for a well-posed ``B`` ``[k, k]`` (float64).

    Well-posed means the min-norm point of the hull of the rows' vectors is nonzero (``B`` from
    :func:`~fp_gradagg.conditioning.condition_gramian` always is). Returns ``(w [k], residual, iterations)``.
    """
    k = matrix.shape[0]
    if k == 0:
        return np.zeros(0), 0.0, 0
    inv_alpha = 1.0 / alpha
    power = 1.0 - inv_alpha
    # Start: the orthogonal-gradient solution, scaled by the exact line minimiser of f along it.
    guess = np.clip(np.diag(matrix), 1e-300, None) ** (-alpha / (alpha + 1.0))
    curvature = float(guess @ matrix @ guess)
    scale = (float(np.sum(guess**power)) / curvature) ** (alpha / (alpha + 1.0)) if curvature > 0 else 1.0
    weights = guess * scale
    residual = fixed_point_residual(matrix, weights, alpha)
    iterations = 0
    while residual > tol and iterations < max_iter:
        iterations += 1
        target = weights**-inv_alpha
        gradient = matrix @ weights - target
        hessian = matrix + np.diag(inv_alpha * target / weights)
        try:
            step = -np.linalg.solve(hessian, gradient)
        except (
            np.linalg.LinAlgError
        ):  # only for an indefinite (non-Gramian) input; least squares stays finite
            step = -np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        shrinking = step < 0.0
        t = min(1.0, 0.995 * float(np.min(-weights[shrinking] / step[shrinking]))) if shrinking.any() else 1.0
        value, slope = None, float(gradient @ step)
        accepted = False
        while t >= 1e-12:
            trial = weights + t * step
            trial_residual = fixed_point_residual(matrix, trial, alpha)
            if math.isfinite(trial_residual):
                # A smaller residual (the usual case near the solution, where f is flat to round-off), or
                # Armijo's sufficient decrease of the convex f (which makes the damped iteration converge).
                if trial_residual < (1.0 - 1e-4 * t) * residual:
                    accepted = True
                    break
                value = _objective(matrix, weights, alpha) if value is None else value
                if _objective(matrix, trial, alpha) <= value + 1e-4 * t * slope:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:  # no progress possible at this precision: keep the best point
            break
        weights, residual = trial, trial_residual
    return weights, residual, iterations


class FixedPointWeighting(GramianWeighting, WarnOnce):
    """Shared frame of FairGrad and Nash-MTL: validate, apply the degenerate-Gramian rule, solve, rescale.

    ``zero_tol`` and ``stationary_tol`` set the degenerate-Gramian rule, ``tol`` and ``max_iter`` the solver's
    stopping rule (each subclass documents what ``tol`` measures).
    """

    alpha: float

    def __init__(
        self,
        alpha: float,
        *,
        zero_tol: float = 1e-12,
        stationary_tol: float = 1e-3,
        tol: float = 1e-13,
        max_iter: int = 100,
    ) -> None:
        WarnOnce.__init__(self)
        if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
        if not 0.0 <= zero_tol < 1.0 or not 0.0 < stationary_tol < 1.0:
            raise ValueError(
                f"zero_tol must lie in [0, 1) and stationary_tol in (0, 1), got {zero_tol!r} and "
                f"{stationary_tol!r}"
            )
        self.alpha = float(alpha)
        self.zero_tol = zero_tol
        self.stationary_tol = stationary_tol
        self.tol = tol
        self.max_iter = max_iter

    @abstractmethod
    def _solve_conditioned(self, conditioned: ConditionedGramian) -> tuple[np.ndarray, float, int]:
        """``(weights [k], residual, iterations)`` for the conditioned (normalised, well-posed) system."""

    def solve(self, gramian: torch.Tensor) -> Solution:
        """Weights ``[K]`` (``> 0`` unless dropped), the relative residual and what the rule did."""
        matrix = gramian_to_numpy(gramian)
        k = matrix.shape[0]
        conditioned = condition_gramian(matrix, zero_tol=self.zero_tol, stationary_tol=self.stationary_tol)
        self._report_conditioning(conditioned, k)
        weights = np.zeros(k)
        residual, iterations = 0.0, 0
        if conditioned.scale > 0.0:
            kept_weights, residual, iterations = self._solve_conditioned(conditioned)
            weights[conditioned.kept] = kept_weights * conditioned.scale ** (-self.alpha / (self.alpha + 1.0))
        return Solution(
            weights=torch.as_tensor(weights, dtype=gramian.dtype, device=gramian.device),
            residual=residual,
            dropped=conditioned.dropped,
            ridge=conditioned.ridge,
            iterations=iterations,
        )


class FairGrad(FixedPointWeighting):
    """alpha-fair weights: the positive solution of ``(G Gᵀ) w = w^(-1/alpha)`` (module docstring).

    Args:
        alpha: fairness degree, ``> 0`` (2 is MPD, 1 is Nash-MTL).
        zero_tol: an objective with ``‖g_i‖² <= zero_tol · max_j ‖g_j‖²`` gets weight 0.
        stationary_tol: squared relative min-norm hull point under which the Gramian is ridged (see
            :mod:`fp_gradagg.conditioning`); it bounds the weights in Pareto-stationary states.
        tol: relative residual at which Newton stops.
        max_iter: Newton iteration cap.

    Weights: unnormalised (``Σ w`` follows ``‖g‖^(-2 alpha/(alpha+1))``). Cost: O(K³) per Newton iteration.
    """

    def __init__(
        self,
        alpha: float = 2.0,
        *,
        zero_tol: float = 1e-12,
        stationary_tol: float = 1e-3,
        tol: float = 1e-13,
        max_iter: int = 100,
    ) -> None:
        super().__init__(alpha, zero_tol=zero_tol, stationary_tol=stationary_tol, tol=tol, max_iter=max_iter)

    def _solve_conditioned(self, conditioned: ConditionedGramian) -> tuple[np.ndarray, float, int]:
        return solve_fairgrad_fixed_point(
            conditioned.matrix, self.alpha, tol=self.tol, max_iter=self.max_iter
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha:g})"


class MPD(FairGrad):
    """Minimum Potential Delay fairness: :class:`FairGrad` with ``alpha = 2`` (FairHuman's weighting)."""

    def __init__(
        self,
        *,
        zero_tol: float = 1e-12,
        stationary_tol: float = 1e-3,
        tol: float = 1e-13,
        max_iter: int = 100,
    ) -> None:
        super().__init__(2.0, zero_tol=zero_tol, stationary_tol=stationary_tol, tol=tol, max_iter=max_iter)

    def __repr__(self) -> str:
        return "MPD()"
