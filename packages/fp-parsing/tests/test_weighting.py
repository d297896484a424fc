"""The parser's objective weighting: every fp-gradagg method is reachable and logs its weights, log-balanced MPD
is the hand-computed direction and unit-free, DWA averages over epochs, and fp16 loss scaling with a Gramian
method runs real steps that equal the unscaled ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from toy_dataset import ToyFaces  # noqa: I001  (test helper beside this file)

from fp_core.training import HarnessConfig, TrainingHarness
from fp_gradagg import MPD
from fp_parsing.groups import build_groupings
from fp_parsing.losses import OBJECTIVE_MINIMA, ParsingObjectives
from fp_parsing.schedules import build_schedule
from fp_parsing.train import TrainConfig, parser_step, train_parser
from fp_parsing.weighting import GRADIENT_WEIGHTINGS, OBJECTIVE_NAMES, WEIGHTINGS, ObjectiveWeighting

GRAMIAN = ("mpd", "nash_mtl", "mgda", "cagrad", "pcgrad")


def _harness(tmp_path: Path) -> TrainingHarness:
    return TrainingHarness(HarnessConfig(checkpoint_dir=tmp_path / "ck", progress=False, cpu=True))


def _batch(n: int = 4, size: int = 8, classes: int = 3) -> tuple[dict[str, torch.Tensor], object]:
    data = ToyFaces(n=n, size=size)
    items = [data[i] for i in range(n)]
    batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    spec = build_groupings(data.attribute_names, ["Male", "Young"], num_skin_tone_groups=2)
    return batch, spec


def _model(classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, classes, 1)
    )


@pytest.mark.parametrize("name", WEIGHTINGS)
def test_every_weighting_is_reachable_and_logs_its_weights(tmp_path: Path, name: str) -> None:
    batch, spec = _batch()
    model = _model()
    weighting = ObjectiveWeighting(name, build_schedule({"kind": "linear"}, 2))
    objectives = ParsingObjectives(num_classes=3, num_groups=spec.num_groups)
    params = [*model.parameters(), *weighting.parameters()]
    record = parser_step(
        _harness(tmp_path),
        model,
        objectives,
        weighting,
        batch,
        spec,
        params,
        0.5,
        torch.Generator().manual_seed(1),
    )
    shares = [record[f"weights/{n}"] for n in ("alpha", "beta", "gamma")]
    assert sum(shares) == pytest.approx(1.0)
    assert all(s >= 0 for s in shares)
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
    if name in GRADIENT_WEIGHTINGS:
        assert {f"{name}/weight_alpha", f"{name}/weight_beta", f"{name}/weight_gamma"} <= set(record)
    if name in GRAMIAN:
        assert f"{name}/residual" in record and f"{name}/effective_weight_alpha" in record


def _terms(x: torch.Tensor, fairness_unit: float = 1.0) -> dict[str, torch.Tensor]:
    """Three objectives of a parameter vector ``x [4]`` with the parser terms' ranges (robustness in [-1, 0])."""
    return {
        "accuracy": (x - torch.tensor([0.5, -0.2, 0.1, 0.3], dtype=x.dtype)).pow(2).sum() + 0.05,
        "robustness": -torch.sigmoid(x[:2].sum() - x[3]),
        "fairness": fairness_unit * ((x[0] - x[2]).pow(2) * 1e-4 + 1e-6),
    }


def _mpd_direction(tmp_path: Path, balance: str, fairness_unit: float = 1.0) -> tuple[torch.Tensor, dict]:
    x = torch.tensor([0.3, 0.1, -0.4, 0.2], dtype=torch.float64, requires_grad=True)
    weighting = ObjectiveWeighting("mpd", None, balance=balance)
    _, record = weighting.backward(_terms(x, fairness_unit), [x], 0.0, _harness(tmp_path))
    return x.grad.clone(), record


