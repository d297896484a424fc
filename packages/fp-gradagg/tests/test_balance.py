"""Log-loss balancing: the direction is MPD on ∇L_i / (L_i - m_i); units of a loss do not matter; the floor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fp_gradagg import MPD, LogLosses, backward

MINIMA = (0.0, -1.0, 0.05)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randn(10, 3, dtype=torch.float64)

    def losses(factors=(1.0, 1.0, 1.0)):
        out = model(x)
        raw = [
            (out[:, 0] - y[:, 0]).pow(2).mean(),  # >= 0
            -torch.exp(-(out[:, 1] - y[:, 1]).pow(2)).mean(),  # >= -1
            0.05 + 1e-3 * (out[:, 2] - y[:, 2]).abs().mean(),  # >= 0.05, tiny values and gradients
        ]
        return [loss * f for loss, f in zip(raw, factors, strict=True)]

    return model, losses


def _grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_direction_is_mpd_on_the_log_loss_gradients():
    model, losses = _setup()
    values = losses()
    params = list(model.parameters())
    rows = []
    for i, loss in enumerate(values):
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        rows.append(torch.cat([g.flatten() for g in grads]) / (float(loss.detach()) - MINIMA[i]))
    jacobian = torch.stack(rows)  # ∇ log(L_i - m_i) [K, P]
    weights = MPD()(jacobian @ jacobian.T)
    expected = jacobian.T @ weights

    result = backward(values, params, MPD(), balance=LogLosses(MINIMA))
    torch.testing.assert_close(_grads(model), expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(result.weights, weights, rtol=1e-9, atol=0)
    divisors = torch.tensor(
        [float(v.detach()) - m for v, m in zip(values, MINIMA, strict=True)], dtype=torch.float64
    )
    torch.testing.assert_close(result.divisors, divisors)
    torch.testing.assert_close(result.effective_weights, weights / divisors, rtol=1e-9, atol=0)
    # the effective weights on the raw losses give the same direction through a plain weighted backward
    model.zero_grad(set_to_none=True)
    (result.effective_weights * torch.stack(losses())).sum().backward()
    torch.testing.assert_close(_grads(model), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("path", ["fast", "naive"])
def test_rescaling_one_loss_leaves_the_balanced_step_unchanged(path):
    def step(factor: float, balanced: bool):
        model, losses = _setup()
        minima = (MINIMA[0], MINIMA[1] * factor, MINIMA[2])
        balance = LogLosses(minima) if balanced else None
        result = backward(losses((1.0, factor, 1.0)), model.parameters(), MPD(), path=path, balance=balance)
        return _grads(model), result

    plain, plain_result = step(1.0, True)
    scaled, scaled_result = step(1000.0, True)
    torch.testing.assert_close(scaled, plain, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(scaled_result.weights, plain_result.weights, rtol=1e-8, atol=0)
    torch.testing.assert_close(
        scaled_result.effective_weights * torch.tensor([1.0, 1000.0, 1.0], dtype=torch.float64),
        plain_result.effective_weights,
        rtol=1e-8,
        atol=0,
    )
    # Raw-loss MPD is not invariant: the same rescaling changes its step (so this test can fail).
    raw_plain, _ = step(1.0, False)
    raw_scaled, _ = step(1000.0, False)
    assert float((raw_scaled - raw_plain).norm()) > 1e-3 * float(raw_plain.norm())


def test_balancing_uses_the_unscaled_losses_with_grad_scale():
    model, losses = _setup()
    plain = backward(losses(), model.parameters(), MPD(), balance=LogLosses(MINIMA))
    want = _grads(model)
    model.zero_grad(set_to_none=True)
    scaled = backward(
        [v * 64.0 for v in losses()], model.parameters(), MPD(), balance=LogLosses(MINIMA), grad_scale=64.0
    )
    torch.testing.assert_close(scaled.divisors, plain.divisors)
    torch.testing.assert_close(scaled.effective_weights, plain.effective_weights, rtol=1e-9, atol=0)
    torch.testing.assert_close(_grads(model), want * 64.0, rtol=1e-9, atol=1e-12)


def test_floor_bounds_the_divisor_at_and_below_the_minimum():
    balance = LogLosses([0.0, 1.0, 2.0], floor=1e-6)
    losses = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
    balanced, divisors = balance.transform(losses)
    torch.testing.assert_close(divisors, torch.tensor([0.5, 1e-6, 1e-6], dtype=torch.float64))
    torch.testing.assert_close(balanced.detach(), torch.tensor([1.0, 1e6, 1.5e6], dtype=torch.float64))
    balanced.sum().backward()  # the divisors are detached: ∂balanced_i/∂L_i = 1 / c_i
    torch.testing.assert_close(losses.grad, 1.0 / divisors)
    assert not divisors.requires_grad
    assert LogLosses([0.0]).floor == 1e-12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([],), "non-empty"),
        (([0.0, float("nan")],), "finite"),
        (([0.0], 0.0), "floor"),
    ],
)
def test_bad_log_losses_are_rejected(args, message):
    with pytest.raises(ValueError, match=message):
        LogLosses(*args)


def test_a_wrong_number_of_losses_is_rejected():
    model, losses = _setup()
    with pytest.raises(ValueError, match="2 minima"):
        backward(losses(), model.parameters(), MPD(), balance=LogLosses([0.0, 0.0]))
