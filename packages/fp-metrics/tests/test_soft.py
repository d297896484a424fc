import math

import pytest
import torch
import torch.nn.functional as F

from fp_metrics import (
    dice_from_confusion,
    group_miou,
    iou_from_confusion,
    per_image_confusion,
    soft_dice,
    soft_group_miou,
    soft_intersection_union,
    soft_iou,
    soft_miou,
)


def _onehot(labels, c):
    return F.one_hot(labels, c).permute(0, 3, 1, 2).to(torch.float64)


def _random_case(seed, b=3, c=5, h=7, w=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, c - 1, (b, h, w), generator=g), torch.randint(0, c - 1, (b, h, w), generator=g)


def test_hand_computed_soft_values():
    probs = torch.tensor([[[[0.5, 1.0]], [[0.5, 0.0]]]])  # [1, 2, 1, 2]
    target = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]]])
    inter, union = soft_intersection_union(probs, target)
    assert inter.tolist() == [[1.5, 0.0]]
    assert union.tolist() == [[2.0, 0.5]]
    assert soft_iou(probs, target)[0].tolist() == pytest.approx([0.75, 0.0])
    assert soft_dice(probs, target)[0].tolist() == pytest.approx([3.0 / 3.5, 0.0])
    assert soft_miou(probs, target).tolist() == pytest.approx([0.375])


def test_equals_hard_metrics_on_exact_onehot():
    pred, target = _random_case(0)
    cm = per_image_confusion(pred, target, 5)
    probs, tgt = _onehot(pred, 5), _onehot(target, 5)
    hard_iou, hard_dice = iou_from_confusion(cm), dice_from_confusion(cm)
    present = ~torch.isnan(hard_iou)
    assert torch.equal(soft_iou(probs, tgt)[present], hard_iou[present])
    assert torch.equal(soft_dice(probs, tgt)[present], hard_dice[present])
    assert (soft_iou(probs, tgt)[~present] == 0).all()
    torch.testing.assert_close(soft_miou(probs, tgt), torch.nanmean(hard_iou, dim=1))
    assert soft_miou(probs, tgt, present_only=False).tolist() == pytest.approx(
        (torch.nan_to_num(hard_iou).sum(1) / 5).tolist()
    )


def test_soft_group_miou_equals_hard_group_miou_on_onehot():
    pred, target = _random_case(1, b=6)
    ids = torch.tensor([0, 1, 0, 2, 1, 0])
    cm = per_image_confusion(pred, target, 5)
    soft = soft_group_miou(_onehot(pred, 5), _onehot(target, 5), ids, num_groups=4)
    hard = group_miou(cm, ids, num_groups=4)
    torch.testing.assert_close(soft[:3], hard[:3])
    assert math.isnan(soft[3]) and math.isnan(hard[3])


def test_soft_metrics_are_differentiable():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 5, 5, generator=g, requires_grad=True)
    target = _onehot(torch.randint(0, 4, (2, 5, 5), generator=g), 4)
    probs = logits.softmax(dim=1)
    loss = (1 - soft_miou(probs, target)).mean() + (1 - soft_dice(probs, target)).mean()
    loss = loss + (1 - soft_group_miou(probs, target, torch.tensor([0, 1]))).mean()
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_gradient_descent_improves_soft_iou():
    g = torch.Generator().manual_seed(3)
    target = _onehot(torch.randint(0, 3, (1, 4, 4), generator=g), 3).float()
    logits = torch.zeros(1, 3, 4, 4, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=5.0)
    start = float(soft_miou(logits.softmax(1), target).detach())
    for _ in range(20):
        opt.zero_grad()
        (1 - soft_miou(logits.softmax(1), target)).sum().backward()
        opt.step()
    assert float(soft_miou(logits.softmax(1), target).detach()) > start + 0.3


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        soft_iou(torch.rand(1, 3, 4, 4), torch.rand(1, 2, 4, 4))
    with pytest.raises(ValueError, match="group_ids"):
        soft_group_miou(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.tensor([0, 1, 1]))


def test_group_ids_must_be_integers_and_may_all_be_unassigned():
    probs, target = torch.rand(2, 3, 4, 4), _onehot(torch.randint(0, 3, (2, 4, 4)), 3)
    with pytest.raises(ValueError, match="integer group ids"):
        soft_group_miou(probs, target, torch.tensor([0.0, 1.0]))
    assert soft_group_miou(probs, target, torch.tensor([-1, -2])).shape == (0,)
