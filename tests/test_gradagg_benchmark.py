"""`benchmarks/gradagg_step.py` runs end to end and prints the one JSON line its docs describe.

Timings are not asserted (speed numbers belong to the benchmark's own output); the structure, the cost-model
arithmetic and the goal flag's consistency with the printed ratio are.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gradagg_step.py"


@pytest.fixture(scope="module")
def report(run_benchmark) -> dict:
    return run_benchmark("gradagg_step.py", "--reps", "1", "--unet-size", "8", "--unet-batch", "1")


def test_prints_every_variant_and_ratio(report: dict) -> None:
    assert report["benchmark"] == "gradagg_step"
    assert report["device"] == "cpu"
    assert report["objectives"] == 3
    for case in ("mlp", "unet_lora"):
        ms = report[case]["ms"]
        assert set(ms) == {"forward", "ls", "mpd_naive", "mpd_fast", "mpd_fast_recompute", "mpd_fast_every4"}
        assert all(value > 0 for value in ms.values())
        ratios = report[case]["ratio_mpd_over_ls"]
        # the printed milliseconds are rounded to 0.01 ms, so compare with a relative tolerance
        assert ratios["fast"] == pytest.approx(ms["mpd_fast"] / ms["ls"], rel=0.03)
        assert ratios["naive"] == pytest.approx(ms["mpd_naive"] / ms["ls"], rel=0.03)
        floor = (ms["forward"] + 3 * (ms["ls"] - ms["forward"])) / ms["ls"]
        assert report[case]["k_backward_floor_ratio"] == pytest.approx(floor, rel=0.03)


def test_goal_flag_matches_fast_ratio_and_memory_is_reported(report: dict) -> None:
    unet = report["unet_lora"]
    assert report["goal_fast_unet_ratio_le_1_3"] == (unet["ratio_mpd_over_ls"]["fast"] <= 1.3)
    assert set(unet["peak_mib"]) == {"ls", "mpd_naive", "mpd_fast", "mpd_fast_recompute"}
    assert all(value > 0 for value in unet["peak_mib"].values())
    # K cotangents live at once in the batched backward: never less memory than the single LS backward
    assert unet["peak_mib"]["mpd_fast"] >= unet["peak_mib"]["ls"]
    assert unet["trainable_params"] > 0
    assert unet["config"] == {"latent": 8, "batch": 1, "lora_rank": 4}


def test_cuda_request_without_cuda_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--device cuda: CUDA is not available" in done.stderr
