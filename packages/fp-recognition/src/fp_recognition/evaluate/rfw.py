"""RFW fairness evaluation: verification accuracy per skin-tone group and the disparity across groups.

Each group's 6000 pairs are scored with the 10-fold LFW protocol of its own
(``fp_metrics.group_verification_accuracy``: threshold chosen within the group), after flip-test embedding.
Across the groups:

* ``mean``: the unweighted mean of the group accuracies;
* ``std``: their standard deviation with ``ddof = 0`` (the population std over the four groups);
* ``gap``: ``max - min``;
* ``disparate_impact``: ``min / max`` (``fp_metrics.disparate_impact_ratio`` without group indices), 1 is
  parity. The QDGS paper defines disparate impact as the minority group's accuracy over the majority
  group's and publishes no code; as which group is "minority" is not stated per metric, the worst-over-best
  ratio is used, which equals their definition whenever the minority group is the worst and the majority
  group the best (as it is for RFW models trained on Caucasian-dominated data), and is a lower bound on it
  otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fp_metrics.classification import disparate_impact_ratio
from fp_metrics.verification import VerificationResult, group_verification_accuracy, pair_distances
from fp_recognition.data.rfw import RFWPairs
from fp_recognition.evaluate.embed import embed_images
from fp_recognition.evaluate.verification import evaluate_pairs

__all__ = ["FairnessSummary", "RFWResult", "evaluate_rfw", "fairness_summary"]


@dataclass(frozen=True)
class FairnessSummary:
    """Disparity of per-group accuracies (see the module doc for each definition)."""

    accuracies: dict[str, float]
    mean: float
    std: float
    gap: float
    disparate_impact: float
    worst_group: str
    best_group: str


def fairness_summary(group_accuracies: Mapping[str, float]) -> FairnessSummary:
    """``{group: accuracy}`` -> mean, std (ddof 0), max - min gap, min / max disparate impact, extremes."""
    if not group_accuracies:
        raise ValueError("no group accuracy given")
    names = list(group_accuracies)
    values = np.asarray([group_accuracies[n] for n in names], dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"group accuracies must be finite, got {dict(group_accuracies)}")
    return FairnessSummary(
        accuracies={n: float(v) for n, v in zip(names, values)},
        mean=float(values.mean()),
        std=float(values.std()),
        gap=float(values.max() - values.min()),
        disparate_impact=disparate_impact_ratio(values),
        worst_group=names[int(values.argmin())],
        best_group=names[int(values.argmax())],
    )


@dataclass(frozen=True)
class RFWResult:
    """``summary`` across groups; ``per_group`` each group's full verification result (TAR, AUC, folds)."""

    summary: FairnessSummary
    per_group: dict[str, VerificationResult]


def evaluate_rfw(
    model: nn.Module,
    groups: Mapping[str, RFWPairs],
    *,
    image_size: int | None = 112,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    flip: bool = True,
    far: float = 1e-3,
    n_folds: int = 10,
    bgr: bool = False,
) -> RFWResult:
    """Embed each group's distinct images (resized to ``image_size``), score its pairs, summarise."""
    if not groups:
        raise ValueError("no RFW group given")
    distances: list[np.ndarray] = []
    same: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    per_group: dict[str, VerificationResult] = {}
    for g, (name, pairs) in enumerate(groups.items()):
        images = pairs.tensors(image_size, normalise=True, bgr=bgr)
        emb = embed_images(model, images, batch_size=batch_size, device=device, flip=flip)
        fused = emb.fused
        distances.append(pair_distances(fused[pairs.first], fused[pairs.second]))
        same.append(pairs.issame)
        ids.append(np.full(pairs.num_pairs, g, dtype=np.int64))
        per_group[name] = evaluate_pairs(
            emb, pairs.first, pairs.second, pairs.issame, n_folds=n_folds, far=far
        )
    accuracy = group_verification_accuracy(
        np.concatenate(distances), np.concatenate(same), np.concatenate(ids), len(groups), n_folds
    )
    if np.isnan(accuracy).any():
        short = [n for n, a in zip(groups, accuracy) if np.isnan(a)]
        raise ValueError(f"groups {short} have fewer than n_folds={n_folds} pairs")
    summary = fairness_summary({name: float(a) for name, a in zip(groups, accuracy)})
    return RFWResult(summary, per_group)
