"""Face-verification metrics on embedding pairs: the LFW 10-fold protocol, ROC / AUC, TAR at FAR, groups.

Protocol (as in the LFW / InsightFace evaluation): embeddings are L2-normalised (after optional flip-test
fusion, i.e. the sum of the embeddings of an image and its mirror), the distance of a pair is the squared
Euclidean distance (in ``[0, 4]``), a pair is predicted "same" when ``distance < threshold``. The pairs
are split into 10 consecutive folds (no shuffle; the first ``P % 10`` folds get one extra pair), the
threshold maximising accuracy on the 9 training folds is chosen from ``0, 0.01, ..., 3.99`` (first
maximum on ties) and scored on the held-out fold. Everything is vectorised with cumulative histograms: no
Python loop over thresholds or folds. All arithmetic is float64 NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "VerificationResult",
    "flip_fuse",
    "group_verification_accuracy",
    "kfold_accuracy",
    "l2_normalize",
    "lfw_thresholds",
    "pair_distances",
    "roc_auc",
    "roc_curve",
    "tar_at_far",
    "verify_pairs",
]

ArrayLike = np.ndarray | torch.Tensor


def _np64(x: ArrayLike, name: str, ndim: int) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != ndim:
        shape = "[N, D]" if ndim == 2 else "[P]"
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or inf")
    return out


def _labels(issame: ArrayLike, n: int) -> np.ndarray:
    arr = issame.detach().cpu().numpy() if isinstance(issame, torch.Tensor) else np.asarray(issame)
    if arr.shape != (n,):
        raise ValueError(f"issame must be a boolean array [P] with P={n}, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("issame must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr


def lfw_thresholds() -> np.ndarray:
    """The LFW threshold grid ``0, 0.01, ..., 3.99`` (``np.arange(0, 4, 0.01)``), float64 ``[400]``."""
    return np.arange(0, 4, 0.01)


def l2_normalize(x: ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation ``[N, D]`` -> float64 ``[N, D]``."""
    a = _np64(x, "embeddings", 2)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), eps)


def flip_fuse(embeddings: ArrayLike, flipped_embeddings: ArrayLike) -> np.ndarray:
    """Flip-test fusion: sum of the embeddings of images and of their mirrors, ``[N, D]`` x2 -> ``[N, D]``."""
    a, b = _np64(embeddings, "embeddings", 2), _np64(flipped_embeddings, "flipped_embeddings", 2)
    if a.shape != b.shape:
        raise ValueError(f"embeddings and flipped_embeddings differ in shape: {a.shape} vs {b.shape}")
    return a + b


def pair_distances(emb1: ArrayLike, emb2: ArrayLike) -> np.ndarray:
    """Squared Euclidean distance of L2-normalised pairs: ``[P, D]`` x2 -> float64 ``[P]`` in ``[0, 4]``."""
    a, b = l2_normalize(emb1), l2_normalize(emb2)
    if a.shape != b.shape:
        raise ValueError(f"emb1 and emb2 must have the same shape [P, D], got {a.shape} and {b.shape}")
    return np.sum((a - b) ** 2, axis=1)


def _fold_ids(n: int, n_folds: int) -> np.ndarray:
    if not 2 <= n_folds <= n:
        raise ValueError(f"n_folds={n_folds} must be in [2, number of pairs={n}]")
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    return np.repeat(np.arange(n_folds), sizes)


def _correct_counts(
    dist: np.ndarray, same: np.ndarray, fold: np.ndarray, n_folds: int, thresholds: np.ndarray
) -> np.ndarray:
    """Correct decisions per fold and threshold, ``[K, T]``, from cumulative histograms."""
    t = thresholds.size
    # number of thresholds <= d; the pair is predicted "same" exactly for thresholds with index >= it
    first_same = np.searchsorted(thresholds, dist, side="right")
    flat = (fold * 2 + same.astype(np.int64)) * (t + 1) + first_same
    hist = np.bincount(flat, minlength=n_folds * 2 * (t + 1)).reshape(n_folds, 2, t + 1)
    predicted_same = np.cumsum(hist, axis=2)[:, :, :t]  # [K, 2, T]
    negatives = hist[:, 0, :].sum(axis=1, keepdims=True)
    return predicted_same[:, 1, :] + (negatives - predicted_same[:, 0, :])


