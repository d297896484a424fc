"""The min-norm point of the convex hull of the gradients, from their Gramian alone (Wolfe's algorithm).

``min_{λ ∈ Δ} λᵀ A λ`` with ``Δ`` the probability simplex and ``A = G Gᵀ`` ``[K, K]``: ``Gᵀ λ*`` is the
point of ``conv{g_1, …, g_K}`` nearest the origin. Wolfe's (1976) active-set method is exact up to round-off
and terminates after finitely many affine solves of size ``≤ K + 1`` (a handful for small ``K``: tens of
microseconds). Used by MGDA (its weights) and by the degenerate-Gramian rule (a hull point near
zero means the objectives have no common descent direction).
"""

from __future__ import annotations

import numpy as np

__all__ = ["min_norm_point"]

_POSITIVE = 1e-15  # a weight at or below this is treated as zero (leaves the active set)


def _affine_minimiser(gram: np.ndarray) -> np.ndarray:
    """``argmin μᵀ A μ`` subject to ``Σ μ = 1`` (no sign constraint), for the active block ``A``
    ``[S, S]``."""
    size = gram.shape[0]
    kkt = np.zeros((size + 1, size + 1))
    kkt[:size, :size] = gram
    kkt[:size, size] = 1.0
    kkt[size, :size] = 1.0
    rhs = np.zeros(size + 1)
    rhs[size] = 1.0
    try:
        solution = np.linalg.solve(kkt, rhs)
    except np.linalg.LinAlgError:  # affinely dependent points (only when the hull point is ~0): least squares
        solution = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    if not np.all(np.isfinite(solution)):
        solution = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    return solution[:size]


def min_norm_point(
    gramian: np.ndarray, *, tol: float = 1e-12, max_iter: int = 1000
) -> tuple[np.ndarray, float]:
    """Weights ``λ`` ``[K]`` on the simplex minimising ``λᵀ A λ``, and that minimum (the squared norm).

    Args:
        gramian: ``A`` ``[K, K]``, symmetric positive semi-definite (float64).
        tol: stopping tolerance relative to ``max_i A_ii``.
        max_iter: cap on major plus minor iterations (never reached in practice: the method is finite).
    """
    gram = np.asarray(gramian, dtype=np.float64)
    k = gram.shape[0]
    scale = float(np.max(np.diag(gram))) if k else 0.0
    weights = np.zeros(k)
    if k == 0:
        return weights, 0.0
    if scale <= 0.0:  # all gradients are zero: every hull point is the origin
        weights[:] = 1.0 / k
        return weights, 0.0
    start = int(np.argmin(np.diag(gram)))
    active = [start]
    weights[start] = 1.0
    eps = tol * scale
    steps = 0
    while steps < max_iter:
        steps += 1
        products = gram @ weights  # p_j · x for every vertex j, x the current point
        norm2 = float(weights @ products)
        candidate = int(np.argmin(products))
        if norm2 - products[candidate] <= eps or candidate in active:
            break  # Wolfe's criterion: no vertex lies strictly below the plane through x orthogonal to x
        active.append(candidate)
        while steps < max_iter:  # minor cycle: keep the affine minimiser of the active set inside the simplex
            steps += 1
            mu = _affine_minimiser(gram[np.ix_(active, active)])
            current = weights[active]
            if np.all(mu > _POSITIVE):
                weights[active] = mu
                break
            # Move from the current point toward the affine minimiser until a weight reaches zero.
            blocking = (mu <= _POSITIVE) & (current - mu > 0.0)
            theta = (
                float(np.min(current[blocking] / (current[blocking] - mu[blocking])))
                if blocking.any()
                else 0.0
            )
            updated = current + min(max(theta, 0.0), 1.0) * (mu - current)
            keep = [i for i, value in zip(active, updated) if value > _POSITIVE]
            weights[active] = np.where(updated > _POSITIVE, updated, 0.0)
            if not keep:  # round-off removed everything: restart from the best vertex seen
                weights[:] = 0.0
                weights[candidate] = 1.0
                keep = [candidate]
            active = keep
    weights = np.clip(weights, 0.0, None)
    weights /= weights.sum()
    return weights, max(float(weights @ gram @ weights), 0.0)
