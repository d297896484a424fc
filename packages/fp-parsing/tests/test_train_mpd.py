"""The MPD-weighted parser step: MPD over log-losses (unit-free) or raw losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_gradagg import MPD
from fp_parsing.losses import OBJECTIVE_MINIMA, ParsingObjectives
from fp_parsing.train import ConfigError, TrainConfig, _mpd_step

NAMES = ("accuracy", "robustness", "fairness")


def _terms(x: torch.Tensor, fairness_unit: float = 1.0) -> dict[str, torch.Tensor]:
    """Three objectives of a parameter vector ``x [4]``, with the parser terms' ranges (rob in [-1, 0])."""
    return {
        "accuracy": (x - torch.tensor([0.5, -0.2, 0.1, 0.3])).pow(2).sum() + 0.05,
        "robustness": -torch.sigmoid(x[:2].sum() - x[3]),
        "fairness": fairness_unit * ((x[0] - x[2]).pow(2) * 1e-4 + 1e-6),
    }


def _direction(
    losses_kind: str, fairness_unit: float = 1.0
) -> tuple[torch.Tensor, list[float], torch.Tensor]:
    x = torch.tensor([0.3, 0.1, -0.4, 0.2], dtype=torch.float64, requires_grad=True)
    result, effective = _mpd_step(_terms(x, fairness_unit), [x], "fast", losses_kind, 1.0)
    return x.grad.clone(), effective, result.weights


def test_log_losses_give_the_mpd_direction_of_the_log_gradients() -> None:
    x = torch.tensor([0.3, 0.1, -0.4, 0.2], dtype=torch.float64, requires_grad=True)
    terms = _terms(x)
    # reference: h_i = ∇ log(L_i - min_i) = ∇L_i / (L_i - min_i), MPD on their Gramian, d = Σ w_i h_i
    rows = []
    for name in NAMES:
        (grad,) = torch.autograd.grad(terms[name], x, retain_graph=True)
        rows.append(grad / (float(terms[name].detach()) - OBJECTIVE_MINIMA[name]))
    h = torch.stack(rows)
    weights = MPD()(h @ h.T)
    grad, effective, applied = _direction("log")
    torch.testing.assert_close(applied.double(), weights, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad, weights @ h, rtol=1e-6, atol=1e-12)
    # the weights in effect on the raw losses: w_i / (L_i - min_i)
    divisors = [float(terms[n].detach()) - OBJECTIVE_MINIMA[n] for n in NAMES]
    np.testing.assert_allclose(effective, [float(w) / d for w, d in zip(weights, divisors)], rtol=1e-6)
    # MPD's fixed point on the balanced objectives: h_i · d = w_i^(-1/2)
    np.testing.assert_allclose((h @ grad).numpy(), weights.numpy() ** -0.5, rtol=1e-6)


def test_log_losses_make_the_step_independent_of_a_loss_unit() -> None:
    grad, _, _ = _direction("log")
    rescaled, _, _ = _direction("log", fairness_unit=1000.0)
    torch.testing.assert_close(rescaled, grad, rtol=1e-6, atol=1e-12)
    raw, _, _ = _direction("raw")
    raw_rescaled, _, _ = _direction("raw", fairness_unit=1000.0)
    assert not torch.allclose(raw_rescaled, raw, rtol=1e-3)  # raw MPD depends on the fairness loss's unit


def test_raw_losses_give_weights_on_the_losses_themselves() -> None:
    x = torch.tensor([0.3, 0.1, -0.4, 0.2], dtype=torch.float64, requires_grad=True)
    terms = _terms(x)
    g = torch.stack([torch.autograd.grad(terms[n], x, retain_graph=True)[0] for n in NAMES])
    weights = MPD()(g @ g.T)
    grad, effective, _ = _direction("raw")
    np.testing.assert_allclose(effective, weights.numpy(), rtol=1e-6)
    torch.testing.assert_close(grad, weights @ g, rtol=1e-6, atol=1e-12)


def test_objective_minima_bound_the_terms() -> None:
    torch.manual_seed(0)
    objectives = ParsingObjectives(num_classes=3, num_groups=[2])
    model = torch.nn.Conv2d(3, 3, 1)
    images = torch.randn(4, 3, 8, 8)
    masks = torch.randint(0, 3, (4, 8, 8))
    groups = torch.tensor([[0], [1], [0], [1]])
    terms = objectives(model, images, masks, groups, generator=torch.Generator().manual_seed(0))
    for name in NAMES:
        assert float(terms[name].detach()) >= OBJECTIVE_MINIMA[name]
    assert float(terms["robustness"].detach()) <= 0.0


def test_bad_mpd_losses_are_named() -> None:
    with pytest.raises(ConfigError, match="mpd_losses must be one of"):
        TrainConfig.from_dict({"mpd_losses": "logarithmic"})
    assert TrainConfig().mpd_losses == "log"