def kfold_accuracy(
    distances: ArrayLike,
    issame: ArrayLike,
    n_folds: int = 10,
    thresholds: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """LFW k-fold accuracy: ``distances, issame [P]`` -> ``(fold_accuracies [K], fold_thresholds [K])``."""
    dist = _np64(distances, "distances", 1)
    same = _labels(issame, dist.size)
    thr = lfw_thresholds() if thresholds is None else _np64(thresholds, "thresholds", 1)
    if thr.size == 0 or np.any(np.diff(thr) < 0):
        raise ValueError("thresholds must be a non-empty ascending array [T]")
    fold = _fold_ids(dist.size, n_folds)
    correct = _correct_counts(dist, same, fold, n_folds, thr)  # [K, T]
    fold_sizes = np.bincount(fold, minlength=n_folds)
    train_correct = correct.sum(axis=0, keepdims=True) - correct
    best = np.argmax(train_correct, axis=1)  # same argmax as of accuracies: train size is fixed per fold
    acc = correct[np.arange(n_folds), best] / fold_sizes
    return acc, thr[best]


def roc_curve(distances: ArrayLike, issame: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC of "same if distance <= t": ``[P]`` x2 -> ``(fpr, tpr, thresholds)``, each ``[M + 1]``.

    Thresholds are the distinct distances in ascending order, preceded by ``-inf`` (the (0, 0) point).
    """
    dist = _np64(distances, "distances", 1)
    same = _labels(issame, dist.size)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"need both genuine and impostor pairs, got {n_pos} and {n_neg}")
    order = np.argsort(dist, kind="mergesort")
    d, s = dist[order], same[order]
    last_of_tie = np.r_[np.diff(d) != 0, True]
    tps = np.cumsum(s)[last_of_tie]
    fps = np.cumsum(~s)[last_of_tie]
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    return fpr, tpr, np.r_[-np.inf, d[last_of_tie]]


def roc_auc(distances: ArrayLike, issame: ArrayLike) -> float:
    """Area under the ROC curve (trapezoid rule; ties count one half), a float in ``[0, 1]``."""
    fpr, tpr, _ = roc_curve(distances, issame)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tar_at_far(distances: ArrayLike, issame: ArrayLike, far: float = 1e-3) -> tuple[float, float]:
    """Best true-accept rate with false-accept rate <= ``far``: ``[P]`` x2 -> ``(tar, threshold)``.

    A pair is accepted when ``distance < threshold``; with ``k = floor(far * impostors)`` the threshold is
    the ``(k+1)``-th smallest impostor distance, so at most ``k`` impostors are accepted.
    """
    if not 0 < far <= 1:
        raise ValueError(f"far must be in (0, 1], got {far}")
    dist = _np64(distances, "distances", 1)
    same = _labels(issame, dist.size)
    neg = np.sort(dist[~same])
    pos = dist[same]
    if neg.size == 0 or pos.size == 0:
        raise ValueError(f"need both genuine and impostor pairs, got {pos.size} and {neg.size}")
    k = int(np.floor(far * neg.size + 1e-9))
    threshold = np.inf if k >= neg.size else float(neg[k])
    return float(np.mean(pos < threshold)), float(threshold)


@dataclass(frozen=True)
class VerificationResult:
    """Result of :func:`verify_pairs`.

    Attributes:
        accuracy: mean of the fold accuracies. accuracy_std: their std (ddof = 0, as in LFW reports).
        fold_accuracies ``[K]``, fold_thresholds ``[K]``: per held-out fold.
        auc: ROC AUC over all pairs. tar, far, tar_threshold: TAR at the requested FAR.
    """

    accuracy: float
    accuracy_std: float
    fold_accuracies: np.ndarray
    fold_thresholds: np.ndarray
    auc: float
    tar: float
    far: float
    tar_threshold: float


def verify_pairs(
    emb1: ArrayLike,
    emb2: ArrayLike,
    issame: ArrayLike,
    *,
    emb1_flip: ArrayLike | None = None,
    emb2_flip: ArrayLike | None = None,
    n_folds: int = 10,
    far: float = 1e-3,
) -> VerificationResult:
    """Full LFW-style evaluation of pairs ``emb1, emb2 [P, D]`` with labels ``issame [P]``.

    If the mirrored-image embeddings are given they are fused (summed) before normalisation.
    """
    if (emb1_flip is None) != (emb2_flip is None):
        raise ValueError("give both emb1_flip and emb2_flip for flip-test fusion, or neither")
    a, b = emb1, emb2
    if emb1_flip is not None and emb2_flip is not None:
        a, b = flip_fuse(emb1, emb1_flip), flip_fuse(emb2, emb2_flip)
    dist = pair_distances(a, b)
    acc, thr = kfold_accuracy(dist, issame, n_folds)
    tar, tar_thr = tar_at_far(dist, issame, far)
    return VerificationResult(
        accuracy=float(acc.mean()),
        accuracy_std=float(acc.std()),
        fold_accuracies=acc,
        fold_thresholds=thr,
        auc=roc_auc(dist, issame),
        tar=tar,
        far=far,
        tar_threshold=tar_thr,
    )


def group_verification_accuracy(
    distances: ArrayLike,
    issame: ArrayLike,
    group_ids: ArrayLike,
    num_groups: int | None = None,
    n_folds: int = 10,
) -> np.ndarray:
    """Per-group LFW accuracy (e.g. the four RFW groups), each group with its own k-fold protocol.

    ``distances, issame, group_ids [P]`` -> float64 ``[G]`` (NaN for a group with fewer than ``n_folds``
    pairs).
    """
    dist = _np64(distances, "distances", 1)
    same = _labels(issame, dist.size)
    ids = group_ids.detach().cpu().numpy() if isinstance(group_ids, torch.Tensor) else np.asarray(group_ids)
    if ids.shape != dist.shape or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"group_ids must be an integer array [P] with P={dist.size}, got {ids.dtype} {ids.shape}"
        )
    if num_groups is None:
        num_groups = int(ids.max()) + 1 if ids.size else 0
    if ids.size and ids.max() >= num_groups:
        raise ValueError(f"group_ids contains {int(ids.max())}; expected ids < num_groups={num_groups}")
    out = np.full(num_groups, np.nan)
    for g in range(num_groups):  # a handful of groups; the work inside is vectorised
        m = ids == g
        if m.sum() >= n_folds:
            out[g] = kfold_accuracy(dist[m], same[m], n_folds)[0].mean()
    return out
