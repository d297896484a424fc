"""GradScaler + MPD + log-losses through real optimiser steps; the name factory; the flat diagnostics."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from fp_gradagg import (
    MPD,
    WEIGHTINGS,
    Amortised,
    LogLosses,
    UncertaintyWeighting,
    backward,
    build_weighting,
    scale_losses,
)

MINIMA = (0.0, 0.0, 0.0)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(16, 4)
    y = torch.randn(16, 3)

    def losses():
        out = model(x)
        return [
            (out[:, 0] - y[:, 0]).pow(2).mean(),
            (out[:, 1] - y[:, 1]).abs().mean(),
            1.0 - torch.cosine_similarity(out[:, 2], y[:, 2], dim=0),
        ]

    return model, losses


def _train(use_scaler: bool, steps: int = 6) -> tuple[list[torch.Tensor], torch.amp.GradScaler | None]:
    model, losses = _setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10) if use_scaler else None
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        values = losses()
        if scaler is None:
            backward(values, model.parameters(), MPD(), balance=LogLosses(MINIMA))
            optimizer.step()
        else:
            scaled = scale_losses(values, scaler)  # = scaler.scale(torch.stack(values))
            backward(scaled, model.parameters(), MPD(), balance=LogLosses(MINIMA), grad_scale=scaler)
            scaler.step(optimizer)
            scaler.update()
    return [p.detach().clone() for p in model.parameters()], scaler


def test_grad_scaler_steps_match_the_unscaled_run():
    plain, _ = _train(False)
    scaled, scaler = _train(True)
    assert scaler is not None and scaler.is_enabled() and scaler.get_scale() == 2.0**10  # no step skipped
    for got, want in zip(scaled, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert any(not torch.equal(p, q) for p, q in zip(plain, [p for p in _setup()[0].parameters()]))


def test_an_uninitialised_grad_scaler_is_rejected_with_the_call_sequence():
    model, losses = _setup()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    with pytest.raises(ValueError, match=r"never initialised.*scaler\.scale"):
        backward([v * 2.0**10 for v in losses()], model.parameters(), MPD(), grad_scale=scaler)
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    backward(scale_losses(losses(), disabled), model.parameters(), MPD(), grad_scale=disabled)


@pytest.mark.parametrize("name", list(WEIGHTINGS))
def test_every_name_builds_a_method_that_steps(name):
    model, losses = _setup()
    method = build_weighting(name, 3)
    params = list(model.parameters())
    if isinstance(method, UncertaintyWeighting):
        params += list(method.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = backward(losses(), params, method)
    assert result.weights.shape == (3,) and bool(torch.isfinite(result.weights).all())
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    assert all(isinstance(v, float) for v in result.diagnostics().values())


def test_factory_options_and_errors():
    assert build_weighting("FairGrad", 2, alpha=1.5).alpha == 1.5
    assert build_weighting("dwa", 2, mode="step", temperature=1.0).mode == "step"
    amortised = build_weighting("mpd", 3, every=4)
    assert isinstance(amortised, Amortised) and amortised.every == 4
    assert isinstance(build_weighting("nash-mtl", 3), type(build_weighting("nash_mtl", 3)))
    with pytest.raises(ValueError, match=r"valid names: mpd, fairgrad, nash_mtl, mgda.*si"):
        build_weighting("gradnorm", 3)
    with pytest.raises(
        ValueError, match=r"unknown option\(s\) \['alpha'\] for weighting 'mpd'; accepted: zero_tol"
    ):
        build_weighting("mpd", 3, alpha=2)
    with pytest.raises(ValueError, match="accepted: temperature, mode"):
        build_weighting("dwa", 3, every=2)
    with pytest.raises(ValueError, match="2 fixed weights but got 3"):
        build_weighting("linear", 3, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="num_objectives"):
        build_weighting("uw", 0)


def test_diagnostics_are_one_flat_dict():
    model, losses = _setup()
    result = backward(losses(), model.parameters(), MPD(), balance=LogLosses(MINIMA))
    names = ["acc", "rob", "fair"]
    flat = result.diagnostics(prefix="mpd/", names=names)
    expected_keys = {f"mpd/{c}_{n}" for c in ("weight", "effective_weight", "loss", "divisor") for n in names}
    expected_keys |= {
        f"mpd/{k}" for k in ("residual", "ridge", "dropped", "nonfinite", "iterations", "reused")
    }
    assert set(flat) == expected_keys
    assert flat["mpd/weight_rob"] == pytest.approx(float(result.weights[1]))
    assert flat["mpd/effective_weight_fair"] == pytest.approx(float(result.effective_weights[2]))
    assert flat["mpd/divisor_acc"] == pytest.approx(float(result.divisors[0]))
    assert flat["mpd/residual"] == result.residual and flat["mpd/iterations"] == result.iterations >= 1
    assert flat["mpd/reused"] == 0.0 and flat["mpd/nonfinite"] == 0.0 and flat["mpd/dropped"] == 0.0

    plain = backward(losses(), model.parameters(), MPD()).diagnostics()
    assert "divisor_0" not in plain and plain["effective_weight_2"] == plain["weight_2"]

    method = Amortised(MPD(), every=2)
    backward(losses(), model.parameters(), method)
    reused = backward(losses(), model.parameters(), method).diagnostics()
    assert reused["reused"] == 1.0 and reused["iterations"] == 0.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inf = backward([v * float("inf") for v in losses()], model.parameters(), MPD()).diagnostics()
    assert inf["nonfinite"] == 1.0
    with pytest.raises(ValueError, match="3 distinct names"):
        result.diagnostics(names=["a", "b"])
