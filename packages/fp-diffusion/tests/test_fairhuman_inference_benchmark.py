"""The FairHuman inference benchmark runs at tiny sizes and reports its ratios, sizes and the fused check."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")

ROOT_CONFTEST = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"


@pytest.fixture(scope="module")
def run_benchmark() -> Callable[..., dict]:
    """The workspace tests' ``run_benchmark`` (tests/conftest.py; pytest does not share it with this folder)."""
    spec = importlib.util.spec_from_file_location("_fp_root_tests_conftest", ROOT_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._run_benchmark


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
