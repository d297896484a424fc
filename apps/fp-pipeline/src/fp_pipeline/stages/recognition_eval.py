"""``recognition-eval@<source>-<loss>``, and one recogniser's evaluation: ``.bin`` accuracies and their mean,
RFW per group with fairness, ROC data.

One stage per source and loss evaluates every trial of ``recognition.trials`` (``--trial`` picks one), each
trial its own MLflow run ``recognition-eval@<source>-<loss>-<trial>``; the test sets are read once per stage.
Writes ``runs/<source>/<loss>/eval/<trial>/{metrics,evaluation,roc}.json`` and ``runs/<source>/<loss>/
metrics.json`` (``{"trial-<k>": metrics}`` of every trial evaluated so far; DVC metrics).

Every set is embedded once (flip test) and scored by ``fp_recognition.evaluate.evaluate_pairs`` (the
10-fold protocol with thresholds chosen on the training folds); the RFW groups are scored each with its own
thresholds and summarised by ``fairness_summary`` (mean, std ddof 0, gap, disparate impact min/max), which
is what ``evaluate_rfw`` computes. ROC curves are kept at no more than ``roc_points`` points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.recognition_common import (
    check_source,
    eval_dir,
    metrics_file,
    run_name,
    stage_trials,
    torch_threads,
    train_dir,
    trials,
)
from fp_pipeline.tracking import stage_run

__all__ = ["eval_stage", "evaluate_recogniser", "thin_roc"]


def eval_stage(
    *, params_path: Path, source: str, loss: str, trial: int | None = None, progress: bool = True
) -> Path:
    """Evaluate ``<source>-<loss>`` for ``trial`` (None: every trial) on the ``.bin`` sets and RFW; returns
    ``runs/<source>/<loss>/metrics.json``."""
    from fp_core.atomic import write_json
    from fp_recognition.data import load_bins, load_rfw

    params = load_params(params_path)
    torch_threads(params)
    check_source(params, source)
    selected = stage_trials(params, trial)
    for t in selected:  # every trial trained before the test sets are read
        if not (train_dir(source, loss, t) / "train.json").is_file():
            raise ParamsError(
                f"{train_dir(source, loss, t) / 'train.json'} not found: run "
                f"`fp recognition train --source {source} --loss {loss} --trial {t}` first"
            )
    data = section(params, "recognition.data")
    bins = load_bins(Path(data["bins"]), data["bin_sets"])
    rfw = load_rfw(Path(data["rfw"]), tuple(data["rfw_groups"]))
    for t in selected:
        _eval_trial(params, source, loss, t, bins, rfw)
    gathered = {}
    for t in trials(params):  # every trial evaluated so far (a --trial run keeps the others)
        file = eval_dir(source, loss, t) / "metrics.json"
        if file.is_file():
            gathered[f"trial-{t}"] = json.loads(file.read_text(encoding="utf-8"))
    write_json(metrics_file(source, loss), gathered)
    return metrics_file(source, loss)


def _eval_trial(
    params: dict[str, Any],
    source: str,
    loss: str,
    trial: int,
    bins: Mapping[str, Any],
    rfw: Mapping[str, Any],
) -> Path:
    from fp_core.atomic import write_json
    from fp_recognition.train import load_backbone

    settings = section(params, "recognition.eval")
    model = load_backbone(train_dir(source, loss, trial) / "model")
    train_info = json.loads((train_dir(source, loss, trial) / "train.json").read_text(encoding="utf-8"))
    out = eval_dir(source, loss, trial)
    name = f"recognition-eval@{run_name(source, loss, trial)}"
    with stage_run(
        name,
        params={
            "source": source,
            "loss": loss,
            "trial": trial,
            "data": section(params, "recognition.data"),
            "eval": settings,
        },
        tags={"fp.loss": loss, "fp.trial": trial, "fp.pretrain": source},
    ) as run:
        metrics, evaluation, roc = evaluate_recogniser(
            model,
            bins,
            rfw,
            image_size=int(model.input_size),
            batch_size=int(settings["batch_size"]),
            flip=bool(settings["flip"]),
            far=float(settings["far"]),
        )
        run(metrics, 0)
        write_json(out / "evaluation.json", {**train_info, **evaluation})
        write_json(out / "roc.json", roc)
        write_json(out / "metrics.json", metrics)
        run.log_artifact(out / "metrics.json")
    typer.echo(
        f"{name}: .bin mean {metrics.get('bins/mean', math.nan):.4f}, RFW {metrics.get('rfw/mean', math.nan):.4f}"
    )
    return out / "metrics.json"


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
