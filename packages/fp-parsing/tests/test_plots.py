"""Figures: the expected panels, lines and bars (no image comparison), colour maps, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fp_parsing.plots import (
    PALETTE,
    colorize,
    plot_group_bars,
    plot_qualitative_grid,
    plot_robustness_curves,
    plot_schedules,
)
from fp_parsing.schedules import build_schedule, schedule_table


def _renders(figure: Figure) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_palette_is_19_distinct_colours_with_black_background() -> None:
    assert PALETTE.shape == (19, 3) and PALETTE.dtype == np.uint8
    assert len({tuple(c) for c in PALETTE.tolist()}) == 19
    assert PALETTE[0].tolist() == [0, 0, 0]


def test_colorize_maps_ids_to_palette_colours() -> None:
    labels = torch.tensor([[0, 1], [18, 5]])
    rgb = colorize(labels)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 1].tolist() == PALETTE[1].tolist() and rgb[1, 0].tolist() == PALETTE[18].tolist()
    custom = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    assert colorize(np.array([[1, 0]]), custom).tolist() == [[[4, 5, 6], [1, 2, 3]]]
    with pytest.raises(ValueError, match=r"ids in \[0, 19\]; the palette has 19 colours"):
        colorize(torch.tensor([[0, 19]]))
    with pytest.raises(ValueError, match="integer array"):
        colorize(torch.zeros(2, 2))


def test_schedule_figure_has_one_panel_per_variant_and_three_lines_each() -> None:
    tables = {
        kind: schedule_table(build_schedule({"kind": kind}, 6), 6)
        for kind in ("constant", "linear", "sigmoid", "piecewise")
    }
    figure = plot_schedules(tables)
    assert isinstance(figure, Figure) and len(figure.axes) == 4
    for ax, (variant, table) in zip(figure.axes, tables.items(), strict=True):
        assert ax.get_title() == variant
        lines = ax.get_lines()
        assert len(lines) == 3
        assert list(lines[1].get_ydata()) == table["beta"]
    _renders(figure)


def test_robustness_figure_has_one_panel_per_perturbation_and_one_line_per_variant() -> None:
    curve = {"severity": [0.0, 0.5, 1.0], "miou": [0.8, 0.6, 0.4]}
    curves = {
        "single": {"blur": curve, "darkness": curve, "occlusion": curve, "salt_pepper": curve},
        "linear": {"blur": curve, "darkness": {"severity": [0.0, 1.0], "miou": [0.8, None]}},
    }
    figure = plot_robustness_curves(curves)
    assert len(figure.axes) == 4  # spare grid cells are removed
    assert [len(ax.get_lines()) for ax in figure.axes] == [2, 2, 1, 1]
    assert [ax.get_title() for ax in figure.axes] == ["blur", "darkness", "occlusion", "salt pepper"]
    _renders(figure)
    with pytest.raises(ValueError, match="different lengths"):
        plot_robustness_curves({"v": {"blur": {"severity": [0, 1], "miou": [0.5]}}})


def test_group_bars_have_one_bar_per_variant_and_group() -> None:
    per_group = {
        "single": {"Male=absent": 0.7, "Male=present": 0.6, "skin_tone=tone_1": 0.5},
        "linear": {"Male=absent": 0.72, "Male=present": 0.69, "skin_tone=tone_1": float("nan")},
    }
    figure = plot_group_bars(per_group, title="group mIoU")
    (ax,) = figure.axes
    assert len(ax.containers) == 2
    assert [len(c) for c in ax.containers] == [3, 2]  # the NaN bar is left out
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Male=absent", "Male=present", "skin_tone=tone_1"]
    assert ax.get_title() == "group mIoU"
    heights = [bar.get_height() for bar in ax.containers[1]]
    assert heights == pytest.approx([0.72, 0.69])
    _renders(figure)


def test_qualitative_grid_shape() -> None:
    rows = [("blur 0.5", torch.rand(3, 16, 16)), ("occlusion 1.0", torch.rand(3, 16, 16))]
    maps = {
        "ground truth": [torch.randint(0, 19, (16, 16)) for _ in rows],
        "single": [torch.randint(0, 19, (16, 16)) for _ in rows],
        "multi": [torch.randint(0, 19, (16, 16)) for _ in rows],
    }
    figure = plot_qualitative_grid(rows, maps)
    assert len(figure.axes) == 2 * 4
    assert [ax.get_title() for ax in figure.axes[:4]] == ["input", "ground truth", "single", "multi"]
    assert figure.axes[4].get_ylabel() == "occlusion 1.0"
    shown = figure.axes[1].get_images()[0].get_array()
    assert np.array_equal(np.asarray(shown), colorize(maps["ground truth"][0]))
    _renders(figure)
    with pytest.raises(ValueError, match=r"label_maps\['single'\] has 1 maps for 2 rows"):
        plot_qualitative_grid(rows, {"single": maps["single"][:1]})


def test_empty_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plot_schedules({})
    with pytest.raises(ValueError, match="at least one"):
        plot_robustness_curves({"single": {}})
    with pytest.raises(ValueError, match="at least one"):
        plot_group_bars({"single": {}}, "t")
    with pytest.raises(ValueError, match="at least one"):
        plot_qualitative_grid([], {})


def test_seed_bands_and_error_bars() -> None:
    from matplotlib.collections import PolyCollection

    curves = {
        "single": {"blur": {"severity": [0.0, 1.0], "miou": [0.8, 0.5], "miou_se": [0.01, 0.03]}},
        "linear": {"blur": {"severity": [0.0, 1.0], "miou": [0.8, 0.6]}},
    }
    (ax,) = plot_robustness_curves(curves).axes
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1  # only the curve with miou_se gets a band
    ys = bands[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.47) and ys.max() == pytest.approx(0.81)
    with pytest.raises(ValueError, match="miou_se and miou"):
        plot_robustness_curves({"v": {"blur": {"severity": [0, 1], "miou": [0.5, 0.4], "miou_se": [0.1]}}})

    figure = plot_group_bars(
        {"single": {"a": 0.7, "b": 0.6}, "linear": {"a": 0.72, "b": 0.69}},
        errors={"single": {"a": 0.02, "b": 0.01}},
    )
    (ax,) = figure.axes
    from matplotlib.container import BarContainer

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and bars[0].errorbar is not None and bars[1].errorbar is None
    _renders(figure)
