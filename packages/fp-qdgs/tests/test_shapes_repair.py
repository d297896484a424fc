"""The classifier-repair protocol: the summary and verdicts on hand-computed numbers, and a tiny trial."""

from __future__ import annotations

import math

import pytest
import torch

from fp_qdgs.shapes.render import make_shapes
from fp_qdgs.shapes.repair import (
    RepairConfig,
    TrialResult,
    make_repair_data,
    run_repair_trial,
    summarise_trials,
    verdict,
)

TRIALS = [
    {"real": 0.60, "qd": 0.80, "random": 0.75},
    {"real": 0.70, "qd": 0.90, "random": 0.85},
    {"real": 0.65, "qd": 0.70, "random": 0.72},
]


def test_summary_by_hand() -> None:
    s = summarise_trials(TRIALS)
    qd = s["arms"]["qd"]
    assert qd.mean == pytest.approx(0.8) and qd.n == 3
    assert qd.se == pytest.approx(math.sqrt(0.01 / 3))  # deviations 0, 0.1, -0.1; var 0.01
    d = s["differences"]["qd-real"]  # 0.2, 0.2, 0.05: mean 0.15, var 0.0075, se 0.05
    assert (d.mean, d.se) == (pytest.approx(0.15), pytest.approx(0.05))
    assert d.verdict == "higher"
    r = s["differences"]["qd-random"]  # 0.05, 0.05, -0.02: mean 0.02667, se 0.02333
    assert r.mean == pytest.approx(0.08 / 3) and r.se == pytest.approx(0.07 / 3)
    assert r.verdict == "no detectable difference"
    swapped = summarise_trials(TRIALS, comparisons=[("real", "qd")])
    assert list(swapped["differences"]) == ["real-qd"]
    assert swapped["differences"]["real-qd"].verdict == "lower"


def test_verdict_rule_edges() -> None:
    assert verdict(0.1, 0.05) == "no detectable difference"  # exactly 2 s.e. is not beyond
    assert verdict(0.1001, 0.05) == "higher"
    assert verdict(-0.1001, 0.05) == "lower"
    assert verdict(0.3, float("nan")) == "no detectable difference"
    assert verdict(0.01, 0.0) == "higher"


def test_one_trial_and_missing_arms() -> None:
    s = summarise_trials([{"real": 0.5, "qd": 0.7}])
    assert math.isnan(s["arms"]["qd"].se)
    assert list(s["differences"]) == ["qd-real"]
    assert s["differences"]["qd-real"].verdict == "no detectable difference"
    with pytest.raises(ValueError, match="no trials"):
        summarise_trials([])


def test_tiny_trial_is_paired_and_consistent() -> None:
    train = make_shapes(8, 0.9, seed=0, augmented=False)
    test = make_shapes(8, 0.5, seed=1, augmented=False)
    synth = make_shapes(8, 0.5, seed=2, augmented=False)
    config = RepairConfig(base_epochs=1, finetune_epochs=1, batch_size=4)
    logged = []
    result = run_repair_trial(
        train,
        test,
        {"qd": (synth.images, synth.shape), "same": (synth.images, synth.shape)},
        seed=3,
        config=config,
        bias=0.9,
        log=lambda m, s: logged.append((s, dict(m))),
    )
    assert isinstance(result, TrialResult) and set(result.accuracy) == {"real", "qd", "same"}
    assert result.accuracy["qd"] == result.accuracy["same"]  # same base copy, same seed, same data
    for arm, acc in result.accuracy.items():
        assert acc == pytest.approx(sum(result.group_accuracy[arm]) / 4)
    assert [s for s, _ in logged] == [1, 1, 1]
    assert set(logged[0][1]) == {"repair/real/classifier/loss"}
    again = run_repair_trial(train, test, {"qd": (synth.images, synth.shape)}, seed=3, config=config)
    assert again.accuracy == {k: result.accuracy[k] for k in ("real", "qd")}
    assert again.losses["real"] == result.losses["real"]


def test_bad_arms_are_refused() -> None:
    data = make_shapes(4, 0.5, seed=0, augmented=False)
    with pytest.raises(ValueError, match="'real' names the base arm"):
        run_repair_trial(data, data, {"real": (data.images, data.shape)}, seed=0)
    with pytest.raises(ValueError, match="synthetic set 'qd'"):
        run_repair_trial(data, data, {"qd": (torch.rand(2, 3, 64, 64), torch.zeros(2))}, seed=0)
    with pytest.raises(ValueError, match="base_epochs"):
        RepairConfig(base_epochs=0)


def test_repair_data_is_biased_and_balanced() -> None:
    train, test = make_repair_data(0.9, 0, n_train=20, n_test=8)
    assert len(train.images) == 20 and len(test.images) == 8
    assert int(((train.shape == 0) & (train.colour == 0)).sum()) == 9  # round(0.9 * 10) red triangles
    assert torch.bincount(test.groups, minlength=4).tolist() == [2, 2, 2, 2]
