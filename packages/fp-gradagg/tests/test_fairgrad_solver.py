"""FairGrad / MPD fixed point: residual, positivity, scaling law, permutation equivariance, exact cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from fp_gradagg import MPD, FairGrad, MinimumPotentialDelay, solve_fairgrad_fixed_point
from fp_gradagg.fairgrad import fixed_point_residual

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

alphas = st.floats(min_value=0.25, max_value=8.0)
shapes = st.tuples(st.integers(1, 7), st.integers(1, 12))


def _weights(method: FairGrad, gradients: np.ndarray) -> np.ndarray:
    return method(torch.from_numpy(gradients @ gradients.T)).numpy()


def _equation_residual(gramian: np.ndarray, weights: np.ndarray, alpha: float) -> float:
    target = weights ** (-1.0 / alpha)
    return float(np.linalg.norm(gramian @ weights - target) / np.linalg.norm(target))


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=shapes, alpha=alphas, spread=st.floats(0.0, 1.5))
def test_fixed_point_residual_and_positivity_on_well_posed_gramians(
    make_gradients, hull_norm2, seed, shape, alpha, spread
):
    gradients = make_gradients(seed, *shape, spread=spread)
    assume(hull_norm2(gradients) > 1e-2)  # well-posed: a clear common descent direction
    method = FairGrad(alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no degenerate-Gramian warning on a well-posed Gramian
        solution = method.solve(torch.from_numpy(gradients @ gradients.T))
    weights = solution.weights.numpy()
    assert np.all(weights > 0) and np.all(np.isfinite(weights))
    assert solution.residual <= 1e-8
    # The reported residual is honest: recompute it on the original (unnormalised) equation.
    assert _equation_residual(gradients @ gradients.T, weights, alpha) <= 1e-8
    assert solution.ridge == 0.0 and solution.dropped == ()


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=shapes, alpha=alphas, log_c=st.floats(-6.0, 6.0))
def test_scaling_law(make_gradients, hull_norm2, seed, shape, alpha, log_c):
    gradients = make_gradients(seed, *shape)
    assume(hull_norm2(gradients) > 1e-2)
    c = 10.0**log_c
    gramian = torch.from_numpy(gradients @ gradients.T)
    base = FairGrad(alpha)(gramian).numpy()
    scaled = FairGrad(alpha)(gramian * c).numpy()
    np.testing.assert_allclose(scaled, base * c ** (-alpha / (alpha + 1.0)), rtol=1e-9)


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=shapes, alpha=alphas, perm_seed=st.integers(0, 1000))
def test_permutation_equivariance(make_gradients, hull_norm2, seed, shape, alpha, perm_seed):
    gradients = make_gradients(seed, *shape)
    assume(hull_norm2(gradients) > 1e-2)
    permutation = np.random.default_rng(perm_seed).permutation(shape[0])
    weights = _weights(FairGrad(alpha), gradients)
    permuted = _weights(FairGrad(alpha), gradients[permutation])
    np.testing.assert_allclose(permuted, weights[permutation], rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
def test_orthogonal_gradients_have_the_closed_form(alpha):
    norms2 = np.array([4.0, 1.0, 0.25])
    weights = FairGrad(alpha)(torch.diag(torch.from_numpy(norms2))).numpy()
    np.testing.assert_allclose(weights, norms2 ** (-alpha / (alpha + 1.0)), rtol=1e-12)


def test_identical_gradients_share_the_weight_of_the_sum():
    # g1 = g2 = g, ‖g‖² = a: 2 a w = w^(-1/2)  =>  w = (2a)^(-2/3) each.
    a = 3.0
    weights = MPD()(torch.full((2, 2), a, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(weights, [(2 * a) ** (-2 / 3)] * 2, rtol=1e-12)


def test_single_objective():
    np.testing.assert_allclose(MPD()(torch.tensor([[9.0]], dtype=torch.float64)).numpy(), [9.0 ** (-2 / 3)])


def test_mpd_is_fairgrad_with_alpha_two(make_gradients):
    gradients = torch.from_numpy(make_gradients(3, 4, 9))
    gramian = gradients @ gradients.T
    assert MinimumPotentialDelay is MPD
    assert MPD().alpha == 2.0
    torch.testing.assert_close(MPD()(gramian), FairGrad(2.0)(gramian), rtol=0, atol=0)


@pytest.mark.parametrize("alpha", [0.5, 2.0, 3.0])
def test_matches_a_slow_reference_minimiser(make_gradients, alpha):
    # Reference: minimise the convex potential f(w) = ½ wᵀAw - Σ h(w_i) with L-BFGS-B (no Newton, no tricks).
    gradients = make_gradients(11, 4, 6)
    gramian = gradients @ gradients.T
    power = 1.0 - 1.0 / alpha

    def potential(w):
        return 0.5 * w @ gramian @ w - np.sum(w**power) / power, gramian @ w - w ** (-1.0 / alpha)

    reference = minimize(
        potential,
        np.ones(4),
        jac=True,
        method="L-BFGS-B",
        bounds=[(1e-9, None)] * 4,
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000},
    ).x
    np.testing.assert_allclose(_weights(FairGrad(alpha), gradients), reference, rtol=1e-5)


def test_float32_gramian_gives_float32_weights_and_a_float64_accurate_solve(make_gradients):
    gradients = make_gradients(5, 3, 8)
    solution = MPD().solve(torch.from_numpy(gradients @ gradients.T).float())
    assert solution.weights.dtype == torch.float32
    assert solution.residual <= 1e-8


def test_paper_closed_form_can_be_negative_where_the_solver_stays_positive():
    # Two similar gradients of different size. The paper prints W = (GᵀG)^(-2/3) 1 with G = [P, K], i.e. the
    # -2/3 matrix power of the K x K Gramian applied to the ones vector.
    gradients = np.array([[2.0, 0.0], [0.9, 0.3]])
    gramian = gradients @ gradients.T
    eigenvalues, eigenvectors = np.linalg.eigh(gramian)
    closed_form = eigenvectors @ np.diag(eigenvalues ** (-2.0 / 3.0)) @ eigenvectors.T @ np.ones(2)
    assert closed_form.min() < 0  # a negative weight: the "closed form" is not an MPD solution
    solution = MPD().solve(torch.from_numpy(gramian))
    weights = solution.weights.numpy()
    assert np.all(weights > 0) and solution.residual <= 1e-12
    assert _equation_residual(gramian, weights, 2.0) <= 1e-12
    # Both objectives make first-order progress along the solver's direction, as fairness requires.
    assert np.all(gramian @ weights > 0)


def test_solver_function_reports_iterations_and_residual():
    matrix = np.array([[1.0, 0.3], [0.3, 0.5]])
    weights, residual, iterations = solve_fairgrad_fixed_point(matrix, 2.0)
    assert residual == pytest.approx(fixed_point_residual(matrix, weights, 2.0))
    assert residual <= 1e-13 and 0 < iterations < 30


@pytest.mark.parametrize(
    ("gramian", "message"),
    [
        (torch.ones(2, 3), "square matrix"),
        (torch.ones(3), "square matrix"),
        (torch.tensor([[1.0, math.nan], [math.nan, 1.0]]), "non-finite"),
        (torch.tensor([[1.0, 0.5], [-0.5, 1.0]]), "symmetric"),
        (torch.tensor([[-1.0, 0.0], [0.0, 1.0]]), "positive semi-definite"),
    ],
)
def test_bad_gramians_are_rejected_with_a_clear_message(gramian, message):
    with pytest.raises(ValueError, match=message):
        MPD()(gramian)


@pytest.mark.parametrize("alpha", [0.0, -1.0, math.inf, math.nan])
def test_bad_alpha_is_rejected(alpha):
    with pytest.raises(ValueError, match="alpha"):
        FairGrad(alpha)
