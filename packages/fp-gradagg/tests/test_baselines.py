"""Nash-MTL, MGDA, CAGrad, PCGrad, linear scalarisation: slow references and defining facts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from fp_gradagg import MGDA, CAGrad, FairGrad, LinearScalarization, NashMTL, PCGrad, min_norm_point

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.tuples(st.integers(1, 6), st.integers(1, 10))


def _gramian(gradients: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(gradients @ gradients.T)


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=shapes, spread=st.floats(0.0, 1.0))
def test_nash_mtl_equals_fairgrad_with_alpha_one(make_gradients, hull_norm2, seed, shape, spread):
    gradients = make_gradients(seed, *shape, spread=spread)
    assume(hull_norm2(gradients) > 1e-2)
    nash = NashMTL().solve(_gramian(gradients))
    fair = FairGrad(1.0).solve(_gramian(gradients))
    np.testing.assert_allclose(nash.weights.numpy(), fair.weights.numpy(), rtol=1e-8)
    assert nash.residual <= 1e-8
    # The bargaining direction d = Gᵀw gives every objective the gain 1 / w_i.
    direction = gradients.T @ nash.weights.numpy()
    np.testing.assert_allclose(gradients @ direction, 1.0 / nash.weights.numpy(), rtol=1e-7)


def _brute_force_min_norm(gramian: np.ndarray) -> float:
    """min_{λ ∈ Δ} λᵀAλ by SLSQP from every vertex and the centre (slow reference)."""
    k = gramian.shape[0]
    starts = [np.eye(k)[i] for i in range(k)] + [np.full(k, 1.0 / k)]
    best = np.inf
    for start in starts:
        result = minimize(
            lambda w: (w @ gramian @ w, 2 * gramian @ w),
            start,
            jac=True,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * k,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        point = np.clip(result.x, 0.0, None)
        point /= point.sum()  # SLSQP meets Σλ = 1 only to ~1e-9; evaluate on the simplex itself
        best = min(best, float(point @ gramian @ point))
    return best


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=shapes, shared=st.sampled_from([0.0, 0.5, 2.0]))
def test_mgda_is_the_min_norm_hull_point(make_gradients, seed, shape, shared):
    gradients = make_gradients(seed, *shape, shared=shared, spread=0.5)
    gramian = gradients @ gradients.T
    weights = MGDA()(torch.from_numpy(gramian)).numpy()
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0)
    value = float(weights @ gramian @ weights)
    reference = _brute_force_min_norm(gramian)
    assert value <= reference + 1e-10 * np.max(np.diag(gramian))
    # Optimality (KKT) of the min-norm point d: g_iᵀd >= ‖d‖² for every i, equality on the support.
    products = gramian @ weights
    tol = 1e-9 * np.max(np.diag(gramian))
    assert np.all(products >= value - tol)
    np.testing.assert_allclose(products[weights > 1e-9], value, atol=1e-8 * np.max(np.diag(gramian)))


def test_mgda_hand_computed_cases():
    # Two orthogonal gradients of squared norms 1 and 4: λ = (4, 1) / 5, the foot of the segment's
    # perpendicular.
    np.testing.assert_allclose(
        MGDA()(torch.tensor([[1.0, 0.0], [0.0, 4.0]], dtype=torch.float64)).numpy(), [0.8, 0.2]
    )
    # One gradient inside the hull's shadow of another: g2 = 2 g1  =>  the min-norm point is g1 itself.
    np.testing.assert_allclose(
        MGDA()(torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=torch.float64)).numpy(), [1.0, 0.0]
    )
    # Opposite gradients: the origin is in the hull.
    weights, value = min_norm_point(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    np.testing.assert_allclose(weights, [0.5, 0.5])
    assert value == pytest.approx(0.0, abs=1e-15)


def _cagrad_brute_force(gradients: np.ndarray, c: float) -> float:
    """max_{‖d - g0‖ <= c‖g0‖} min_i g_iᵀd in the gradients' space (slow reference, epigraph form)."""
    k, p = gradients.shape
    g0 = gradients.mean(axis=0)
    radius2 = (c * np.linalg.norm(g0)) ** 2
    x0 = np.concatenate([g0, [float(np.min(gradients @ g0))]])
    result = minimize(
        lambda x: -x[-1],
        x0,
        method="SLSQP",
        constraints=[
            {"type": "ineq", "fun": lambda x: gradients @ x[:p] - x[-1]},
            {"type": "ineq", "fun": lambda x: radius2 - np.sum((x[:p] - g0) ** 2)},
        ],
        options={"ftol": 1e-14, "maxiter": 2000},
    )
    return -float(result.fun)


