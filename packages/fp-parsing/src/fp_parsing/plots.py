"""Figures of the parsing study and colour maps.

Every function returns a matplotlib ``Figure`` on the Agg canvas (never shown, no pyplot state to close):
save it with ``figure.savefig(path)``.

* :func:`plot_schedules`: alpha, beta, gamma over epochs, one panel per variant (the paper's Fig. 2).
* :func:`plot_robustness_curves`: mIoU against severity, one panel per perturbation, one line per variant
  (Fig. 5), with a ± s.e. band over seeds when the curve carries ``miou_se``.
* :func:`plot_group_bars`: per-group mIoU, grouped bars per variant (Fig. 4), with ± s.e. error bars over
  seeds when ``errors`` is given.
* :func:`plot_qualitative_grid`: inputs (e.g. perturbed) beside colourised label maps (Fig. 3).
* :func:`colorize`: label map ``[H, W]`` -> RGB ``uint8 [H, W, 3]`` with :data:`PALETTE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "colorize",
    "plot_group_bars",
    "plot_qualitative_grid",
    "plot_robustness_curves",
    "plot_schedules",
]

# One colour per CelebAMask-HQ class id (19 classes, background black), the widely used CelebAMask-HQ colours.
PALETTE = np.array(
    [
        [0, 0, 0],
        [204, 0, 0],
        [76, 153, 0],
        [204, 204, 0],
        [51, 51, 255],
        [204, 0, 204],
        [0, 255, 255],
        [255, 204, 204],
        [102, 51, 0],
        [255, 0, 0],
        [102, 204, 0],
        [255, 255, 0],
        [0, 0, 153],
        [0, 0, 204],
        [255, 51, 153],
        [0, 204, 204],
        [0, 51, 0],
        [255, 153, 51],
        [0, 204, 0],
    ],
    dtype=np.uint8,
)
PALETTE.setflags(write=False)

# (key, label, colour, line style, marker): beta and gamma often coincide, so they differ in style as well
_WEIGHT_STYLES = (
    ("alpha", "α (Dice)", "tab:blue", "-", "o"),
    ("beta", "β (robustness)", "tab:orange", "-", "s"),
    ("gamma", "γ (fairness)", "tab:green", "--", "^"),
)


def colorize(label_map: torch.Tensor | np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Class ids ``[H, W]`` -> RGB ``uint8 [H, W, 3]`` (``palette [K, 3]`` uint8, default :data:`PALETTE`)."""
    colours = PALETTE if palette is None else np.asarray(palette)
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise ValueError(f"palette must be [K, 3] RGB, got shape {colours.shape}")
    labels = (
        label_map.detach().cpu().numpy() if isinstance(label_map, torch.Tensor) else np.asarray(label_map)
    )
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"label_map must be an integer array [H, W], got shape {labels.shape} dtype {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(colours)):
        raise ValueError(
            f"label_map holds ids in [{labels.min()}, {labels.max()}]; the palette has {len(colours)} colours"
        )
    return colours.astype(np.uint8)[labels]


