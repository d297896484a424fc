"""DWA, uncertainty weighting, RLW and SI: hand-computed weights, state across steps, backward."""

from __future__ import annotations

import math

import pytest
import torch

from fp_gradagg import DWA, RLW, ScaleInvariant, UncertaintyWeighting, backward


def _model_and_losses(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2).double()
    x = torch.randn(5, 3, dtype=torch.float64)

    def losses():
        out = model(x)
        return [out[:, 0].pow(2).mean(), (out[:, 1] - 2).pow(2).mean()]

    return model, losses


def test_dwa_weights_follow_the_last_two_loss_ratios():
    method = DWA(temperature=2.0)
    first = method.combine(torch.tensor([1.0, 2.0]))
    second = method.combine(torch.tensor([0.5, 2.0]))
    third = method.combine(torch.tensor([0.4, 1.0]))
    torch.testing.assert_close(first.weights, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(second.weights, torch.ones(2, dtype=torch.float64))
    # ratios r = (0.5/1, 2/2) = (0.5, 1): w = 2 softmax(r / 2)
    e1, e2 = math.exp(0.25), math.exp(0.5)
    torch.testing.assert_close(
        third.weights, torch.tensor([2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)], dtype=torch.float64)
    )
    assert float(third.loss) == pytest.approx(float(third.weights[0]) * 0.4 + float(third.weights[1]) * 1.0)
    # the objective whose loss fell less gets the larger weight, and the weights sum to K
    assert float(third.weights.sum()) == pytest.approx(2.0)


def test_dwa_state_round_trips_and_rejects_a_changed_k():
    method = DWA()
    method.combine(torch.tensor([1.0, 2.0]))
    method.combine(torch.tensor([0.5, 1.5]))
    restored = DWA()
    restored.load_state_dict(method.state_dict())
    torch.testing.assert_close(restored.current_weights(2), method.current_weights(2))
    with pytest.raises(ValueError, match="2 losses before and 3 now"):
        method.combine(torch.tensor([1.0, 1.0, 1.0]))


def test_uncertainty_weighting_learns_its_log_variances_through_backward():
    model, losses = _model_and_losses()
    method = UncertaintyWeighting(2).double()
    values = [float(v.detach()) for v in losses()]
    result = backward(losses(), model.parameters(), method)
    # d/ds (exp(-s) l + s) at s = 0 is 1 - l
    torch.testing.assert_close(
        method.log_variances.grad, torch.tensor([1 - values[0], 1 - values[1]], dtype=torch.float64)
    )
    torch.testing.assert_close(result.weights, torch.ones(2, dtype=torch.float64))
    # at s = 0 the model gradient is that of the plain sum
    expected_model, expected_losses = _model_and_losses()
    sum(expected_losses()).backward()
    for p, q in zip(model.parameters(), expected_model.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_uncertainty_weighting_optimum_is_the_log_loss():
    method = UncertaintyWeighting(2)
    optimiser = torch.optim.SGD(method.parameters(), lr=0.2)
    losses = torch.tensor([0.5, 4.0])
    for _ in range(300):
        optimiser.zero_grad()
        method.combine(losses).loss.backward()
        optimiser.step()
    torch.testing.assert_close(method.log_variances.detach(), losses.log(), atol=1e-3, rtol=0)


def test_rlw_draws_simplex_weights_reproducibly():
    a, b = RLW(seed=3), RLW(seed=3)
    first = a.combine(torch.tensor([1.0, 2.0, 3.0]))
    assert float(first.weights.sum()) == pytest.approx(1.0) and bool((first.weights > 0).all())
    torch.testing.assert_close(first.weights, b.combine(torch.tensor([1.0, 2.0, 3.0])).weights)
    assert not torch.equal(first.weights, a.combine(torch.tensor([1.0, 2.0, 3.0])).weights)  # fresh per call


def test_scale_invariant_gradient_does_not_change_when_a_loss_is_rescaled():
    def grads(scale: float):
        model, losses = _model_and_losses()
        values = losses()
        result = backward([values[0] * scale, values[1]], model.parameters(), ScaleInvariant())
        return [p.grad.clone() for p in model.parameters()], result

    plain, result = grads(1.0)
    scaled, _ = grads(1000.0)
    for p, q in zip(plain, scaled):
        torch.testing.assert_close(p, q)
    torch.testing.assert_close(result.weights, 1.0 / result.losses)
    with pytest.raises(ValueError, match="losses >= 0"):
        ScaleInvariant().combine(torch.tensor([1.0, -0.5]))


def test_loss_weightings_respect_grad_scale():
    # Losses multiplied by S with grad_scale=S: same weights, .grad multiplied by S.
    def run(scale: float):
        model, losses = _model_and_losses()
        method = DWA()
        for _ in range(2):
            method.combine(
                torch.stack([v.detach() for v in losses()]) * torch.tensor([1.0, 0.5], dtype=torch.float64)
            )
        result = backward([v * scale for v in losses()], model.parameters(), method, grad_scale=scale)
        return [p.grad.clone() for p in model.parameters()], result.weights

    (plain, w_plain), (scaled, w_scaled) = run(1.0), run(512.0)
    torch.testing.assert_close(w_plain, w_scaled)
    for p, q in zip(plain, scaled):
        torch.testing.assert_close(p * 512.0, q)
