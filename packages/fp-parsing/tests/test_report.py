"""The markdown report: tables hold the numbers given, the verdict says what changed, honestly."""

from __future__ import annotations

import pytest

from fp_parsing.report import compare_with_baseline, markdown_table, render_report

METRICS = {
    "single": {
        "miou": 0.80,
        "dice": 0.85,
        "foreground_f1": 0.84,
        "pixel_accuracy": 0.95,
        "fairness/variance_mean": 0.0010,
        "fairness/Male/variance": 0.0012,
        "fairness/Male/worst_miou": 0.78,
        "robustness/blur/miou": 0.70,
        "robustness/miou": 0.70,
        "robustness/drop": 0.10,
        "robustness/kept": 0.875,
    },
    "linear": {
        "miou": 0.79,
        "dice": 0.84,
        "foreground_f1": 0.83,
        "pixel_accuracy": 0.94,
        "fairness/variance_mean": 0.0006,
        "fairness/Male/variance": 0.0007,
        "fairness/Male/worst_miou": 0.78,
        "robustness/blur/miou": 0.72,
        "robustness/miou": 0.72,
        "robustness/drop": 0.07,
        "robustness/kept": 0.91,
    },
    "mpd": {
        "miou": 0.81,
        "dice": 0.86,
        "foreground_f1": 0.85,
        "pixel_accuracy": 0.95,
        "fairness/variance_mean": 0.0015,
        "fairness/Male/variance": 0.0015,
        "robustness/blur/miou": 0.69,
        "robustness/miou": 0.69,
        "robustness/drop": 0.12,
        "robustness/kept": 0.85,
    },
}


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_comparisons_are_differences_from_the_baseline() -> None:
    linear, mpd = compare_with_baseline(METRICS, "single")
    assert linear.variant == "linear"
    assert linear.miou_change == pytest.approx(-0.01)
    assert linear.variance_change == pytest.approx(-0.0004)
    assert linear.drop_change == pytest.approx(-0.03)
    assert "lowered the mean group variance" in linear.sentence()
    assert "at a cost of 0.0100 mIoU" in linear.sentence()
    assert "did not lower the mean group variance" in mpd.sentence()
    assert "did not lower the robustness drop" in mpd.sentence()
    assert "no mIoU cost" in mpd.sentence()
    with pytest.raises(KeyError, match="baseline"):
        compare_with_baseline(METRICS, "nope")


def test_report_tables_and_verdict() -> None:
    text = render_report(METRICS, figures=[("Fig. 5", "figures/robustness.png")])
    assert "| linear | 0.7900 | 0.8400 | 0.8300 | 0.9400 | 0.000600 |" in text
    assert "| mpd | 0.0015 |" not in text  # variance has 6 digits
    assert "| variant | Male |" in text
    assert "| mpd | 0.8100 | 0.6900 | 0.6900 | 0.1200 | 0.8500 |" in text
    assert "worst" in text.lower() and "| mpd | — |" in text  # missing worst-group value shown as a dash
    assert "1 of 2 multi-objective variants lowered the mean group variance (linear)" in text
    assert "collapsed" not in text.split("## Against")[1].split("Not counting")[0]
    assert "![Fig. 5](figures/robustness.png)" in text


def test_a_collapsed_variant_gets_no_credit() -> None:
    metrics = {
        "single": {"miou": 0.30, "fairness/variance_mean": 0.001, "robustness/drop": 0.05},
        "mpd": {"miou": 0.07, "fairness/variance_mean": 0.00001, "robustness/drop": 0.001},
        "linear": {"miou": 0.29, "fairness/variance_mean": 0.0005, "robustness/drop": 0.04},
    }
    (mpd, linear) = compare_with_baseline(metrics)
    assert mpd.collapsed and not linear.collapsed
    assert "Its accuracy collapsed" in mpd.sentence()
    text = render_report(metrics)
    assert "1 of 2 multi-objective variants lowered the mean group variance (linear)" in text