def test_log_balanced_mpd_is_mpd_on_the_log_gradients(tmp_path: Path) -> None:
    x = torch.tensor([0.3, 0.1, -0.4, 0.2], dtype=torch.float64, requires_grad=True)
    terms = _terms(x)
    rows = []  # h_i = ∇ log(L_i - min_i) = ∇L_i / (L_i - min_i)
    for name in OBJECTIVE_NAMES:
        (grad,) = torch.autograd.grad(terms[name], x, retain_graph=True)
        rows.append(grad / (float(terms[name].detach()) - OBJECTIVE_MINIMA[name]))
    h = torch.stack(rows)
    weights = MPD()(h @ h.T)
    grad, record = _mpd_direction(tmp_path, "log")
    torch.testing.assert_close(grad, weights @ h, rtol=1e-6, atol=1e-12)
    applied = torch.tensor(
        [record[f"mpd/weight_{n}"] for n in ("alpha", "beta", "gamma")], dtype=torch.float64
    )
    torch.testing.assert_close(applied, weights, rtol=1e-6, atol=0)
    # the logged shares are those of the weights in effect on the raw losses, w_i / (L_i - min_i)
    effective = torch.tensor(
        [
            float(w) / (float(terms[n].detach()) - OBJECTIVE_MINIMA[n])
            for w, n in zip(weights, OBJECTIVE_NAMES)
        ]
    )
    shares = torch.tensor([record[f"weights/{n}"] for n in ("alpha", "beta", "gamma")], dtype=torch.float64)
    torch.testing.assert_close(shares, (effective / effective.sum()).double(), rtol=1e-6, atol=0)


def test_log_balance_makes_the_step_independent_of_a_loss_unit(tmp_path: Path) -> None:
    grad, _ = _mpd_direction(tmp_path, "log")
    rescaled, _ = _mpd_direction(tmp_path, "log", fairness_unit=1000.0)
    torch.testing.assert_close(rescaled, grad, rtol=1e-6, atol=1e-12)
    raw, _ = _mpd_direction(tmp_path, "raw")
    raw_rescaled, _ = _mpd_direction(tmp_path, "raw", fairness_unit=1000.0)
    assert not torch.allclose(raw_rescaled, raw, rtol=1e-3)  # raw MPD depends on the fairness loss's unit


def _scaled_run(tmp_path: Path, scale: float | None, steps: int = 3) -> list[torch.Tensor]:
    batch, spec = _batch()
    model = _model()
    harness = _harness(tmp_path / str(scale))
    if scale is not None:  # what fp16 on an accelerator gives: a GradScaler on the accelerator
        harness.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = harness.prepare(model, optimizer)
    weighting = ObjectiveWeighting("mpd", None)
    objectives = ParsingObjectives(num_classes=3, num_groups=spec.num_groups)
    params = list(model.parameters())
    for step in range(steps):
        parser_step(
            harness,
            model,
            objectives,
            weighting,
            batch,
            spec,
            params,
            0.0,
            torch.Generator().manual_seed(step),
        )
        assert harness.step(optimizer, params, batch)
    return [p.detach().clone() for p in model.parameters()]


def test_fp16_loss_scaling_with_mpd_runs_and_equals_the_unscaled_steps(tmp_path: Path) -> None:
    """The scaler is initialised by scaling the losses (no 'Attempted step but _scale is None') and MPD's
    weights are solved on unscaled gradients, so the steps do not depend on the loss scale."""
    reference = _scaled_run(tmp_path, None)
    scaled = _scaled_run(tmp_path, 2.0**10)
    for p, q in zip(reference, scaled, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)


def test_dwa_averages_losses_over_epochs(tmp_path: Path) -> None:
    data = ToyFaces(n=8, size=32)
    config = TrainConfig.from_dict(
        {
            "epochs": 3,
            "batch_size": 4,
            "encoder_name": "resnet18",
            "num_classes": 3,
            "cpu": True,
            "fairness": {"attributes": ["Male", "Young"]},
            "weighting": "dwa",
        }
    )
    result = train_parser(config, data, tmp_path / "model", checkpoint_dir=tmp_path / "ck", progress=False)
    table = result.weights_table
    # DWA (Liu et al. 2019): equal weights for the first two epochs, then from the epoch-mean loss ratios
    for epoch in (0, 1):
        assert [table[n][epoch] for n in ("alpha", "beta", "gamma")] == pytest.approx([1 / 3] * 3)
    assert [table[n][2] for n in ("alpha", "beta", "gamma")] != pytest.approx([1 / 3] * 3, abs=1e-6)
    assert sum(table[n][2] for n in ("alpha", "beta", "gamma")) == pytest.approx(1.0)


def test_unknown_weighting_and_balance_are_named() -> None:
    with pytest.raises(ValueError, match="weighting must be one of"):
        ObjectiveWeighting("magic", None)
    with pytest.raises(ValueError, match="balance must be one of"):
        ObjectiveWeighting("mpd", None, balance="logarithmic")
