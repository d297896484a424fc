"""DWA, uncertainty weighting, RLW and SI: hand-computed weights, state across steps, backward."""

from __future__ import annotations

import io
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


def test_dwa_step_mode_weights_follow_the_last_two_loss_ratios():
    method = DWA(temperature=2.0, mode="step")
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
    method = DWA(mode="step")
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
        method = DWA(mode="step")
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


def _dwa_expected(ratios: list[float], temperature: float = 2.0) -> torch.Tensor:
    exps = [math.exp(r / temperature) for r in ratios]
    return torch.tensor([len(ratios) * e / sum(exps) for e in exps], dtype=torch.float64)


# Per-step losses of four epochs of two steps each (K = 2), and their epoch means.
EPOCHS = [
    [[1.0, 2.0], [3.0, 4.0]],  # mean (2, 3)
    [[1.0, 3.0], [1.0, 1.0]],  # mean (1, 2)
    [[0.5, 1.0], [0.7, 1.2]],  # mean (0.6, 1.1)
    [[0.4, 1.0], [0.4, 1.0]],
]


def test_dwa_epoch_mode_uses_the_ratio_of_the_two_previous_epoch_means():
    method = DWA(temperature=2.0)  # mode="epoch" is the default
    assert method.mode == "epoch"
    weights = []
    for epoch in EPOCHS:
        weights.append([method.combine(torch.tensor(step)).weights for step in epoch])
        method.end_epoch()
    ones = torch.ones(2, dtype=torch.float64)
    for epoch in (0, 1):  # the first two epochs: w = 1
        for w in weights[epoch]:
            torch.testing.assert_close(w, ones)
    # epoch 2: r = L̄(1) / L̄(0) = (1/2, 2/3); constant within the epoch
    for w in weights[2]:
        torch.testing.assert_close(w, _dwa_expected([1 / 2, 2 / 3]))
    # epoch 3: r = L̄(2) / L̄(1) = (0.6 / 1, 1.1 / 2)
    for w in weights[3]:
        torch.testing.assert_close(w, _dwa_expected([0.6, 0.55]))
    assert method.epochs == 4

    # The per-step form on the same sequence: r = l(s-1) / l(s-2), changing every step.
    step = DWA(temperature=2.0, mode="step")
    flat = [torch.tensor(s) for epoch in EPOCHS for s in epoch]
    got = [step.combine(losses).weights for losses in flat]
    torch.testing.assert_close(got[2], _dwa_expected([3 / 1, 4 / 2]))
    torch.testing.assert_close(got[5], _dwa_expected([0.5 / 1, 1 / 1]))
    step.end_epoch()  # a no-op in step mode
    torch.testing.assert_close(step.current_weights(2), _dwa_expected([0.4 / 0.4, 1.0 / 1.0]))


def test_dwa_end_epoch_needs_a_step_and_mode_is_checked():
    with pytest.raises(ValueError, match="no losses recorded"):
        DWA().end_epoch()
    with pytest.raises(ValueError, match="'epoch' or 'step'"):
        DWA(mode="batch")  # type: ignore[arg-type]


def _checkpoint(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_dwa_resumed_mid_epoch_continues_with_the_same_weights():
    straight = DWA()
    flat = [torch.tensor(s) for epoch in EPOCHS for s in epoch]
    straight_weights = []
    for i, losses in enumerate(flat):
        straight_weights.append(straight.combine(losses).weights)
        if i % 2 == 1:
            straight.end_epoch()

    first = DWA()
    resumed_weights = []
    for i, losses in enumerate(flat[:5]):  # stop after the first step of epoch 2
        resumed_weights.append(first.combine(losses).weights)
        if i % 2 == 1:
            first.end_epoch()
    second = DWA(temperature=5.0, mode="step")  # the checkpoint restores temperature and mode too
    second.load_state_dict(_checkpoint(first.state_dict()))
    for i, losses in enumerate(flat[5:], start=5):
        resumed_weights.append(second.combine(losses).weights)
        if i % 2 == 1:
            second.end_epoch()
    for got, want in zip(resumed_weights, straight_weights, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_dwa_through_backward_records_the_unscaled_losses():
    model, losses = _model_and_losses()
    method = DWA()
    values = []
    for _ in range(3):
        model.zero_grad()
        result = backward([v * 8.0 for v in losses()], model.parameters(), method, grad_scale=8.0)
        values.append(result.losses)
    method.end_epoch()
    torch.testing.assert_close(method.history[-1], torch.stack(values).mean(0))


def test_rlw_state_round_trips_through_a_checkpoint():
    straight = RLW(seed=5)
    losses = torch.tensor([1.0, 2.0, 3.0])
    draws = [straight.combine(losses).weights for _ in range(4)]
    first = RLW(seed=5)
    first.combine(losses)
    first.combine(losses)
    second = RLW(seed=99)
    second.load_state_dict(_checkpoint(first.state_dict()))
    torch.testing.assert_close(second.combine(losses).weights, draws[2], rtol=0, atol=0)
    torch.testing.assert_close(second.combine(losses).weights, draws[3], rtol=0, atol=0)


def test_every_weighting_state_round_trips():
    from fp_gradagg import WEIGHTINGS, Amortised, PCGrad, build_weighting

    gramian = torch.tensor([[2.0, -0.5, 0.1], [-0.5, 1.0, 0.2], [0.1, 0.2, 0.5]], dtype=torch.float64)
    for name in WEIGHTINGS:
        method = build_weighting(name, 3)
        restored = build_weighting(name, 3)
        restored.load_state_dict(_checkpoint(method.state_dict()))
    pcgrad = PCGrad(seed=1)
    pcgrad(gramian)
    other = PCGrad(seed=2)
    other.load_state_dict(_checkpoint(pcgrad.state_dict()))
    torch.testing.assert_close(other(gramian), pcgrad(gramian), rtol=0, atol=0)
    amortised = Amortised(build_weighting("mpd", 3), every=3)
    amortised.cached_solution(3)
    amortised.solve(gramian)
    again = Amortised(build_weighting("mpd", 3), every=3)
    again.load_state_dict(_checkpoint(amortised.state_dict()))
    assert again.calls == 1 and again.cached_solution(3) is not None
    torch.testing.assert_close(again.last.weights, amortised.last.weights)
    with pytest.raises(ValueError, match="stateless"):
        build_weighting("mgda", 3).load_state_dict({"x": 1})
