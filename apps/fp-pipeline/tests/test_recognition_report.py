"""The recognition report's statistics: standard errors, the 2-s.e. verdict rule, the tables' layout."""

from __future__ import annotations

import math

import pytest

from fp_pipeline.stages.recognition_report import (
    chance_verdict,
    difference_verdict,
    group_gap_verdict,
    mean_se,
    report_markdown,
)


def test_mean_and_standard_error() -> None:
    stat = mean_se([0.8, 0.9, 1.0])
    assert stat.mean == pytest.approx(0.9) and stat.se == pytest.approx(0.1 / math.sqrt(3)) and stat.n == 3
    assert math.isnan(mean_se([0.7]).se) and mean_se([0.7]).text() == "70.00"
    assert mean_se([0.8, math.nan, 0.9]).n == 2


def test_verdicts_need_two_standard_errors() -> None:
    a, b = mean_se([0.90, 0.91, 0.92]), mean_se([0.80, 0.81, 0.82])
    assert difference_verdict(a, b, "A", "B")[2] == "A higher than B"
    close = mean_se([0.80, 0.83, 0.86])
    assert difference_verdict(close, b, "A", "B")[2] == "no detectable difference"
    assert "needs at least 2" in difference_verdict(mean_se([0.9]), b, "A", "B")[2]
    assert chance_verdict(mean_se([0.51, 0.49, 0.52])).startswith("not detectably above chance")
    assert chance_verdict(mean_se([0.88, 0.87, 0.89])).startswith("well above chance")
    assert (
        group_gap_verdict("dark", "light", [0.02, 0.03, 0.025])[1]
        == "the dark group is worse than the light group"
    )
    assert group_gap_verdict("dark", "light", [0.02, -0.03, 0.0])[1].startswith("no detectable difference")


def test_report_tables() -> None:
    trial = {
        "bins/lfw": 0.9, "bins/mean": 0.9, "rfw/light": 0.9, "rfw/dark": 0.8, "rfw/mean": 0.85,
        "rfw/std": 0.05, "rfw/gap": 0.1, "rfw/disparate_impact": 0.8 / 0.9,
    }  # fmt: skip
    rows = {"ArcFace": [trial, {**trial, "rfw/dark": 0.82}], "AdaFace": [trial, trial]}
    text, summary = report_markdown(
        rows, bin_sets=["lfw"], groups=["light", "dark"], compare=("light", "dark"), context={"k": "v"}
    )
    assert (
        "| method | trials | LFW | Avg |" in text and "| ArcFace | 2 | 90.00 ± 0.00 | 90.00 ± 0.00 |" in text
    )
    assert "| light | dark | Avg | Std |" in text and "Disparate impact" in text
    assert summary["tables"]["table3"]["ArcFace"]["rfw/dark"]["mean"] == pytest.approx(0.81)
    assert summary["findings"]["AdaFace"]["group_gap"] == pytest.approx(0.1)
