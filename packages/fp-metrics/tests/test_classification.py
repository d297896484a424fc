import math

import numpy as np
import pytest
import torch

from fp_metrics import MeanStderr, disparate_impact_ratio, group_accuracy, mean_group_accuracy, mean_stderr


def test_group_accuracy_hand_computed():
    pred = torch.tensor([0, 1, 1, 2, 2, 0, 1, 1])
    target = torch.tensor([0, 1, 0, 2, 1, 0, 1, 2])
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2, -1])  # last sample in no group
    acc = group_accuracy(pred, target, groups, num_groups=4)
    assert acc[:3].tolist() == [2 / 3, 1 / 2, 1.0]
    assert math.isnan(acc[3])
    # mean over populated groups, not the pooled accuracy (5/7)
    assert mean_group_accuracy(pred, target, groups, num_groups=4) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_group_accuracy_accepts_numpy_and_matches_loop():
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    groups = rng.integers(0, 5, 200)
    acc = group_accuracy(pred, target, groups)
    for g in range(5):
        members = [i for i in range(200) if groups[i] == g]
        assert acc[g] == sum(pred[i] == target[i] for i in members) / len(members)


def test_disparate_impact_minority_over_majority():
    acc = [0.9, 0.6, 0.75]
    assert disparate_impact_ratio(acc, minority=1, majority=0) == pytest.approx(0.6 / 0.9)
    assert disparate_impact_ratio(acc, minority=0, majority=1) == pytest.approx(0.9 / 0.6)
    # without indices: worst / best, ignoring empty (NaN) groups
    assert disparate_impact_ratio(torch.tensor([0.9, float("nan"), 0.6])) == pytest.approx(0.6 / 0.9)
    assert disparate_impact_ratio([0.5, 0.5]) == 1.0


def test_disparate_impact_errors():
    with pytest.raises(ValueError, match="both"):
        disparate_impact_ratio([0.5, 0.6], minority=0)
    with pytest.raises(ValueError, match="out of range"):
        disparate_impact_ratio([0.5, 0.6], minority=2, majority=0)
    with pytest.raises(ValueError, match="undefined"):
        disparate_impact_ratio([0.5, 0.0], minority=0, majority=1)
    with pytest.raises(ValueError, match="NaN"):
        disparate_impact_ratio([0.5, float("nan")], minority=1, majority=0)
    with pytest.raises(ValueError, match="non-negative"):
        disparate_impact_ratio([-0.1, 0.5])


def test_mean_stderr_hand_computed():
    res = mean_stderr([0.70, 0.72, 0.74, 0.76])
    assert isinstance(res, MeanStderr) and res.n == 4
    assert res.mean == pytest.approx(0.73)
    # std (ddof 1) = sqrt((0.03^2 + 0.01^2) * 2 / 3) = sqrt(0.002 / 3); stderr = std / 2
    assert res.stderr == pytest.approx(math.sqrt(0.002 / 3) / 2)
    assert str(res) == "0.7300 ± 0.0129 (n=4)"
    single = mean_stderr(np.array([0.5]))
    assert single.mean == 0.5 and math.isnan(single.stderr)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same length"):
        group_accuracy([0, 1], [0, 1, 1], [0, 0])
    with pytest.raises(ValueError, match="integer group ids"):
        group_accuracy([0, 1], [0, 1], [0.0, 1.0])
    with pytest.raises(ValueError, match="num_groups=1"):
        group_accuracy([0, 1], [0, 1], [0, 1], num_groups=1)
    with pytest.raises(ValueError, match="empty"):
        mean_stderr([])
    with pytest.raises(ValueError, match="NaN"):
        mean_stderr([0.5, float("nan")])
    with pytest.raises(ValueError, match=r"\[N\]"):
        mean_stderr([[0.5, 0.6]])
