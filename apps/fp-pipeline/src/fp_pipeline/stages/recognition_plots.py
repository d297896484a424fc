"""Figures of the recognition report: per-group RFW accuracy bars and ROC curves."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fp_pipeline.stages.recognition_report import mean_se

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_group_accuracy", "plot_roc"]


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), constrained_layout=nrows > 1)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    return figure, axes


def plot_group_accuracy(rows: Mapping[str, Sequence[Mapping[str, float]]], groups: Sequence[str]) -> Figure:
    """Bars of RFW accuracy per group (x) for each row (colour), mean ± s.e. over trials."""
    figure, (ax,) = _figure(1.6 + 1.3 * len(groups), 3.4)
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(groups))
    for r, (row, trials) in enumerate(rows.items()):
        stats = [mean_se([m.get(f"rfw/{g}", math.nan) for m in trials]) for g in groups]
        means = [100 * s.mean for s in stats]
        errors = [100 * s.se if math.isfinite(s.se) else 0.0 for s in stats]
        ax.bar(x + (r - (len(rows) - 1) / 2) * width, means, width, yerr=errors, capsize=3, label=row)
    ax.set_xticks(x, list(groups))
    ax.set_ylabel("verification accuracy (%)")
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_ylim(40, 100)
    ax.set_title("RFW-style accuracy per group (mean ± s.e. over trials)")
    ax.legend(fontsize=8)
    return figure


def plot_roc(curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]) -> Figure:
    """One panel per row (at most 3 across): ``curves[row][name] = {"fpr": [...], "tpr": [...]}`` (sets and
    groups)."""
    ncols = min(max(len(curves), 1), 3)
    nrows = max(math.ceil(len(curves) / ncols), 1)
    figure, axes = _figure(4.0 * ncols, 3.6 * nrows, ncols=ncols, nrows=nrows)
    for ax in axes[len(curves) :]:
        ax.axis("off")
    for ax, (row, named) in zip(axes, curves.items()):
        for name, curve in named.items():
            ax.plot(curve["fpr"], curve["tpr"], lw=1.2, label=name)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_xlabel("false accept rate")
        ax.set_ylabel("true accept rate")
        ax.set_title(f"ROC, {row} (first trial)")
        ax.legend(fontsize=7)
    return figure
