from __future__ import annotations

import numpy as np
from ribs.archives import GridArchive

from fp_qdgs import plot_archive_heatmap
from fp_qdgs.plotting import archive_grid, marginal_grid


def _archive(k):
    archive = GridArchive(solution_dim=2, dims=(4,) * k, ranges=((0.0, 1.0),) * k)
    measures = np.array([[0.1] * k, [0.9] * k, [0.1] * (k - 1) + [0.9]])
    archive.add(np.zeros((3, 2)), np.array([1.0, 2.0, 3.0]), measures)
    return archive


def test_grid_and_marginals():
    grid = archive_grid(_archive(3))
    assert grid.shape == (4, 4, 4) and np.isfinite(grid).sum() == 3
    m = marginal_grid(grid, 0, 1)
    assert m.shape == (4, 4) and m[0, 0] == 3.0 and m[3, 3] == 2.0 and np.isnan(m[1, 1])
    assert marginal_grid(grid, 0, 2)[0, 0] == 1.0


def test_heatmaps_2d_and_marginals():
    fig = plot_archive_heatmap(_archive(2), measure_names=["red-blue", "triangle-square"], title="t")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2  # heatmap + colour bar
    fig3 = plot_archive_heatmap(_archive(3))
    assert len([ax for ax in fig3.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]) == 3
    assert len([ax for ax in plot_archive_heatmap(_archive(1)).axes if ax.get_visible()]) == 2
