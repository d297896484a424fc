"""Confusion-matrix segmentation metrics: IoU, Dice/F1, mIoU, mean Dice, pixel accuracy, foreground F1.

Every split-level number comes from ONE confusion matrix summed over every pixel of the split (never a mean
of per-image or per-batch scores). They differ in how they average over classes:

=====================  ===============================================================================
score                  definition (``TP_c, FP_c, FN_c`` from the split's confusion matrix)
=====================  ===============================================================================
``iou[c]``             ``TP_c / (TP_c + FP_c + FN_c)``
``dice[c]``            ``2 TP_c / (2 TP_c + FP_c + FN_c)`` (= per-class F1)
``miou``               macro: NaN-mean of ``iou[c]`` over every class that occurs, background included
``mean_dice``          macro: NaN-mean of ``dice[c]`` over the same classes as ``miou``
``foreground_mean_f1`` macro: NaN-mean of ``dice[c]`` over the foreground classes ``c >= 1`` (FaRL's
                       "mean F1" over the 18 CelebAMask-HQ parts)
``foreground_f1``      micro: ``2 TP / (2 TP + FP + FN)`` with ``TP, FP, FN`` summed over the foreground
                       classes ``c >= 1``: one F1 in which every foreground pixel counts once, so large
                       parts (skin, hair) weigh by their area (= sklearn's ``f1_score(average="micro",
                       labels=range(1, C))``)
``pixel_accuracy``     ``trace(cm) / sum(cm)``
=====================  ===============================================================================

Why both a macro Dice and a micro foreground F1: per class, ``dice = 2 iou / (1 + iou)``, a concave
function, so ``mean_dice <= 2 miou / (1 + miou)``; a class-mean Dice of 0.94 would need an mIoU of at least
0.89. A parser reported at Dice about 0.94 with mIoU about 0.74 (arXiv 2502.04391's Table I) therefore
cannot be quoting a class-mean Dice from the same confusion matrix: its Dice must be pooled over pixels,
which is what ``foreground_f1`` is (dominated by the large, easy parts, hence near 0.9 and above), while
``mean_dice`` stays tied to ``miou`` (about 0.84 at mIoU 0.74).

Conventions
-----------
* Confusion matrices are indexed ``cm[target, pred]`` (rows = ground truth, columns = prediction) and
  hold int64 pixel counts.
* Class 0 is the background.
* A class absent from both target and prediction has IoU / Dice ``NaN``; means are NaN-means, i.e.
  taken over the classes that occur.
* Pixels whose *target* equals ``ignore_index`` are dropped (whatever the prediction says).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fp_metrics._checks import check_int_labels, check_num_classes, check_same_shape

__all__ = [
    "ConfusionMatrix",
    "SegmentationScores",
    "confusion_matrix",
    "dice_from_confusion",
    "foreground_micro_f1",
    "iou_from_confusion",
    "per_image_confusion",
    "segmentation_scores",
]


def _valid_mask_and_check(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> torch.Tensor:
    """Return the boolean mask of counted pixels after validating labels (same shape as inputs)."""
    check_int_labels(pred, "pred")
    check_int_labels(target, "target")
    check_same_shape(pred, target, "pred", "target")
    check_num_classes(num_classes)
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    if valid.any():
        t, p = target[valid], pred[valid]
        t_min, t_max = int(t.min()), int(t.max())
        if t_min < 0 or t_max >= num_classes:
            bad = t_min if t_min < 0 else t_max
            raise ValueError(
                f"target contains label {bad}; expected labels in [0, {num_classes})"
                + (f" or ignore_index={ignore_index}" if ignore_index is not None else "")
            )
        p_min, p_max = int(p.min()), int(p.max())
        if p_min < 0 or p_max >= num_classes:
            bad = p_min if p_min < 0 else p_max
            raise ValueError(f"pred contains label {bad}; expected labels in [0, {num_classes})")
    return valid


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Confusion matrix of integer label maps of any (equal) shape ``[...]``.

    Returns an int64 tensor ``[C, C]`` with ``cm[t, p]`` = number of pixels of target class ``t``
    predicted as ``p``; pixels whose target equals ``ignore_index`` are skipped.
    """
    valid = _valid_mask_and_check(pred, target, num_classes, ignore_index)
    index = target[valid].long() * num_classes + pred[valid].long()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_image_confusion(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """One confusion matrix per image: ``pred, target [B, H, W]`` (any trailing dims) -> int64 ``[B, C, C]``.

    Computed with a single ``bincount`` (no Python loop over images).
    """
    if pred.dim() < 1:
        raise ValueError(f"pred must have a leading batch dimension [B, H, W], got shape {tuple(pred.shape)}")
    valid = _valid_mask_and_check(pred, target, num_classes, ignore_index)
    batch = pred.shape[0]
    cc = num_classes * num_classes
    image_id = torch.arange(batch, device=pred.device).view(-1, *([1] * (pred.dim() - 1))).expand_as(pred)
    index = image_id[valid] * cc + target[valid].long() * num_classes + pred[valid].long()
    counts = torch.bincount(index, minlength=batch * cc)
    return counts.reshape(batch, num_classes, num_classes)


def _check_cm(cm: torch.Tensor) -> None:
    if not isinstance(cm, torch.Tensor) or cm.dim() < 2 or cm.shape[-1] != cm.shape[-2]:
        shape = tuple(cm.shape) if isinstance(cm, torch.Tensor) else type(cm).__name__
        raise ValueError(f"confusion matrix must be a tensor of shape [..., C, C], got {shape}")


def _tp_fp_fn(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    _check_cm(cm)
    cm = cm.to(torch.float64)
    tp = torch.diagonal(cm, dim1=-2, dim2=-1)
    fp = cm.sum(dim=-2) - tp  # column sums minus diagonal: predicted as c but not c
    fn = cm.sum(dim=-1) - tp  # row sums minus diagonal: truly c but missed
    return tp, fp, fn


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU ``TP / (TP + FP + FN)`` from ``cm [..., C, C]`` -> float64 ``[..., C]``.

    NaN for classes absent from both target and prediction.
    """
    tp, fp, fn = _tp_fp_fn(cm)
    denom = tp + fp + fn
    return torch.where(denom > 0, tp / denom.clamp_min(1), torch.full_like(tp, float("nan")))


def dice_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class Dice / F1 ``2 TP / (2 TP + FP + FN)`` from ``cm [..., C, C]`` -> float64 ``[..., C]``.

    NaN for classes absent from both target and prediction.
    """
    tp, fp, fn = _tp_fp_fn(cm)
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.full_like(tp, float("nan")))


def foreground_micro_f1(cm: torch.Tensor) -> torch.Tensor:
    """Micro-averaged F1 over the foreground classes ``1..C-1`` of ``cm [..., C, C]`` -> float64 ``[...]``.

    ``2 TP / (2 TP + FP + FN)`` with ``TP = sum_c TP_c``, ``FP = sum_c FP_c``, ``FN = sum_c FN_c`` over
    ``c >= 1``. A background pixel predicted as a part is a false positive, a part pixel predicted as
    background a false negative, and a part pixel predicted as another part both (one FP of the predicted
    class, one FN of the true one). NaN when no pixel is foreground in target or prediction.
    """
    tp, fp, fn = _tp_fp_fn(cm)
    tp, fp, fn = tp[..., 1:].sum(-1), fp[..., 1:].sum(-1), fn[..., 1:].sum(-1)
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.full_like(tp, float("nan")))


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one confusion matrix (all float64; class 0 = background).

    Attributes:
        iou: per-class IoU ``[C]`` (NaN for absent classes).
        dice: per-class Dice = F1 ``[C]`` (NaN for absent classes).
        miou: NaN-mean of ``iou`` over all classes, background included.
        miou_no_background: NaN-mean of ``iou[1:]``.
        mean_dice: NaN-mean of ``dice`` over all classes, background included (the classes of ``miou``):
            the report's "Dice".
        pixel_accuracy: ``trace(cm) / sum(cm)`` over non-ignored pixels.
        foreground_mean_f1: NaN-mean of ``dice[1:]``: per-class F1 from the confusion matrix summed over
            the whole split, averaged over the foreground classes that occur (the FaRL / SegFace
            "mean F1", e.g. over the 18 CelebAMask-HQ face parts).
        foreground_f1: :func:`foreground_micro_f1`: one F1 pooled over every foreground pixel (micro
            average over the classes ``1..C-1``): the report's "F1 (fg)".
        confusion: the int64 confusion matrix ``[C, C]`` the scores come from.
    """

    iou: torch.Tensor
    dice: torch.Tensor
    miou: float
    miou_no_background: float
    mean_dice: float
    pixel_accuracy: float
    foreground_mean_f1: float
    foreground_f1: float
    confusion: torch.Tensor

    def as_dict(self) -> dict[str, float | list[float]]:
        """Plain-Python view (lists and floats) for logging."""
        return {
            "iou": self.iou.tolist(),
            "dice": self.dice.tolist(),
            "miou": self.miou,
            "miou_no_background": self.miou_no_background,
            "mean_dice": self.mean_dice,
            "pixel_accuracy": self.pixel_accuracy,
            "foreground_mean_f1": self.foreground_mean_f1,
            "foreground_f1": self.foreground_f1,
        }


def _nanmean(x: torch.Tensor) -> float:
    return float(torch.nanmean(x)) if x.numel() else float("nan")


def segmentation_scores(cm: torch.Tensor) -> SegmentationScores:
    """All split-level scores from one confusion matrix ``cm [C, C]`` (see :class:`SegmentationScores`)."""
    _check_cm(cm)
    if cm.dim() != 2:
        raise ValueError(
            f"segmentation_scores expects a single confusion matrix [C, C], got {tuple(cm.shape)}"
        )
    iou = iou_from_confusion(cm)
    dice = dice_from_confusion(cm)
    total = int(cm.sum())
    pixel_accuracy = float(torch.diagonal(cm).sum()) / total if total > 0 else float("nan")
    return SegmentationScores(
        iou=iou,
        dice=dice,
        miou=_nanmean(iou),
        miou_no_background=_nanmean(iou[1:]),
        mean_dice=_nanmean(dice),
        pixel_accuracy=pixel_accuracy,
        foreground_mean_f1=_nanmean(dice[1:]),
        foreground_f1=float(foreground_micro_f1(cm)),
        confusion=cm.detach().clone(),
    )


class ConfusionMatrix:
    """Accumulates a ``[C, C]`` confusion matrix batch by batch (memory independent of the split size).

    Example::

        metric = ConfusionMatrix(19, ignore_index=255)
        for logits, labels in loader:            # logits [B, C, H, W] or labels [B, H, W]
            metric.update(logits.argmax(1), labels)
        scores = metric.compute()                # SegmentationScores
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> ConfusionMatrix:
        """Add a batch: ``pred`` labels ``[B, H, W]`` (or scores ``[B, C, H, W]``, argmax-ed), ``target``
        ``[B, H, W]``; returns ``self``."""
        if (
            isinstance(pred, torch.Tensor)
            and pred.dtype.is_floating_point
            and pred.dim() == target.dim() + 1
            and pred.shape[1] == self.num_classes
        ):
            pred = pred.argmax(dim=1)
        cm = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        if self.matrix.device != cm.device:
            self.matrix = self.matrix.to(cm.device)
        self.matrix += cm
        return self

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another accumulator's counts (e.g. from another process) into this one; returns ``self``."""
        if not isinstance(other, ConfusionMatrix):
            raise ValueError(f"can only merge a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(
                f"cannot merge ConfusionMatrix(num_classes={other.num_classes}, "
                f"ignore_index={other.ignore_index})"
                f" into ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index})"
            )
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def reset(self) -> None:
        """Zero the accumulated counts."""
        self.matrix = torch.zeros_like(self.matrix)

    def compute(self) -> SegmentationScores:
        """Scores of everything accumulated so far."""
        return segmentation_scores(self.matrix)
