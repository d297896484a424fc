"""One recogniser's evaluation: ``.bin`` accuracies and their mean, RFW per group with fairness, ROC data.

Every set is embedded once (flip test) and scored by ``fp_recognition.evaluate.evaluate_pairs`` (the
10-fold protocol with thresholds chosen on the training folds); the RFW groups are scored each with its own
thresholds and summarised by ``fairness_summary`` (mean, std ddof 0, gap, disparate impact min/max), which
is what ``evaluate_rfw`` computes. ROC curves are kept at no more than ``roc_points`` points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["evaluate_recogniser", "thin_roc"]


def thin_roc(fpr: np.ndarray, tpr: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` ROC points (first and last kept), as lists for JSON."""
    keep = np.unique(np.linspace(0, fpr.size - 1, min(points, fpr.size)).round().astype(int))
    return {"fpr": [float(v) for v in fpr[keep]], "tpr": [float(v) for v in tpr[keep]]}


def evaluate_recogniser(
    model: Any,
    bins: Mapping[str, Any],
    rfw: Mapping[str, Any],
    *,
    image_size: int,
    batch_size: int = 256,
    flip: bool = True,
    far: float = 1e-3,
    roc_points: int = 200,
) -> tuple[dict[str, float], dict[str, Any], dict[str, dict[str, list[float]]]]:
    """``(metrics, evaluation, roc)`` of ``model`` on the ``.bin`` sets and RFW groups.

    ``metrics`` are flat (``bins/<set>``, ``bins/mean``, ``rfw/<group>``, ``rfw/mean``, ``rfw/std``,
    ``rfw/gap``, ``rfw/disparate_impact``, ``auc/...``); ``evaluation`` holds fold accuracies, TAR, XNorm;
    ``roc[name] = {"fpr", "tpr"}`` for each set and group.
    """
    from fp_metrics.verification import pair_distances, roc_curve
    from fp_recognition.evaluate import embed_images, evaluate_pairs, fairness_summary

    metrics: dict[str, float] = {}
    evaluation: dict[str, Any] = {"bins": {}, "rfw": {"groups": {}}}
    roc: dict[str, dict[str, list[float]]] = {}

    def score(name: str, images: Any, first: np.ndarray, second: np.ndarray, same: np.ndarray) -> Any:
        emb = embed_images(model, images, batch_size=batch_size, flip=flip)
        result = evaluate_pairs(emb, first, second, same, far=far)
        fused = emb.fused
        fpr, tpr, _ = roc_curve(pair_distances(fused[first], fused[second]), same)
        roc[name] = thin_roc(fpr, tpr, roc_points)
        return result, emb.xnorm

    for name, bin_set in bins.items():
        first = np.arange(bin_set.num_pairs, dtype=np.int64) * 2
        result, xnorm = score(name, bin_set.tensors(image_size), first, first + 1, bin_set.issame)
        metrics[f"bins/{name}"] = float(result.accuracy)
        metrics[f"auc/{name}"] = float(result.auc)
        evaluation["bins"][name] = _result_dict(result, xnorm, bin_set.num_pairs)
    if bins:
        metrics["bins/mean"] = float(np.mean([metrics[f"bins/{n}"] for n in bins]))

    accuracies: dict[str, float] = {}
    for group, pairs in rfw.items():
        result, xnorm = score(
            f"RFW {group}", pairs.tensors(image_size), pairs.first, pairs.second, pairs.issame
        )
        accuracies[group] = float(result.accuracy)
        metrics[f"rfw/{group}"] = float(result.accuracy)
        metrics[f"auc/rfw_{group}"] = float(result.auc)
        evaluation["rfw"]["groups"][group] = _result_dict(result, xnorm, pairs.num_pairs)
    if rfw:
        summary = fairness_summary(accuracies)
        metrics.update(
            {
                "rfw/mean": summary.mean,
                "rfw/std": summary.std,
                "rfw/gap": summary.gap,
                "rfw/disparate_impact": summary.disparate_impact,
            }
        )
        evaluation["rfw"].update(
            mean=summary.mean,
            std=summary.std,
            gap=summary.gap,
            disparate_impact=summary.disparate_impact,
            worst_group=summary.worst_group,
            best_group=summary.best_group,
        )
    return metrics, evaluation, roc


def _result_dict(result: Any, xnorm: float, num_pairs: int) -> dict[str, Any]:
    return {
        "accuracy": float(result.accuracy),
        "accuracy_std": float(result.accuracy_std),
        "fold_accuracies": [float(v) for v in result.fold_accuracies],
        "auc": float(result.auc),
        "tar": float(result.tar),
        "far": float(result.far),
        "xnorm": float(xnorm),
        "num_pairs": int(num_pairs),
    }
