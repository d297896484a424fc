"""``fp_gradagg.backward``: naive and fast paths agree on a real network, the .grad convention, AMP scaling,
accumulation, non-finite gradients, hooks and accelerate."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from fp_gradagg import (
    MGDA,
    MPD,
    Amortised,
    CAGrad,
    DegenerateGramianWarning,
    FairGrad,
    LinearScalarization,
    NashMTL,
    PCGrad,
    backward,
    gramian_from_gradients,
)
from fp_gradagg.gradients import combine_gradients


class TinyNet(nn.Module):
    """Conv -> GroupNorm -> ReLU -> strided conv -> linear head (3 outputs); a frozen and an unused layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8 * 4 * 4, 3)
        self.frozen = nn.Linear(3, 3)
        self.frozen.requires_grad_(False)
        self.unused = nn.Linear(2, 2)  # reached by no loss: its .grad must stay None, as with loss.backward()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm(self.conv1(x)))
        return self.frozen(self.head(torch.tanh(self.conv2(h)).flatten(1)))


def _setup(dtype: torch.dtype = torch.float32, seed: int = 0):
    torch.manual_seed(seed)
    model = TinyNet().to(dtype)
    images = torch.randn(4, 3, 8, 8, dtype=dtype)
    targets = torch.randn(4, 3, dtype=dtype)

    def losses():
        out = model(images)
        return [
            (out[:, 0] - targets[:, 0]).pow(2).mean(),
            (out[:, 1] - targets[:, 1]).abs().mean(),
            torch.nn.functional.softplus(out[:, 2] - targets[:, 2]).mean(),
        ]

    return model, losses


def _trained(model: nn.Module) -> list[torch.Tensor]:
    return [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("unused")]


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in _trained(model)]


