"""The FairHuman inference benchmark runs at tiny sizes and reports its ratios, sizes and the fused check."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")


@pytest.mark.slow
def test_fairhuman_inference_benchmark_reports(run_benchmark) -> None:
    report = run_benchmark(
        "fairhuman_inference.py", "--reps", "1", "--latent", "8", "--channels", "8,16", "--cross-dim", "8",
        "--rank", "2", "--tokens", "4",
    )  # fmt: skip
    assert report["benchmark"] == "fairhuman_inference"
    for key in ("fused_over_base", "unfused_over_base", "max_abs_diff_fused_vs_unfused"):
        assert key in report and math.isfinite(report[key]) and report[key] >= 0
    assert report["goal_fused_le"] == 1.02
    assert report["goal_fused_met"] == (report["fused_over_base"] <= 1.02)
    assert report["extra_bytes_fused"] == 0
    assert report["extra_params_unfused"] > 0 and report["max_abs_lora_change"] > 0
    assert report["fused_matches_unfused"] is True
    assert set(report["ms"]) == {"base", "unfused", "fused"}
