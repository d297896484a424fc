"""The degenerate-Gramian rule: finite, bounded weights and one warning per instance, never NaN / inf."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fp_gradagg import MPD, DegenerateGramianWarning, FairGrad, NashMTL
from fp_gradagg.conditioning import reset_degenerate_warnings

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _documented_bound(gramian: np.ndarray, kept: np.ndarray, alpha: float, stationary_tol: float) -> float:
    """The weight bound stated in fp_gradagg.conditioning (alpha >= 1, ridge applied)."""
    k = len(kept)
    d_min = float(np.min(np.diag(gramian)[kept]))
    hull = stationary_tol / k
    inner = k ** (1.0 / alpha) * d_min ** (-(alpha - 1.0) / (2.0 * alpha)) / hull
    return inner ** (alpha / (alpha + 1.0)) / np.sqrt(d_min)


def _solve_recording(method, gramian: np.ndarray):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        solution = method.solve(torch.from_numpy(gramian))
    return solution, [w for w in caught if issubclass(w.category, DegenerateGramianWarning)]


def test_opposite_gradients_get_the_documented_bounded_weights_and_a_zero_step():
    gradients = np.array([[1.0, 2.0], [-1.0, -2.0]])
    gramian = gradients @ gradients.T  # ‖g‖² = 5
    solution, caught = _solve_recording(MPD(), gramian)
    weights = solution.weights.numpy()
    # (A + ρ D) w = w^(-1/2) with ρ = 1e-3, symmetric: ρ·5·w = w^(-1/2)  =>  w = (5ρ)^(-2/3).
    np.testing.assert_allclose(weights, [(5e-3) ** (-2 / 3)] * 2, rtol=1e-10)
    np.testing.assert_allclose(gradients.T @ weights, 0.0, atol=1e-10)  # d = 0: no move along a stalemate
    assert solution.ridge == pytest.approx(1e-3)
    assert len(caught) == 1 and "no common descent direction" in str(caught[0].message)


def test_zero_gradient_objective_is_dropped_and_the_rest_is_solved_exactly():
    gradients = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.6, 0.8, 0.0]])
    gramian = gradients @ gradients.T
    solution, caught = _solve_recording(MPD(), gramian)
    weights = solution.weights.numpy()
    assert weights[1] == 0.0 and solution.dropped == (1,)
    reduced = MPD()(torch.from_numpy(gramian[np.ix_([0, 2], [0, 2])])).numpy()
    np.testing.assert_allclose(weights[[0, 2]], reduced, rtol=1e-12)
    assert solution.residual <= 1e-12
    assert len(caught) == 1 and "zero gradient" in str(caught[0].message)


def test_all_zero_gramian_gives_zero_weights():
    solution, caught = _solve_recording(MPD(), np.zeros((3, 3)))
    assert torch.equal(solution.weights, torch.zeros(3, dtype=torch.float64))
    assert solution.residual == 0.0
    assert len(caught) == 1 and "all-zero" in str(caught[0].message)


def test_warns_once_and_counts_every_case():
    method = MPD()
    opposite = np.array([[1.0, -1.0], [-1.0, 1.0]])
    first = _solve_recording(method, opposite)[1]
    second = _solve_recording(method, opposite)[1]
    assert len(first) == 1 and second == []
    assert method.degenerate_counts == {"no_common_descent": 2}
    other = MPD()  # a new instance (as when a training loop builds MPD() every step) stays quiet, but counts
    assert _solve_recording(other, opposite)[1] == []
    assert other.degenerate_counts == {"no_common_descent": 1}
    assert len(_solve_recording(MPD(), np.zeros((2, 2)))[1]) == 1  # another kind warns once too
    assert len(_solve_recording(NashMTL(), opposite)[1]) == 1  # and so does another method
    reset_degenerate_warnings()
    assert len(_solve_recording(MPD(), opposite)[1]) == 1


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    k=st.integers(2, 6),
    p=st.integers(1, 8),
    alpha=st.sampled_from([1.0, 2.0, 3.0]),
    jitter=st.sampled_from([0.0, 1e-9, 1e-5]),
)
def test_pareto_stationary_gradients_give_finite_bounded_weights(seed, k, p, alpha, jitter):
    # Plant a stationary point: the last gradient is minus a non-negative combination of the others
    # (plus jitter).
    rng = np.random.default_rng(seed)
    others = rng.normal(size=(k - 1, p)) * 10.0 ** rng.uniform(-1, 1, size=(k - 1, 1))
    last = -rng.uniform(0.1, 1.0, size=k - 1) @ others + jitter * rng.normal(size=p)
    gradients = np.vstack([others, last])
    gramian = gradients @ gradients.T
    reset_degenerate_warnings()  # once per process: re-arm for every generated example
    method = FairGrad(alpha)
    solution, caught = _solve_recording(method, gramian)
    weights = solution.weights.numpy()
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    kept = np.setdiff1d(np.arange(k), solution.dropped)
    assert solution.ridge > 0 and len(caught) == 1  # detected as degenerate, warned
    assert np.max(weights) <= _documented_bound(gramian, kept, alpha, method.stationary_tol) * (1 + 1e-9)
    assert solution.residual <= 1e-8  # the regularised system is solved accurately


@pytest.mark.parametrize("method_type", [MPD, NashMTL])
def test_near_stationary_weights_are_continuous_across_the_threshold(method_type):
    # Two gradients at angle π - ε: the ridge switches on smoothly as the hull approaches the origin.
    def weights_at(angle):
        gradients = np.array([[1.0, 0.0], [np.cos(angle), np.sin(angle)]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateGramianWarning)
            return method_type()(torch.from_numpy(gradients @ gradients.T)).numpy()

    # unit hull norm² of two unit vectors at angle θ: (1 + cos θ) / 2 = 1e-3 at the threshold
    threshold = np.arccos(2e-3 - 1.0)
    below, above = weights_at(threshold + 1e-7), weights_at(threshold - 1e-7)
    np.testing.assert_allclose(below, above, rtol=1e-3)


def test_nash_mtl_shares_the_rule():
    solution, caught = _solve_recording(NashMTL(), np.array([[4.0, -4.0], [-4.0, 4.0]]))
    np.testing.assert_allclose(solution.weights.numpy(), [(4e-3) ** (-1 / 2)] * 2, rtol=1e-9)
    assert len(caught) == 1
