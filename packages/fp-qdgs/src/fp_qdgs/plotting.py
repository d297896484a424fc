"""Heatmaps of a grid archive's best objective per cell.

matplotlib is not a dependency of fp-qdgs: it is imported inside :func:`plot_archive_heatmap` only (the
workspace has it), so the rest of the package works without it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from ribs.archives import GridArchive

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["archive_grid", "marginal_grid", "plot_archive_heatmap"]


def archive_grid(archive: GridArchive) -> np.ndarray:
    """Objective per cell as an array of shape ``archive.dims`` (NaN for empty cells)."""
    grid = np.full(tuple(int(d) for d in archive.dims), np.nan)
    data = archive.data(["index", "objective"])
    if len(data["index"]):
        coords = archive.int_to_grid_index(data["index"])
        grid[tuple(coords.T)] = data["objective"]
    return grid


def marginal_grid(grid: np.ndarray, i: int, j: int) -> np.ndarray:
    """Best objective over all other measures: ``grid`` of ``k`` dims -> ``[dims[i], dims[j]]`` (NaN if none)."""
    others = tuple(a for a in range(grid.ndim) if a not in (i, j))
    if not others:
        return grid if i < j else grid.T
    filled = np.where(np.isnan(grid), -np.inf, grid).max(axis=others)
    out = np.where(np.isneginf(filled), np.nan, filled)
    return out if i < j else out.T


def plot_archive_heatmap(
    archive: GridArchive,
    *,
    measure_names: Sequence[str] | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
) -> Figure:
    """A matplotlib ``Figure`` of ``archive``'s objective per cell.

    ``k = 1``: one strip. ``k = 2``: one heatmap, measure 0 on x. ``k > 2``: one panel per measure pair
    ``(i, j)`` showing the best objective over the other measures (2-D marginals). Empty cells are blank.
    """
    # lazy: matplotlib is not an fp-qdgs dependency; Figure needs no pyplot and no backend
    from matplotlib.figure import Figure

    k = archive.measure_dim
    names = list(measure_names) if measure_names is not None else [f"measure {i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"measure_names has {len(names)} names for {k} measures")
    grid = archive_grid(archive)
    finite = grid[np.isfinite(grid)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    bounds = list(zip(archive.lower_bounds, archive.upper_bounds))

    pairs = [(0, 0)] if k == 1 else list(itertools.combinations(range(k), 2))
    cols = min(len(pairs), 3)
    rows = -(-len(pairs) // cols)
    fig = Figure(figsize=(4.5 * cols, 4.0 * rows), constrained_layout=True)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    image = None
    for ax, (i, j) in zip(axes, pairs):
        if k == 1:
            values = grid[None, :]
            extent = (bounds[0][0], bounds[0][1], 0.0, 1.0)
            ax.set_yticks([])
        else:
            values = marginal_grid(grid, i, j).T  # rows = measure j (y), columns = measure i (x)
            extent = (bounds[i][0], bounds[i][1], bounds[j][0], bounds[j][1])
            ax.set_ylabel(names[j])
        image = ax.imshow(
            values,
            origin="lower",
            extent=extent,
            aspect="auto",
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            interpolation="nearest",
        )
        ax.set_xlabel(names[i])
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(pairs)]), label="objective")
    if title:
        fig.suptitle(title)
    return fig
