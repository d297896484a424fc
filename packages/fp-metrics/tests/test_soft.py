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
    # class 1 is absent from the target: only class 0 counts by default, both with min_mass=0
    assert soft_miou(probs, target).tolist() == pytest.approx([0.75])
    assert soft_miou(probs, target, min_mass=0.0).tolist() == pytest.approx([0.375])
    assert soft_miou(probs, target, min_mass=0.5).tolist() == pytest.approx([0.75])  # mass 0.5 is not > 0.5


def test_equals_hard_metrics_on_exact_onehot():
    pred, target = _random_case(0)
    cm = per_image_confusion(pred, target, 5)
    probs, tgt = _onehot(pred, 5), _onehot(target, 5)
    hard_iou, hard_dice = iou_from_confusion(cm), dice_from_confusion(cm)
    present = ~torch.isnan(hard_iou)
    assert torch.equal(soft_iou(probs, tgt)[present], hard_iou[present])
    assert torch.equal(soft_dice(probs, tgt)[present], hard_dice[present])
    assert (soft_iou(probs, tgt)[~present] == 0).all()
    # min_mass=0 counts the classes in target or prediction: the hard mIoU; by default only target classes
    torch.testing.assert_close(soft_miou(probs, tgt, min_mass=0.0), torch.nanmean(hard_iou, dim=1))
    in_target = tgt.sum(dim=(2, 3)) > 0
    expected = torch.where(in_target, torch.nan_to_num(hard_iou), 0).sum(1) / in_target.sum(1)
    torch.testing.assert_close(soft_miou(probs, tgt), expected)
    assert soft_miou(probs, tgt, present_only=False).tolist() == pytest.approx(
        (torch.nan_to_num(hard_iou).sum(1) / 5).tolist()
    )


def test_soft_group_miou_equals_hard_group_miou_on_onehot():
    pred, target = _random_case(1, b=6)
    ids = torch.tensor([0, 1, 0, 2, 1, 0])
    cm = per_image_confusion(pred, target, 5)
    soft = soft_group_miou(_onehot(pred, 5), _onehot(target, 5), ids, num_groups=4, min_mass=0.0)
    hard = group_miou(cm, ids, num_groups=4)
    torch.testing.assert_close(soft[:3], hard[:3])
    assert math.isnan(soft[3]) and math.isnan(hard[3])
    # default: the mean runs over the classes in the group's targets; a reference with a loop over groups
    by_target = soft_group_miou(_onehot(pred, 5), _onehot(target, 5), ids, num_groups=4)
    for g in range(3):
        p, t = pred[ids == g], target[ids == g]
        ious = [((p == c) & (t == c)).sum() / ((p == c) | (t == c)).sum() for c in range(5) if (t == c).any()]
        assert float(by_target[g]) == pytest.approx(float(torch.stack(ious).double().mean()))
    assert math.isnan(by_target[3])


def _few_class_case(logit_scale: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """19 classes, each image's target holds 2 of them (background 0 and one more); the prediction is the
    softmax of ``logit_scale * one_hot(target)``: right everywhere, but every class has some mass."""
    labels = torch.zeros(3, 8, 8, dtype=torch.long)
    for b, c in enumerate((4, 9, 17)):
        labels[b, 2:6, 1 + b : 5 + b] = c
    target = _onehot(labels, 19)
    return (logit_scale * target).softmax(dim=1), target


def test_near_perfect_softmax_of_an_image_with_few_classes_scores_close_to_one():
    probs, target = _few_class_case()
    assert bool((probs > 0).all())  # softmax mass on all 19 classes
    assert bool((soft_miou(probs, target) > 0.99).all())
    # the old rule (count a class with any predicted mass) averaged over all 19 classes: about 2/19
    assert soft_miou(probs, target, min_mass=0.0).tolist() == pytest.approx([2 / 19] * 3, abs=0.01)
    # a threshold above the stray mass of absent classes (64 px * ~4.5e-5) gives the target rule back
    torch.testing.assert_close(soft_miou(probs, target, min_mass=1.0), soft_miou(probs, target))


def test_near_perfect_groups_with_different_class_sets_score_close_to_one():
    probs, target = _few_class_case()
    miou = soft_group_miou(probs, target, torch.tensor([0, 0, 1]))  # group 0: classes {0, 4, 9}; 1: {0, 17}
    assert bool((miou > 0.99).all())
    assert float((miou[0] - miou[1]).abs()) < 1e-3
    exact = soft_group_miou(target, target, torch.tensor([0, 0, 1]))
    assert exact.tolist() == [1.0, 1.0]


def test_soft_metrics_are_differentiable():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 5, 5, generator=g, requires_grad=True)
    target = _onehot(torch.randint(0, 4, (2, 5, 5), generator=g), 4)
    probs = logits.softmax(dim=1)
    loss = (1 - soft_miou(probs, target)).mean() + (1 - soft_dice(probs, target)).mean()
    loss = loss + (1 - soft_group_miou(probs, target, torch.tensor([0, 1]))).mean()
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_gradients_of_a_near_perfect_prediction_are_finite_and_small():
    probs, target = _few_class_case()
    logits = (10.0 * target).requires_grad_(True)
    probs = logits.softmax(dim=1)
    loss = (1 - soft_miou(probs, target)).mean() + (
        1 - soft_group_miou(probs, target, torch.tensor([0, 1, 1]))
    ).mean()
    (grad,) = torch.autograd.grad(loss, logits)
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().max()) < 1e-3


def test_gradient_descent_improves_soft_iou():
    g = torch.Generator().manual_seed(3)
    target = _onehot(torch.randint(0, 3, (1, 4, 4), generator=g), 5).float()  # classes 3, 4 absent
    logits = torch.zeros(1, 5, 4, 4, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=5.0)
    start = float(soft_miou(logits.softmax(1), target).detach())
    for _ in range(60):
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
