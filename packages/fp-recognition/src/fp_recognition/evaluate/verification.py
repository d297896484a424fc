"""Verification on insightface's ``.bin`` sets with fp-metrics' 10-fold LFW protocol, and their average.

Per set: embed the ``2P`` images with the flip test, pair ``p`` = images ``(2p, 2p + 1)``, then
``fp_metrics.verify_pairs`` (flip-fused embeddings L2-normalised, squared Euclidean distance, 10 consecutive
folds, threshold grid ``0 .. 3.99`` chosen on the 9 training folds). TAR at FAR (1e-3) is reported only where
the pairs can resolve that FAR, i.e. with at least ``1 / far`` impostor pairs (LFW's 3000 give 3 false
accepts at 1e-3); otherwise it is NaN. ``fp_metrics.tar_at_far`` takes the threshold from the sorted
impostor distances directly. insightface's ``calculate_val`` instead interpolates the threshold with
``scipy.interpolate.interp1d(far_train, thresholds, kind='slinear')``, which on SciPy > 1.8 raises
``ValueError: Expect x to not have duplicates`` as soon as two thresholds share a FAR (insightface issues
#2152, #2290).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fp_metrics.verification import VerificationResult, verify_pairs
from fp_recognition.data.verification_bin import VerificationBin
from fp_recognition.evaluate.embed import ImageEmbeddings, embed_images

__all__ = [
    "BinResult",
    "VerificationReport",
    "evaluate_bin",
    "evaluate_bins",
    "evaluate_pairs",
    "tar_resolvable",
]


def tar_resolvable(num_impostors: int, far: float) -> bool:
    """Whether ``num_impostors`` impostor pairs can measure FAR ``far`` (``num_impostors * far >= 1``)."""
    return num_impostors * far >= 1 - 1e-9


def evaluate_pairs(
    embeddings: ImageEmbeddings,
    first: np.ndarray,
    second: np.ndarray,
    issame: np.ndarray,
    *,
    n_folds: int = 10,
    far: float = 1e-3,
) -> VerificationResult:
    """Pairs ``(first[p], second[p])`` (indices ``[P]`` into ``embeddings``) through ``verify_pairs``.

    The result's ``tar`` is NaN where :func:`tar_resolvable` says the pairs cannot measure ``far``.
    """
    e, f = embeddings.plain, embeddings.flipped
    result = verify_pairs(
        e[first],
        e[second],
        issame,
        emb1_flip=None if f is None else f[first],
        emb2_flip=None if f is None else f[second],
        n_folds=n_folds,
        far=far,
    )
    if not tar_resolvable(int((~np.asarray(issame, dtype=bool)).sum()), far):
        result = VerificationResult(
            accuracy=result.accuracy,
            accuracy_std=result.accuracy_std,
            fold_accuracies=result.fold_accuracies,
            fold_thresholds=result.fold_thresholds,
            auc=result.auc,
            tar=math.nan,
            far=far,
            tar_threshold=math.nan,
        )
    return result


@dataclass(frozen=True)
class BinResult:
    """One ``.bin`` set: ``accuracy`` (mean of the fold accuracies) ± ``accuracy_std``, ``tar`` at ``far``
    (NaN if unresolvable), ``auc``, insightface's ``xnorm``, ``num_pairs``; ``details`` the full result."""

    name: str
    accuracy: float
    accuracy_std: float
    tar: float
    far: float
    auc: float
    xnorm: float
    num_pairs: int
    details: VerificationResult


@dataclass(frozen=True)
class VerificationReport:
    """All sets: ``results`` by name and ``mean_accuracy``, the unweighted mean over the sets."""

    results: dict[str, BinResult]
    mean_accuracy: float


def evaluate_bin(
    model: nn.Module,
    bin_set: VerificationBin,
    *,
    image_size: int | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    flip: bool = True,
    far: float = 1e-3,
    n_folds: int = 10,
    bgr: bool = False,
) -> BinResult:
    """Evaluate ``model`` on one set; images resized to ``image_size`` if given, normalised to [-1, 1]."""
    images = bin_set.tensors(image_size, normalise=True, bgr=bgr)
    emb = embed_images(model, images, batch_size=batch_size, device=device, flip=flip)
    idx = np.arange(bin_set.num_pairs, dtype=np.int64) * 2
    res = evaluate_pairs(emb, idx, idx + 1, bin_set.issame, n_folds=n_folds, far=far)
    return BinResult(
        name=bin_set.name,
        accuracy=res.accuracy,
        accuracy_std=res.accuracy_std,
        tar=res.tar,
        far=far,
        auc=res.auc,
        xnorm=emb.xnorm,
        num_pairs=bin_set.num_pairs,
        details=res,
    )


def evaluate_bins(
    model: nn.Module,
    sets: Mapping[str, VerificationBin],
    **kwargs: object,
) -> VerificationReport:
    """:func:`evaluate_bin` on each set (keyword arguments passed on) and the mean accuracy."""
    if not sets:
        raise ValueError("no verification set given")
    results = {name: evaluate_bin(model, vb, **kwargs) for name, vb in sets.items()}  # type: ignore[arg-type]
    return VerificationReport(results, float(np.mean([r.accuracy for r in results.values()])))