@pytest.mark.parametrize("seed", range(6))
def test_cagrad_direction_solves_the_conflict_averse_problem(make_gradients, seed):
    gradients = make_gradients(seed, 3, 4, shared=0.5, spread=0.3)
    c = 0.5
    weights = CAGrad(c)(_gramian(gradients)).numpy()
    direction = (1.0 + c**2) * (gradients.T @ weights)  # undo the reference code's 1 / (1 + c²) rescale
    g0 = gradients.mean(axis=0)
    assert np.linalg.norm(direction - g0) <= c * np.linalg.norm(g0) * (1 + 1e-6)
    assert float(np.min(gradients @ direction)) == pytest.approx(
        _cagrad_brute_force(gradients, c), rel=1e-5, abs=1e-8
    )


def test_cagrad_with_zero_radius_is_the_mean():
    gramian = torch.tensor([[2.0, -1.0, 0.0], [-1.0, 3.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)
    np.testing.assert_allclose(CAGrad(0.0)(gramian).numpy(), [1 / 3] * 3)


@SETTINGS
@given(seed=st.integers(0, 2**31), p=st.integers(1, 8))
def test_pcgrad_leaves_no_pairwise_conflict_for_two_objectives(make_gradients, seed, p):
    gradients = torch.from_numpy(make_gradients(seed, 2, p, shared=0.0))
    projected = PCGrad(seed=0).project(gradients)
    scale = float(gradients.norm(dim=1).prod())
    assert float(projected[0] @ gradients[1]) >= -1e-12 * scale
    assert float(projected[1] @ gradients[0]) >= -1e-12 * scale
    direction = projected.sum(dim=0)
    assert bool(((gradients @ direction) >= -1e-12 * scale).all())  # the sum conflicts with neither objective


@SETTINGS
@given(seed=st.integers(0, 2**31), shape=shapes, order_seed=st.integers(0, 100))
def test_pcgrad_gramian_form_equals_the_jacobian_algorithm(make_gradients, seed, shape, order_seed):
    gradients = torch.from_numpy(make_gradients(seed, *shape, shared=0.3))
    weights = PCGrad(seed=order_seed)(gradients @ gradients.T)
    projected = PCGrad(seed=order_seed).project(gradients)
    torch.testing.assert_close(gradients.T @ weights, projected.sum(dim=0), rtol=1e-10, atol=1e-10)


def test_pcgrad_without_conflict_is_the_loss_sum():
    gramian = torch.tensor([[1.0, 0.2], [0.2, 2.0]], dtype=torch.float64)
    np.testing.assert_allclose(PCGrad(seed=1)(gramian).numpy(), [1.0, 1.0])
    # Hand-computed conflict: g1 = (1, 0), g2 = (-1, 1), g1·g2 = -1: g1^PC = g1 + g2/2 = (½, ½),
    # g2^PC = g2 + g1 = (0, 1); d = (½, 3/2) = 2 g1 + 1.5 g2.
    gradients = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    np.testing.assert_allclose(PCGrad(seed=1)(gradients @ gradients.T).numpy(), [2.0, 1.5])


def test_linear_scalarisation_weights():
    gramian = torch.eye(3, dtype=torch.float64)
    np.testing.assert_allclose(LinearScalarization("sum")(gramian).numpy(), [1, 1, 1])
    np.testing.assert_allclose(LinearScalarization("mean")(gramian).numpy(), [1 / 3] * 3)
    np.testing.assert_allclose(LinearScalarization([0.5, 2.0, 1.0])(gramian).numpy(), [0.5, 2.0, 1.0])
    with pytest.raises(ValueError, match="2 fixed weights but got 3"):
        LinearScalarization([1.0, 2.0])(gramian)
    with pytest.raises(ValueError, match="'sum', 'mean'"):
        LinearScalarization("median")  # type: ignore[arg-type]