def _reference(model: nn.Module, losses) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit Jacobian [K, P] by K separate loss.backward() calls, and its Gramian."""
    rows = []
    for loss in losses():
        model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        rows.append(torch.cat([p.grad.flatten() for p in _trained(model)]))
    model.zero_grad(set_to_none=True)
    jacobian = torch.stack(rows).double()
    return jacobian, jacobian @ jacobian.T


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method_type", [MPD, NashMTL, MGDA, CAGrad, lambda: PCGrad(seed=0)])
def test_naive_and_fast_paths_agree_on_a_real_network(dtype, method_type):
    model, losses = _setup(dtype)
    jacobian, gramian = _reference(model, losses)
    tol = {"rtol": 2e-5, "atol": 1e-7} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    results = {}
    for path in ("naive", "fast"):
        for combine in ("reuse", "recompute"):
            model.zero_grad(set_to_none=True)
            result = backward(losses(), model.parameters(), method_type(), path=path, combine=combine)
            results[path, combine] = (result, _grads(model))
    base, base_grads = results["naive", "reuse"]
    torch.testing.assert_close(base.gramian, gramian, **tol)
    expected = torch.split(jacobian.T @ base.weights.double(), [p.numel() for p in _trained(model)])
    for got, want in zip(base_grads, expected):
        torch.testing.assert_close(got.double().flatten(), want, **tol)
    for result, grads in results.values():
        torch.testing.assert_close(result.gramian, base.gramian, **tol)
        torch.testing.assert_close(result.weights, base.weights, **tol)
        for got, want in zip(grads, base_grads):
            torch.testing.assert_close(got, want, **tol)
    assert model.frozen.weight.grad is None  # frozen parameters are left alone
    assert model.unused.weight.grad is None  # and so are parameters no loss reaches


def test_mpd_weights_solve_the_fixed_point_of_the_network_gramian():
    model, losses = _setup(torch.float64)
    result = backward(losses(), model.parameters(), MPD())
    w = result.weights
    torch.testing.assert_close(result.gramian @ w, w.pow(-0.5), rtol=1e-10, atol=0)
    assert result.residual <= 1e-8 and bool((w > 0).all())


def test_linear_scalarisation_is_the_plain_loss_sum_backward():
    model, losses = _setup()
    sum(losses()).backward()
    expected = _grads(model)
    model.zero_grad(set_to_none=True)
    result = backward(losses(), model.parameters(), LinearScalarization("sum"))
    for got, want in zip(_grads(model), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert result.residual == 0.0 and result.gramian is None
    torch.testing.assert_close(result.weights, torch.ones(3))


def test_backward_accumulates_into_existing_grad():
    model, losses = _setup(torch.float64)
    backward(losses(), model.parameters(), MPD())
    once = _grads(model)
    backward(losses(), model.parameters(), MPD())  # a second micro-batch (same data here)
    for got, want in zip(_grads(model), once):
        torch.testing.assert_close(got, 2 * want)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_grad_scale_unscales_before_solving(alpha):
    scale = 2.0**12
    model, losses = _setup(torch.float64)
    plain = backward(losses(), model.parameters(), FairGrad(alpha))
    plain_grads = _grads(model)

    model.zero_grad(set_to_none=True)
    scaled = backward([v * scale for v in losses()], model.parameters(), FairGrad(alpha), grad_scale=scale)
    torch.testing.assert_close(scaled.weights, plain.weights, rtol=1e-9, atol=0)
    torch.testing.assert_close(scaled.gramian, plain.gramian, rtol=1e-9, atol=0)
    for got, want in zip(_grads(model), plain_grads):
        torch.testing.assert_close(got, want * scale)  # .grad stays scaled for the GradScaler to unscale

    # Without the unscale the solver sees S² A: weights S^(-2 alpha/(alpha+1)) times smaller, and so is the
    # step after the GradScaler unscales .grad by 1/S: the silent shrink the option prevents.
    model.zero_grad(set_to_none=True)
    naive = backward([v * scale for v in losses()], model.parameters(), FairGrad(alpha))
    torch.testing.assert_close(
        naive.weights, plain.weights * scale ** (-2 * alpha / (alpha + 1)), rtol=1e-9, atol=0
    )
    for got, want in zip(_grads(model), plain_grads):
        torch.testing.assert_close(got / scale, want * scale ** (-2 * alpha / (alpha + 1)))


def test_grad_scaler_object_is_accepted():
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    model, losses = _setup(torch.float64)
    plain = backward(losses(), model.parameters(), MPD())
    model.zero_grad(set_to_none=True)
    result = backward([scaler.scale(v) for v in losses()], model.parameters(), MPD(), grad_scale=scaler)
    torch.testing.assert_close(result.weights, plain.weights, rtol=1e-9, atol=0)


def test_accumulation_with_a_fractional_scale_gives_the_mean_direction():
    model, losses = _setup(torch.float64)
    backward(losses(), model.parameters(), MPD())
    full = _grads(model)
    model.zero_grad(set_to_none=True)
    for _ in range(4):  # 4 micro-batches of the same data, each loss divided by 4
        backward([v / 4 for v in losses()], model.parameters(), MPD(), grad_scale=0.25)
    for got, want in zip(_grads(model), full):
        torch.testing.assert_close(got, want)


def test_nonfinite_gradients_skip_the_solve_and_reach_grad():
    model, losses = _setup()
    values = losses()
    values[2] = values[2] * 1e30 * 1e30  # overflows to inf in float32, as an fp16 loss scale can
    result = backward(values, model.parameters(), MPD())
    assert result.nonfinite and result.residual == 0.0
    torch.testing.assert_close(result.weights, torch.ones(3))
    assert not all(bool(torch.isfinite(g).all()) for g in _grads(model))  # a GradScaler would skip this step


def test_a_loss_that_reaches_no_parameter_is_dropped_with_a_warning():
    model, losses = _setup(torch.float64)
    values = losses()
    values[1] = torch.tensor(0.3, dtype=torch.float64)  # a constant: zero gradient
    with pytest.warns(DegenerateGramianWarning, match="zero gradient"):
        result = backward(values, model.parameters(), MPD(), path="naive")
    assert result.weights[1] == 0.0 and result.dropped == (1,)
    assert bool(torch.isfinite(result.weights).all())


def test_direction_write_fires_gradient_hooks_once_per_parameter():
    model, losses = _setup()
    fired: list[int] = []
    for p in _trained(model):
        p.register_post_accumulate_grad_hook(lambda _p: fired.append(1))
    backward(losses(), model.parameters(), MPD())
    assert len(fired) == len(_trained(model))


def test_retain_graph_allows_a_second_call_and_default_frees_it():
    model, losses = _setup()
    values = losses()
    backward(values, model.parameters(), MPD(), retain_graph=True)
    backward(values, model.parameters(), MPD())
    with pytest.raises(RuntimeError):
        backward(values, model.parameters(), MPD())


def test_works_on_an_accelerate_prepared_model():
    accelerate = pytest.importorskip("accelerate")
    accelerator = accelerate.Accelerator(cpu=True)
    model, losses = _setup()
    backward(losses(), model.parameters(), MPD())
    expected = _grads(model)
    model.zero_grad(set_to_none=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    prepared, optimizer = accelerator.prepare(model, optimizer)
    result = backward(losses(), prepared.parameters(), MPD())
    for got, want in zip(_grads(prepared), expected):
        torch.testing.assert_close(got, want)
    optimizer.step()
    assert math.isfinite(result.residual)


def test_gramian_chunking_does_not_change_the_result():
    torch.manual_seed(0)
    gradients = [
        torch.randn(3, 5, 4, dtype=torch.float64),
        torch.randn(3, 7, dtype=torch.float64),
        torch.randn(3, 2, 2, 2, dtype=torch.float64),
    ]
    dense = torch.cat([g.reshape(3, -1) for g in gradients], dim=1)
    for chunk in (1, 10, 1 << 24):
        torch.testing.assert_close(gramian_from_gradients(gradients, chunk_numel=chunk), dense @ dense.T)
    weights = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    for combined, g in zip(combine_gradients(gradients, weights), gradients):
        torch.testing.assert_close(combined, torch.einsum("k,k...->...", weights, g))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"losses": []}, "at least one"),
        ({"losses": [torch.ones(2, requires_grad=True)]}, r"losses\[0\] must be a scalar"),
        ({"losses": [torch.tensor(1.0)]}, "requires grad"),
        ({"params": [torch.ones(2)]}, "no tensor that requires grad"),
        ({"path": "fastest"}, "'naive' or 'fast'"),
        ({"grad_scale": -1.0}, "grad_scale"),
        ({"grad_scale": "1"}, "grad_scale"),
        ({"combine": "both"}, "'reuse' or 'recompute'"),
    ],
)
def test_bad_arguments_are_rejected_with_a_clear_message(kwargs, message):
    model, losses = _setup()
    arguments = {"losses": losses(), "params": model.parameters(), "method": MPD()} | kwargs
    losses_ = arguments.pop("losses")
    params = arguments.pop("params")
    method = arguments.pop("method")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=message):
            backward(losses_, params, method, **arguments)


def test_amortised_refreshes_every_n_calls_and_reuses_the_weights_in_between():
    model, losses = _setup(torch.float64)
    method = Amortised(MPD(), every=3)
    results = [backward(losses(), model.parameters(), method) for _ in range(7)]
    reused = [r.extra.get("reused_weights", 0.0) == 1.0 for r in results]
    assert reused == [False, True, True, False, True, True, False]
    assert all(r.gramian is None for r, was_reused in zip(results, reused) if was_reused)
    torch.testing.assert_close(results[1].weights, results[0].weights, rtol=0, atol=0)

    # A reused step applies exactly Σ w_i ∇l_i with the cached weights.
    model.zero_grad(set_to_none=True)
    result = backward(losses(), model.parameters(), method)  # call 8: reused
    assert result.extra.get("reused_weights") == 1.0
    got = _grads(model)
    model.zero_grad(set_to_none=True)
    (result.weights * torch.stack(losses())).sum().backward()
    for g, want in zip(got, _grads(model)):
        torch.testing.assert_close(g, want)
    with pytest.raises(ValueError, match="every must be a positive int"):
        Amortised(MPD(), every=0)
