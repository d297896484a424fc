import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, jaccard_score

from fp_metrics import (
    ConfusionMatrix,
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    per_image_confusion,
    segmentation_scores,
)
from fp_metrics.segmentation import foreground_micro_f1


def _loop_confusion(pred, target, c, ignore=None):
    cm = np.zeros((c, c), dtype=np.int64)
    for p, t in zip(pred.flatten().tolist(), target.flatten().tolist()):
        if ignore is not None and t == ignore:
            continue
        cm[t, p] += 1
    return cm


def test_hand_computed_example():
    target = torch.tensor([[0, 0, 1], [1, 2, 2]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, target, 4)
    expected = torch.tensor([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    assert torch.equal(cm, expected)
    iou = iou_from_confusion(cm)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 1/2; class 3 absent
    assert iou[:3].tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(iou[3])
    dice = dice_from_confusion(cm)
    assert dice[:3].tolist() == pytest.approx([2 / 4, 4 / 5, 2 / 3])
    s = segmentation_scores(cm)
    assert s.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert s.miou_no_background == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    assert s.foreground_mean_f1 == pytest.approx((4 / 5 + 2 / 3) / 2)
    # mean Dice over the classes of mIoU (background included, absent class 3 left out)
    assert s.mean_dice == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)
    # micro F1 over classes 1..3: TP 2 + 1, FP 1 (a 0 read as 1) + 0, FN 0 + 1 (a 2 read as 0) -> 6 / 8
    assert s.foreground_f1 == pytest.approx(6 / 8)


def test_dice_and_foreground_f1_are_different_numbers():
    """A hand-computed matrix where a large easy part and a small hard part pull the two apart."""
    cm = torch.tensor([[50, 2, 0], [3, 90, 10], [0, 5, 5]])
    s = segmentation_scores(cm)
    # per-class Dice: background 2*50 / (100 + 3 + 2); skin 2*90 / (180 + 7 + 13); small part 2*5 / (10 + 10 + 5)
    dice = [100 / 105, 180 / 200, 10 / 25]
    assert s.dice.tolist() == pytest.approx(dice)
    assert s.mean_dice == pytest.approx(sum(dice) / 3)
    assert s.foreground_mean_f1 == pytest.approx((dice[1] + dice[2]) / 2)
    # pooled over the foreground: TP 90 + 5, FP 7 + 10, FN 13 + 5
    assert s.foreground_f1 == pytest.approx(2 * 95 / (2 * 95 + 17 + 18))
    assert s.foreground_f1 > s.mean_dice > s.miou
    # the same numbers from sklearn on the pixels the matrix counts
    t = np.repeat(np.arange(3), cm.sum(1).numpy())
    p = np.concatenate([np.repeat(np.arange(3), row) for row in cm.numpy()])
    assert f1_score(t, p, labels=[1, 2], average="micro") == pytest.approx(s.foreground_f1)
    assert f1_score(t, p, labels=[0, 1, 2], average="macro") == pytest.approx(s.mean_dice)


def test_mean_dice_is_bounded_by_miou():
    """Per class dice = 2 iou / (1 + iou) is concave, so mean Dice <= 2 mIoU / (1 + mIoU) (Jensen)."""
    g = torch.Generator().manual_seed(5)
    for _ in range(20):
        cm = torch.randint(0, 50, (6, 6), generator=g) + torch.diag(torch.randint(0, 500, (6,), generator=g))
        s = segmentation_scores(cm)
        assert s.mean_dice <= 2 * s.miou / (1 + s.miou) + 1e-12


def test_foreground_micro_f1_edge_cases():
    assert math.isnan(float(foreground_micro_f1(torch.tensor([[7, 0], [0, 0]]))))  # background only
    assert float(foreground_micro_f1(torch.tensor([[0, 0], [0, 4]]))) == 1.0
    assert float(foreground_micro_f1(torch.tensor([[3, 4], [0, 0]]))) == 0.0  # only false positives
    batched = foreground_micro_f1(torch.stack([torch.eye(3, dtype=torch.int64), torch.ones(3, 3).long()]))
    assert batched.shape == (2,) and batched[0] == 1.0
    assert float(batched[1]) == pytest.approx(2 * 2 / (2 * 2 + 4 + 4))  # each part: 1 TP, 2 FP, 2 FN


def test_ignore_index_drops_target_pixels_only():
    target = torch.tensor([0, 255, 1, 255])
    pred = torch.tensor([0, 1, 1, 0])
    cm = confusion_matrix(pred, target, 2, ignore_index=255)
    assert torch.equal(cm, torch.tensor([[1, 0], [0, 1]]))


def test_matches_plain_loop_and_sklearn():
    g = torch.Generator().manual_seed(0)
    c = 7
    target = torch.randint(0, c, (4, 9, 11), generator=g)
    pred = torch.randint(0, c, (4, 9, 11), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = 255
    cm = confusion_matrix(pred, target, c, ignore_index=255)
    assert np.array_equal(cm.numpy(), _loop_confusion(pred.numpy(), target.numpy(), c, 255))
    keep = target != 255
    t, p = target[keep].numpy(), pred[keep].numpy()
    assert np.array_equal(cm.numpy(), sk_confusion(t, p, labels=list(range(c))))
    np.testing.assert_allclose(
        iou_from_confusion(cm).numpy(), jaccard_score(t, p, labels=list(range(c)), average=None)
    )
    np.testing.assert_allclose(
        dice_from_confusion(cm).numpy(), f1_score(t, p, labels=list(range(c)), average=None)
    )


def test_per_image_confusion_matches_single_images():
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 5, (3, 6, 6), generator=g)
    pred = torch.randint(0, 5, (3, 6, 6), generator=g)
    target[0, :2] = -1
    per = per_image_confusion(pred, target, 5, ignore_index=-1)
    assert per.shape == (3, 5, 5)
    for b in range(3):
        assert torch.equal(per[b], confusion_matrix(pred[b], target[b], 5, ignore_index=-1))
    assert int(per[0].sum()) == 36 - 12


def test_accumulator_equals_one_shot_and_merges():
    g = torch.Generator().manual_seed(2)
    target = torch.randint(0, 6, (10, 8, 8), generator=g)
    pred = torch.randint(0, 6, (10, 8, 8), generator=g)
    full = confusion_matrix(pred, target, 6)
    acc = ConfusionMatrix(6)
    for i in range(0, 10, 3):
        acc.update(pred[i : i + 3], target[i : i + 3])
    assert torch.equal(acc.matrix, full)
    a, b = ConfusionMatrix(6), ConfusionMatrix(6)
    a.update(pred[:4], target[:4])
    b.update(pred[4:], target[4:])
    assert torch.equal(a.merge(b).matrix, full)
    s = acc.compute()
    ref = segmentation_scores(full)
    assert s.miou == ref.miou and s.foreground_mean_f1 == ref.foreground_mean_f1
    acc.reset()
    assert int(acc.matrix.sum()) == 0
    with pytest.raises(ValueError, match="num_classes"):
        a.merge(ConfusionMatrix(5))


def test_update_accepts_scores_and_argmaxes():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 5, 5, generator=g)
    target = torch.randint(0, 4, (2, 5, 5), generator=g)
    acc = ConfusionMatrix(4).update(logits, target)
    assert torch.equal(acc.matrix, confusion_matrix(logits.argmax(1), target, 4))


def test_foreground_mean_f1_matches_farl_style_reference():
    """Per-class F1 = 2|G∩P| / (|G| + |P|) over the whole split, mean over foreground classes present."""
    g = torch.Generator().manual_seed(4)
    c = 19
    target = torch.randint(0, c - 1, (6, 16, 16), generator=g)  # class 18 never in target ...
    pred = torch.randint(0, c - 1, (6, 16, 16), generator=g)  # ... nor predicted: excluded from the mean
    acc = ConfusionMatrix(c)
    for b in range(6):
        acc.update(pred[b : b + 1], target[b : b + 1])
    f1s = []
    for k in range(1, c):
        a = int((target == k).sum())
        bb = int((pred == k).sum())
        inter = int(((target == k) & (pred == k)).sum())
        if a + bb:
            f1s.append(2 * inter / (a + bb))
    assert len(f1s) == 17
    assert acc.compute().foreground_mean_f1 == pytest.approx(sum(f1s) / len(f1s), rel=1e-12)


def test_all_nan_when_empty():
    s = ConfusionMatrix(3).compute()
    assert math.isnan(s.miou) and math.isnan(s.pixel_accuracy) and torch.isnan(s.iou).all()


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (torch.tensor([0, 3]), torch.tensor([0, 1]), "pred contains label 3"),
        (torch.tensor([0, 1]), torch.tensor([0, -2]), "target contains label -2"),
        (torch.tensor([0, 1]), torch.tensor([0, 1, 1]), "same shape"),
        (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), "integer"),
    ],
)
def test_bad_input_raises(pred, target, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(pred, target, 3)


def test_bad_confusion_shape_raises():
    with pytest.raises(ValueError, match=r"\[\.\.\., C, C\]"):
        iou_from_confusion(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_dice_iou_identity(pairs):
    pred = torch.tensor([p for p, _ in pairs])
    target = torch.tensor([t for _, t in pairs])
    cm = confusion_matrix(pred, target, 5)
    iou, dice = iou_from_confusion(cm), dice_from_confusion(cm)
    assert torch.equal(torch.isnan(iou), torch.isnan(dice))
    ok = ~torch.isnan(iou)
    torch.testing.assert_close(dice[ok], 2 * iou[ok] / (1 + iou[ok]))
    assert int(cm.sum()) == len(pairs)
