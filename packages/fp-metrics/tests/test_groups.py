import math

import numpy as np
import pytest
import torch

from fp_metrics import group_confusion, group_fairness, group_miou, iou_from_confusion, per_image_confusion


def _cms(seed, n=12, c=4, hw=5):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, c, (n, hw, hw), generator=g)
    pred = torch.where(
        torch.rand(n, hw, hw, generator=g) < 0.6, target, torch.randint(0, c, (n, hw, hw), generator=g)
    )
    return per_image_confusion(pred, target, c)


def _ref_group_miou(cms, members):
    if not members:
        return float("nan")
    total = sum(cms[i] for i in members)
    return float(np.nanmean(iou_from_confusion(total).numpy()))


def test_hand_computed_two_groups():
    # image 0: perfect on classes 0/1; image 1: everything predicted as 0
    cm0 = torch.tensor([[2, 0], [0, 2]])
    cm1 = torch.tensor([[2, 0], [2, 0]])
    per = torch.stack([cm0, cm1])
    m = group_miou(per, torch.tensor([0, 1]), num_groups=3)
    assert m[0] == 1.0
    assert m[1] == pytest.approx(0.25)  # class 0 IoU 2/4, class 1 IoU 0
    assert math.isnan(m[2])
    fair = group_fairness(per, {"g": torch.tensor([0, 1])})["g"]
    assert fair.variance == pytest.approx(((1 - 0.625) ** 2 + (0.25 - 0.625) ** 2) / 2)
    assert fair.max_gap == pytest.approx(0.75)
    assert fair.worst_group == "1" and fair.worst_miou == pytest.approx(0.25)


def test_group_miou_matches_loop_reference():
    cms = _cms(0)
    ids = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, -1, 1, 2, 2])
    got = group_miou(cms, ids, num_groups=4)
    for k in range(4):
        members = [i for i in range(12) if int(ids[i]) == k]
        ref = _ref_group_miou(cms, members)
        assert (math.isnan(ref) and math.isnan(got[k])) or got[k] == pytest.approx(ref, rel=1e-12)
    assert torch.equal(group_confusion(cms, ids).sum(0), cms[ids >= 0].sum(0))


def test_boolean_attributes_match_loop_and_numpy_variance():
    cms = _cms(1)
    g = torch.Generator().manual_seed(5)
    attrs = torch.rand(12, 3, generator=g) < 0.5
    attrs[:, 2] = True  # every image has attribute 2: its 'absent' group is empty
    out = group_fairness(cms, attrs, names=["Smiling", "Male", "Young"])
    assert list(out) == ["Smiling", "Male", "Young"]
    for j, name in enumerate(["Smiling", "Male"]):
        absent = [i for i in range(12) if not attrs[i, j]]
        present = [i for i in range(12) if attrs[i, j]]
        ref = [_ref_group_miou(cms, absent), _ref_group_miou(cms, present)]
        r = out[name]
        assert r.group_names == ["absent", "present"]
        assert r.miou.tolist() == pytest.approx(ref, rel=1e-12)
        assert r.counts.tolist() == [len(absent), len(present)]
        assert r.variance == pytest.approx(float(np.var(ref)), rel=1e-12)
        assert r.max_gap == pytest.approx(abs(ref[0] - ref[1]), rel=1e-12)
        assert r.worst_group == ["absent", "present"][int(np.argmin(ref))]
    young = out["Young"]
    assert math.isnan(young.miou[0]) and young.counts.tolist() == [0, 12]
    assert young.variance == 0.0 and young.max_gap == 0.0 and young.worst_group == "present"


def test_categorical_groups_with_names_and_as_dict():
    cms = _cms(2)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2, 0, 1, 2])
    out = group_fairness(cms, {"race": ids}, names={"race": ["African", "Asian", "Caucasian", "Indian"]})
    r = out["race"]
    assert r.group_names == ["African", "Asian", "Caucasian", "Indian"]
    assert math.isnan(r.miou[3]) and r.counts.tolist() == [4, 4, 4, 0]
    vals = group_miou(cms, ids).numpy()
    assert r.variance == pytest.approx(float(np.var(vals)), rel=1e-12)
    d = r.as_dict()
    assert d["worst_group"] == r.worst_group and len(d["miou"]) == 4


def test_exclude_background():
    cms = _cms(3)
    ids = torch.zeros(12, dtype=torch.long)
    iou = iou_from_confusion(cms.sum(0))
    assert float(group_miou(cms, ids, include_background=False)[0]) == pytest.approx(float(iou[1:].mean()))


def test_bad_inputs_raise():
    cms = _cms(4)
    with pytest.raises(ValueError, match=r"BoolTensor \[N, A\]"):
        group_fairness(cms, torch.ones(12, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="names"):
        group_fairness(cms, torch.ones(12, 2, dtype=torch.bool), names=["a"])
    with pytest.raises(ValueError, match="num_groups=2"):
        group_miou(cms, torch.full((12,), 2), num_groups=2)
    with pytest.raises(ValueError, match=r"\[N, C, C\]"):
        group_miou(cms[0], torch.zeros(4, dtype=torch.long))


def test_images_in_no_group():
    cms = _cms(5)
    assert group_confusion(cms, torch.full((12,), -2)).shape == (0, 4, 4)
    ids = torch.full((12,), -1)
    ids[:3] = 1
    got = group_miou(cms, ids)
    assert math.isnan(got[0]) and got[1] == pytest.approx(_ref_group_miou(cms, [0, 1, 2]), rel=1e-12)