def _figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas (no pyplot, no GUI, nothing global)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _grid(count: int, max_columns: int, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` axes on a grid of at most ``max_columns`` columns (spare cells removed)."""
    columns = max(1, min(count, max_columns))
    rows = max(1, math.ceil(count / columns))
    figure = _figure(panel[0] * columns, panel[1] * rows)
    axes = list(np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel())
    for spare in axes[count:]:
        figure.delaxes(spare)
    return figure, axes[:count]


def plot_schedules(tables: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """α, β, γ over epochs, one panel per variant (``{variant: schedule_table(...)}``): 3 lines per panel."""
    if not tables:
        raise ValueError("plot_schedules needs at least one schedule table")
    figure, axes = _grid(len(tables), 3, (4.0, 3.0))
    for ax, (variant, table) in zip(axes, tables.items(), strict=True):
        missing = {"epoch", "alpha", "beta", "gamma"} - set(table)
        if missing:
            raise ValueError(f"schedule table of {variant!r} lacks {sorted(missing)}")
        for key, label, colour, style, marker in _WEIGHT_STYLES:
            ax.plot(
                table["epoch"],
                table[key],
                linestyle=style,
                marker=marker,
                markersize=3,
                label=label,
                color=colour,
            )
        ax.set_title(variant)
        ax.set_xlabel("epoch")
        ax.set_ylabel("weight")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    figure.suptitle("Homotopy weights of the three objectives")
    return figure


def plot_robustness_curves(curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]) -> Figure:
    """mIoU against severity: ``{variant: {perturbation: {"severity": [...], "miou": [...]}}}``.

    One panel per perturbation (in order of first appearance), one line per variant that has it. A curve with
    ``"miou_se"`` (same length; e.g. the standard error over seeds) gets a shaded ``miou ± miou_se`` band.
    """
    perturbations: list[str] = []
    for per_kind in curves.values():
        for kind in per_kind:
            if kind not in perturbations:
                perturbations.append(kind)
    if not perturbations:
        raise ValueError("plot_robustness_curves needs at least one curve")
    figure, axes = _grid(len(perturbations), 3, (4.0, 3.0))
    for ax, kind in zip(axes, perturbations, strict=True):
        for variant, per_kind in curves.items():
            if kind not in per_kind:
                continue
            curve = per_kind[kind]
            if len(curve["severity"]) != len(curve["miou"]):
                raise ValueError(f"{variant}/{kind}: severity and miou have different lengths")
            miou = np.array([np.nan if v is None else float(v) for v in curve["miou"]])
            (line,) = ax.plot(curve["severity"], miou, marker="o", markersize=3, label=variant)
            if "miou_se" in curve:
                if len(curve["miou_se"]) != len(miou):
                    raise ValueError(f"{variant}/{kind}: miou_se and miou have different lengths")
                se = np.array([0.0 if v is None else float(v) for v in curve["miou_se"]])
                ax.fill_between(
                    curve["severity"], miou - se, miou + se, color=line.get_color(), alpha=0.2, linewidth=0
                )
        ax.set_title(kind.replace("_", " "))
        ax.set_xlabel("severity")
        ax.set_ylabel("mIoU")
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    figure.suptitle("mIoU under perturbation")
    return figure


def plot_group_bars(
    per_group: Mapping[str, Mapping[str, float]],
    title: str = "group mIoU",
    errors: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Grouped bars: one group of bars per group label (e.g. ``"Male=present"``), one bar per variant.

    ``{variant: {group_label: mIoU}}``; a label a variant lacks (or NaN / None) leaves its bar out.
    ``errors`` (same shape, e.g. the standard error over seeds) draws ± error bars.
    """
    labels: list[str] = []
    for values in per_group.values():
        for label in values:
            if label not in labels:
                labels.append(label)
    if not labels:
        raise ValueError("plot_group_bars needs at least one group value")
    variants = list(per_group)
    figure = _figure(min(24.0, max(6.0, 0.3 * len(labels) * len(variants) + 2)), 4.5)
    ax = figure.subplots()
    width = 0.8 / len(variants)
    positions = np.arange(len(labels), dtype=float)
    for i, variant in enumerate(variants):
        values = [per_group[variant].get(label) for label in labels]
        heights = np.array([np.nan if v is None else float(v) for v in values])
        present = ~np.isnan(heights)
        yerr = None
        if errors is not None and variant in errors:
            spread = [errors[variant].get(label) for label in labels]
            yerr = np.array([0.0 if v is None or not math.isfinite(v) else float(v) for v in spread])[present]
        ax.bar(
            positions[present] + (i - (len(variants) - 1) / 2) * width,
            heights[present],
            width,
            yerr=yerr,
            capsize=2 if yerr is not None else 0,
            label=variant,
        )
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize="small")
    ax.set_ylabel("mIoU")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return figure


def _image_array(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] (tensor) or ``[H, W, 3]`` (array) -> ``[H, W, 3]`` float for imshow."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"images must be tensors [3, H, W], got {tuple(image.shape)}")
        return image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image arrays must be [H, W, 3], got {array.shape}")
    return array


def plot_qualitative_grid(
    rows: Sequence[tuple[str, torch.Tensor | np.ndarray]],
    label_maps: Mapping[str, Sequence[torch.Tensor | np.ndarray]],
    palette: np.ndarray | None = None,
    input_title: str = "input",
) -> Figure:
    """A grid: one row per ``(row title, image [3, H, W] in [0, 1])``, first column the image, then one
    column per entry of ``label_maps`` (``{column title: one label map [H, W] per row}``), colourised.

    For Fig. 3: rows = perturbed inputs, columns = e.g. ground truth, single-objective and multi-objective
    predictions. ``len(rows) * (1 + len(label_maps))`` axes.
    """
    if not rows:
        raise ValueError("plot_qualitative_grid needs at least one row")
    for title, maps in label_maps.items():
        if len(maps) != len(rows):
            raise ValueError(f"label_maps[{title!r}] has {len(maps)} maps for {len(rows)} rows")
    columns = 1 + len(label_maps)
    figure = _figure(2.0 * columns, 2.0 * len(rows))
    axes = figure.subplots(len(rows), columns, squeeze=False)
    titles = [input_title, *label_maps]
    for r, (row_title, image) in enumerate(rows):
        axes[r][0].imshow(_image_array(image))
        axes[r][0].set_ylabel(row_title, fontsize="small")
        for c, column_title in enumerate(label_maps, start=1):
            axes[r][c].imshow(colorize(label_maps[column_title][r], palette), interpolation="nearest")
        for c in range(columns):
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
            if r == 0:
                axes[r][c].set_title(titles[c], fontsize="small")
    return figure
