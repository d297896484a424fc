"""Validation of Gramians and the degenerate-Gramian rule shared by FairGrad and Nash-MTL.

The FairGrad equation ``A w = w^(-1/alpha)``, ``w > 0`` has a solution exactly when the objectives have a
common descent direction, i.e. when no non-negative combination of their gradients vanishes (Gordan's theorem;
the min-norm point of the convex hull is not the origin). It fails when an objective's gradient is zero, when
gradients oppose each other, or when the Gramian is all zero; a solver that ignores this returns weights that
grow without bound. The rule, with ``d_i = A_ii = ‖g_i‖²`` and ``s = max_i d_i``:

1. ``s == 0`` (all gradients zero): every weight is 0 (``d = 0`` whatever the weights).
2. An objective with ``d_i <= zero_tol · s`` is dropped: weight 0 (its gradient adds nothing to ``d``).
3. Stationarity is judged on the *directions*: ``m`` is the squared min-norm hull point of the unit gradients
   ``g_i / ‖g_i‖`` (cosine Gramian ``C = D^(-1/2) A D^(-1/2)``), so a small but healthy gradient does not
   count as degenerate (a non-negative combination of the ``g_i`` vanishes iff one of the unit vectors does).
   If ``m < stationary_tol`` (no common descent direction to that precision, e.g. opposite gradients), the
   ridge ``ρ = stationary_tol - m`` is added relative to each objective's own size: ``A + ρ D`` (``C + ρ I``):
   every objective gets a private gradient component of relative norm ``sqrt(ρ)``. The ridge is continuous in
   the Gramian (zero at the threshold) and bounds the weights: the unit-gradient hull is then at least
   ``m' >= stationary_tol / K`` from the origin, and for ``alpha >= 1`` every weight satisfies
   ``w_i <= (K^(1/alpha) d_min^(-(alpha-1)/(2 alpha)) / m')^(alpha/(alpha+1)) / sqrt(d_min)``
   (``d_min`` the smallest kept ``d_i``); two opposite unit gradients get ``stationary_tol^(-alpha/(alpha+1))``
   each (100 for MPD with the default 1e-3) and ``d = 0``.

Each case warns once per process and weighting class (:class:`~fp_gradagg.base.DegenerateGramianWarning`;
:func:`reset_degenerate_warnings` re-arms it) and is counted on the instance (``.degenerate_counts``).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from fp_gradagg.base import DegenerateGramianWarning
from fp_gradagg.min_norm import min_norm_point

__all__ = [
    "ConditionedGramian",
    "WarnOnce",
    "condition_gramian",
    "gramian_to_numpy",
    "reset_degenerate_warnings",
]


def gramian_to_numpy(gramian: torch.Tensor, *, symmetry_tol: float = 1e-5) -> np.ndarray:
    """Check ``gramian`` ``[K, K]`` is finite, symmetric, PSD-looking; return it as float64, symmetrised.

    Raises:
        ValueError: naming the shape, the non-finite entries, the asymmetry or the negative diagonal.
    """
    if not isinstance(gramian, torch.Tensor):
        raise ValueError(f"gramian must be a torch.Tensor [K, K], got {type(gramian).__name__}")
    if gramian.dim() != 2 or gramian.shape[0] != gramian.shape[1] or gramian.shape[0] == 0:
        raise ValueError(
            f"gramian must be a square matrix [K, K] with K >= 1, got shape {tuple(gramian.shape)}"
        )
    matrix = gramian.detach().to("cpu", torch.float64).numpy()
    if not np.all(np.isfinite(matrix)):
        raise ValueError(
            "gramian has non-finite entries (inf or NaN): unscale / skip the step before solving"
        )
    size = float(np.max(np.abs(matrix))) if matrix.size else 0.0
    if size > 0.0:
        if float(np.max(np.abs(matrix - matrix.T))) > symmetry_tol * size:
            raise ValueError(
                "gramian must be symmetric (G Gᵀ); got a matrix with |A - Aᵀ| above 1e-5 · max|A|"
            )
        if float(np.min(np.diag(matrix))) < -symmetry_tol * size:
            raise ValueError("gramian must be positive semi-definite; got a negative diagonal entry")
    return 0.5 * (matrix + matrix.T)


@dataclass(frozen=True)
class ConditionedGramian:
    """The system a fixed-point solver actually solves.

    Attributes:
        matrix: ``B`` ``[k, k]``: ``(A_kept + ridge · diag(A_kept)) / scale``.
        kept: indices of the kept objectives ``[k]``.
        dropped: indices given weight 0 (zero gradient), in increasing order.
        scale: ``s = max_i A_ii`` of the input (0.0 for an all-zero Gramian).
        ridge: the relative ridge ``ρ`` (0.0 unless the objectives are Pareto-stationary).
        hull_norm2: squared min-norm hull point of the kept unit gradients (before the ridge); when no two
            gradients conflict it is not computed and its lower bound ``1 / k`` is stored (no ridge needed).
    """

    matrix: np.ndarray
    kept: np.ndarray
    dropped: tuple[int, ...]
    scale: float
    ridge: float
    hull_norm2: float


def condition_gramian(gramian: np.ndarray, *, zero_tol: float, stationary_tol: float) -> ConditionedGramian:
    """Apply the degenerate-Gramian rule (module docstring) to ``gramian`` ``[K, K]`` (float64, symmetric)."""
    diag = np.clip(np.diag(gramian), 0.0, None)
    scale = float(diag.max())
    k = gramian.shape[0]
    if not scale > 0.0 or not math.isfinite(scale):
        return ConditionedGramian(np.zeros((0, 0)), np.zeros(0, dtype=int), tuple(range(k)), 0.0, 0.0, 0.0)
    kept = np.flatnonzero(diag > zero_tol * scale)
    dropped = tuple(int(i) for i in np.flatnonzero(diag <= zero_tol * scale))
    block = gramian[np.ix_(kept, kept)]
    norms = np.sqrt(diag[kept])
    cosines = block / np.outer(norms, norms)
    np.fill_diagonal(cosines, 1.0)
    if np.all(cosines >= 0.0):  # no pair conflicts: λᵀCλ >= Σ λ_i² >= 1/k, far above any sensible tolerance
        hull_norm2 = 1.0 / len(kept)
    else:
        hull_norm2 = min_norm_point(cosines)[1]
    ridge = max(stationary_tol - hull_norm2, 0.0)
    matrix = block / scale
    if ridge > 0.0:
        matrix = matrix + np.diag(ridge * diag[kept] / scale)
    return ConditionedGramian(matrix, kept, dropped, scale, ridge, hull_norm2)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this package (so warnings point at the caller's line)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == _PACKAGE_DIR:
        frame = frame.f_back
        level += 1
    return level


_WARNED: set[tuple[str, str]] = set()  # (weighting class, kind) pairs already warned about in this process


def reset_degenerate_warnings() -> None:
    """Warn again the next time each kind of degenerate Gramian is met (e.g. between experiments or tests)."""
    _WARNED.clear()


class WarnOnce:
    """Degenerate-Gramian bookkeeping: counts every case on the instance, warns once per class and kind."""

    def __init__(self) -> None:
        self.degenerate_counts: dict[str, int] = {}

    def _report(self, kind: str, message: str) -> None:
        self.degenerate_counts[kind] = self.degenerate_counts.get(kind, 0) + 1
        key = (type(self).__name__, kind)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(
                f"{type(self).__name__}: {message} (warned once; .degenerate_counts counts every case)",
                DegenerateGramianWarning,
                stacklevel=_caller_stacklevel(),
            )

    def _report_conditioning(self, conditioned: ConditionedGramian, k: int) -> None:
        if conditioned.scale == 0.0:
            self._report("all_zero", "all-zero Gramian: every gradient is zero, all weights set to 0")
            return
        if conditioned.dropped:
            self._report(
                "zero_gradient",
                f"objectives {list(conditioned.dropped)} of {k} have a zero gradient and were given weight 0",
            )
        if conditioned.ridge > 0.0:
            self._report(
                "no_common_descent",
                "the gradients have no common descent direction (the hull of the unit gradients passes "
                f"{math.sqrt(max(conditioned.hull_norm2, 0.0)):.2e} from the origin); solved with the "
                f"relative ridge {conditioned.ridge:.2e} (A + ridge · diag(A)), so the weights stay bounded",
            )
