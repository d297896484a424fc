"""`benchmarks/qdgs_step.py` runs end to end, tiny, and prints the one JSON line its docs describe.

Timings and coverages are not asserted (they belong to the benchmark's output); the structure, the goal flags'
consistency with the printed ratios, the Jacobian agreement and the "unavailable" shapes entry are.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, run_benchmark) -> dict:
    missing = tmp_path_factory.mktemp("none")
    return run_benchmark(
        "qdgs_step.py",
        *("--reps", "1", "--batch", "3", "--large-batch", "0", "--sphere-iterations", "3"),
        *("--threads", "1", "--vae", str(missing / "vae"), "--clip", str(missing / "clip")),
    )


@pytest.mark.slow
def test_jacobian_entry(report: dict) -> None:
    assert report["benchmark"] == "qdgs_step" and report["device"] == "cpu" and report["threads"] == 1
    jac = report["jacobian"]
    assert report["jacobian_large_batch"] is None  # --large-batch 0 skips the second batch
    assert set(jac["ms"]) == {"batched", "reference"} and all(v > 0 for v in jac["ms"].values())
    ratio = jac["ratio_batched_over_reference"]
    assert ratio == pytest.approx(jac["ms"]["batched"] / jac["ms"]["reference"], rel=0.03)
    assert jac["goal_ratio_le_0_75"] == (ratio <= 0.75)
    assert (jac["batch"], jac["k"], jac["latent_dim"]) == (3, 4, 6)
    assert jac["max_abs_diff"] <= 1e-4 * max(1.0, jac["max_abs_jacobian"])  # both give the same Jacobian
    assert jac["clip"]["weights"].startswith("random") and jac["clip"]["image_size"] == 64


@pytest.mark.slow
def test_coverage_entries(report: dict) -> None:
    sphere = report["coverage_sphere"]
    assert sphere["evaluations"] == 64 + 3 * 37  # x0 draws + iterations * (1 + batch_size), the same for both
    for arm in ("qd", "random"):
        assert 0.0 < sphere[arm]["coverage"] <= 1.0 and isinstance(sphere[arm]["qd_score"], float)
    ratio = sphere["coverage_ratio"]
    assert ratio == pytest.approx(sphere["qd"]["coverage"] / sphere["random"]["coverage"], rel=1e-3)
    assert sphere["goal_ratio_ge_3"] == (ratio >= 3)
    shapes = report["coverage_shapes"]
    assert isinstance(shapes, str) and shapes.startswith("unavailable: run `uv run dvc repro qdgs-shapes-vae")
