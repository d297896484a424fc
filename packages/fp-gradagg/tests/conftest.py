"""Shared fixtures: random per-objective gradients with a controllable common-descent margin."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fp_gradagg.conditioning import reset_degenerate_warnings
from fp_gradagg.min_norm import min_norm_point

GradientFactory = Callable[..., np.ndarray]


def _gradients(seed: int, k: int, p: int, *, shared: float = 1.0, spread: float = 1.0) -> np.ndarray:
    """``G`` ``[K, P]``: a shared unit direction times ``shared`` plus Gaussian noise, rows scaled by
    ``10^U(-spread, spread)``. ``shared`` > 0 makes a common descent direction likely."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=p)
    direction /= np.linalg.norm(direction)
    gradients = shared * direction + rng.normal(size=(k, p)) / np.sqrt(p)
    return gradients * 10.0 ** rng.uniform(-spread, spread, size=(k, 1))


def _unit_hull_norm2(gradients: np.ndarray) -> float:
    units = gradients / np.linalg.norm(gradients, axis=1, keepdims=True)
    return min_norm_point(units @ units.T)[1]


@pytest.fixture(scope="session")
def make_gradients() -> GradientFactory:
    """``make_gradients(seed, k, p, shared=1.0, spread=1.0) -> G [K, P]`` (float64)."""
    return _gradients


@pytest.fixture(scope="session")
def hull_norm2() -> Callable[[np.ndarray], float]:
    """Squared min-norm hull point of ``G``'s unit rows (the degenerate-Gramian rule's measure)."""
    return _unit_hull_norm2


@pytest.fixture(autouse=True)
def _rearm_degenerate_warnings():
    """Every test sees the first degenerate-Gramian warning of each kind (they are once per process)."""
    reset_degenerate_warnings()
    yield
