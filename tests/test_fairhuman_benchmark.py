"""The FairHuman step benchmark runs at tiny sizes and reports its ratios and the directions' cosine."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")


@pytest.mark.slow
def test_fairhuman_step_benchmark_reports(run_benchmark) -> None:
    report = run_benchmark(
        "fairhuman_step.py",
        "--reps",
        "1",
        "--latent",
        "8",
        "--channels",
        "8,16",
        "--cross-dim",
        "8",
        "--rank",
        "2",
    )
    assert report["benchmark"] == "fairhuman_step"
    for key in ("mpd_exact_over_ls", "mpd_output_over_ls", "cosine_output_vs_exact", "goal_output_le"):
        assert key in report and math.isfinite(report[key])
    assert report["mpd_exact_over_ls"] > 0 and report["mpd_output_over_ls"] > 0
    assert -1.0 <= report["cosine_output_vs_exact"] <= 1.0
    assert report["goal_output_le"] == 1.1
    assert report["goal_output_met"] == (report["mpd_output_over_ls"] <= 1.1)
    assert set(report["ms"]) == {"ls", "mpd_exact", "mpd_output"}
    for key in ("weights_exact", "weights_output"):
        assert len(report[key]) == 3 and sum(report[key]) == pytest.approx(1.0, abs=1e-3)
