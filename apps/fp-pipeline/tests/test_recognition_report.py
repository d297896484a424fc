"""The recognition report's statistics: standard errors, the 2-s.e. verdict rules, the pretraining verdicts on
hand-made numbers, and Tables 2-4 rendered from small fake metrics files per source."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fp_pipeline.stages.recognition_report import (
    LOWERED,
    NO_DIFFERENCE,
    RAISED,
    chance_verdict,
    difference_verdict,
    group_gap_verdict,
    mean_se,
    pretraining_verdict,
    pretraining_verdicts,
    read_runs,
    report_markdown,
    row_label,
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


def test_pretraining_verdict_exact() -> None:
    # means 0.81 and 0.71, each se = 0.01/sqrt(3); se of the difference = 0.01 * sqrt(2/3)
    diff, se, verdict = pretraining_verdict(mean_se([0.80, 0.81, 0.82]), mean_se([0.70, 0.71, 0.72]))
    assert diff == pytest.approx(0.10) and se == pytest.approx(0.01 * math.sqrt(2 / 3)) and verdict == RAISED
    assert pretraining_verdict(mean_se([0.70, 0.71, 0.72]), mean_se([0.80, 0.81, 0.82]))[2] == LOWERED
    # difference 0.02, s.e. sqrt(2) * 0.01 = 0.01414: 2 s.e. = 0.0283 > 0.02
    diff, se, verdict = pretraining_verdict(mean_se([0.81, 0.83]), mean_se([0.79, 0.81]))
    assert (
        diff == pytest.approx(0.02) and se == pytest.approx(math.sqrt(2) * 0.01) and verdict == NO_DIFFERENCE
    )
    assert pretraining_verdict(mean_se([0.9]), mean_se([0.8, 0.9]))[2].startswith("no verdict")


def _trials(values: dict[str, list[float]]) -> list[dict[str, float]]:
    n = len(next(iter(values.values())))
    return [{key: vals[i] for key, vals in values.items()} for i in range(n)]


def test_pretraining_verdicts_per_loss_and_key() -> None:
    runs = {
        "qd": {
            "arcface": _trials({"rfw/dark": [0.80, 0.81, 0.82], "rfw/disparate_impact": [0.90, 0.95, 0.85]})
        },
        "rand": {
            "arcface": _trials({"rfw/dark": [0.70, 0.71, 0.72], "rfw/disparate_impact": [0.88, 0.93, 0.83]})
        },
        "none": {
            "arcface": _trials({"rfw/dark": [0.79, 0.81, 0.83], "rfw/disparate_impact": [0.97, 0.98, 0.99]})
        },
    }
    got = {(v.metric, v.other): v for v in pretraining_verdicts(runs)}
    assert list(got) == [
        ("rfw/dark", "rand"), ("rfw/dark", "none"),
        ("rfw/disparate_impact", "rand"), ("rfw/disparate_impact", "none"),
    ]  # fmt: skip
    assert got["rfw/dark", "rand"].verdict == RAISED  # +10 points, s.e. 0.82
    assert got["rfw/dark", "none"].verdict == NO_DIFFERENCE  # +0
    assert got["rfw/disparate_impact", "rand"].verdict == NO_DIFFERENCE  # +0.02, s.e. 0.041
    assert got["rfw/disparate_impact", "none"].verdict == LOWERED  # -0.08, s.e. 0.029
    assert got["rfw/disparate_impact", "none"].difference == pytest.approx(-0.08)
    assert got["rfw/dark", "rand"].text == (
        "ArcFace, rfw/dark: QD 81.00 ± 0.58 vs Rand 71.00 ± 0.58 % (difference +10.00 ± 0.82): raised beyond 2 s.e."
    )
    missing = pretraining_verdicts({"qd": {"adaface": [{"rfw/dark": 0.8, "rfw/disparate_impact": 0.9}]}})
    assert [v.verdict for v in missing] == ["not run"] * 4
    assert "no Rand-pretrained trials" in missing[0].text and "no None-pretrained trials" in missing[1].text
    assert pretraining_verdicts({}) == []


def _write_run(root: Path, source: str, loss: str, trial: int, metrics: dict[str, float]) -> None:
    out = root / source / loss / "eval" / str(trial)  # as recognition-eval@<source>-<loss> writes it
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps(metrics))
    (out / "roc.json").write_text(json.dumps({"lfw": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}}))


def _metrics(dark: float, light: float = 0.9, lfw: float = 0.9) -> dict[str, float]:
    return {
        "bins/lfw": lfw, "bins/mean": lfw, "rfw/light": light, "rfw/dark": dark,
        "rfw/mean": (light + dark) / 2, "rfw/std": abs(light - dark) / 2, "rfw/gap": abs(light - dark),
        "rfw/disparate_impact": min(light, dark) / max(light, dark),
    }  # fmt: skip


def test_report_from_metrics_files_per_source(tmp_path: Path) -> None:
    darks = {"none": [0.70, 0.72], "rand": [0.74, 0.75], "qd": [0.80, 0.81]}
    for source, values in darks.items():
        for loss in ("arcface", "adaface"):
            for trial, dark in enumerate(values):
                _write_run(tmp_path, source, loss, trial, _metrics(dark - (0.02 if loss == "adaface" else 0)))
    matrix = [(s, loss, t) for s in darks for loss in ("arcface", "adaface") for t in (0, 1)]
    runs, curves = read_runs(tmp_path, matrix)
    assert list(runs) == ["none", "rand", "qd"] and len(runs["qd"]["adaface"]) == 2
    assert set(curves) == {row_label(s, loss) for s in darks for loss in ("arcface", "adaface")}
    assert read_runs(tmp_path)[0]["qd"]["arcface"] == runs["qd"]["arcface"]  # glob finds the same
    _write_run(tmp_path / "more", "qd", "arcface", 10, _metrics(0.5))
    _write_run(tmp_path / "more", "qd", "arcface", 2, _metrics(0.6))
    assert [r["rfw/dark"] for r in read_runs(tmp_path / "more")[0]["qd"]["arcface"]] == [0.6, 0.5]  # numeric
    with pytest.raises(FileNotFoundError, match="--source qd --loss arcface --trial 5"):
        read_runs(tmp_path, [("qd", "arcface", 5)])

    text, summary = report_markdown(
        runs, bin_sets=["lfw"], groups=["light", "dark"], compare=("light", "dark"), context={"k": "v"}
    )
    lines = text.splitlines()
    t2 = lines.index("## Table 2: RFW accuracy per group and disparate impact, by pretraining")
    assert lines[t2 + 2] == "| method | trials | light | dark | Avg | Std | DI (min/max) |"
    # Table 2 groups the pretraining sources within each loss
    assert [line.split(" | ")[0] for line in lines[t2 + 4 : t2 + 10]] == [
        "| ArcFace, pretrain None", "| ArcFace, pretrain Rand", "| ArcFace, pretrain QD",
        "| AdaFace, pretrain None", "| AdaFace, pretrain Rand", "| AdaFace, pretrain QD",
    ]  # fmt: skip
    assert (
        lines[t2 + 6]
        == "| ArcFace, pretrain QD | 2 | 90.00 ± 0.00 | 80.50 ± 0.50 | 85.25 ± 0.25 | 4.75 ± 0.25 | 0.894 ± 0.006 |"
    )
    t3 = lines.index("## Table 3: ArcFace / AdaFace ablation")
    assert lines[t3 + 2] == "| method | trials | RFW Avg | RFW dark | DI (min/max) | .bin Avg |"
    assert lines[t3 + 4].startswith("| ArcFace, pretrain None") and lines[t3 + 5].startswith(
        "| AdaFace, pretrain None"
    )
    assert (
        "- pretrain QD: AdaFace − ArcFace:" in text
        and "  - rfw/dark: -2.00 ± 0.71: lowered beyond 2 s.e." in text
    )
    assert "| method | trials | LFW | Avg |" in text
    assert (
        "- ArcFace, rfw/dark: QD 80.50 ± 0.50 vs Rand 74.50 ± 0.50 % (difference +6.00 ± 0.71): raised beyond 2 s.e."
        in text
    )
    assert "in 8, lowered it in 0" in text
    assert summary["tables"]["table2"]["AdaFace, pretrain QD"]["rfw/dark"]["mean"] == pytest.approx(0.785)
    assert summary["findings"]["ArcFace, pretrain None"]["group_gap"] == pytest.approx(0.19)
    assert [v["verdict"] for v in summary["pretraining_verdicts"]] == [RAISED] * 8


def test_roc_panels_wrap_at_three_per_row() -> None:
    from fp_pipeline.stages.recognition_plots import plot_roc

    curve = {"lfw": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.8, 1.0]}}
    figure = plot_roc(
        {row_label(s, loss): curve for s in ("none", "rand", "qd") for loss in ("arcface", "adaface")}
    )
    assert list(figure.get_size_inches()) == [12.0, 7.2] and len(figure.axes) == 6
    assert [ax.get_title() for ax in figure.axes][:2] == [
        "ROC, ArcFace, pretrain None (first trial)",
        "ROC, AdaFace, pretrain None (first trial)",
    ]
