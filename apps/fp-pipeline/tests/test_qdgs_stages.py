"""The QDGS shapes stages end to end on a tiny config, driven through `fp qdgs` exactly as dvc.yaml calls them:
data -> VAE -> embedded CLIP -> QDGS and random sampling -> classifier repair -> report, each an MLflow run.
It trains several tiny networks (tens of seconds on a shared CPU), hence `slow`: run it with `-m slow`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from stage_cli import run_fp  # noqa: I001  (test helper on the pytest pythonpath)

from fp_pipeline.config import ParamsError
from fp_pipeline.stages.qdgs_common import bias_name, biases
from fp_pipeline.stages.qdgs_shapes import total_evaluations

ROOT = Path(__file__).resolve().parents[3]
BIASES = [0.9, 0.8]


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    shapes = params["qdgs"]["shapes"]
    shapes["data"].update(biases=BIASES, train_size=24, eval_size=16)
    shapes["vae"].update(train_bias=0.9, epochs=1, batch_size=8)
    shapes["clip"].update(
        train_size=48,
        heldout_size=16,
        model={
            "vision_width": 32,
            "vision_layers": 1,
            "vision_heads": 2,
            "text_width": 32,
            "text_layers": 1,
            "text_heads": 2,
            "embed_dim": 16,
        },
        train={"epochs": 1, "batch_size": 16, "warmup_steps": 1},
    )
    shapes["sampler"].update(
        measure_dims=[4, 4], iterations=3, batch_size=6, x0_samples=8, eval_batch=8, checkpoint_every=2
    )
    shapes["classifier"].update(seeds=[0, 1], base_epochs=1, finetune_epochs=1, batch_size=16)
    return params


@pytest.fixture()
def workdir(stage_workdir: Path) -> Path:
    (stage_workdir / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return stage_workdir


def _fp(*args: str) -> str:
    return run_fp("qdgs", *args, no_progress=False)  # the commands take --no-progress where they have it


@pytest.mark.slow
def test_every_shapes_stage_runs_and_is_tracked(workdir: Path) -> None:
    import mlflow

    _fp("shapes-data", "--no-progress")
    for bias in BIASES:
        assert (workdir / f"outputs/qdgs-shapes/data/train-{bias_name(bias)}/labels.csv").is_file()
    _fp("shapes-vae", "--no-progress")
    assert (workdir / "outputs/qdgs-shapes-vae/manifest.json").is_file()
    _fp("clip-shapes", "--no-progress")
    zero_shot = json.loads((workdir / "outputs/qdgs-shapes/clip-zero-shot.json").read_text())
    assert {"colour", "shape", "objective"} <= set(zero_shot) and zero_shot["chance"] == 0.5
    for method in ("qd", "random"):
        _fp("shapes-sample", "--method", method, "--no-progress")
    runs = {
        m: json.loads((workdir / f"outputs/qdgs-shapes/runs/{m}.json").read_text()) for m in ("qd", "random")
    }
    # equal generator evaluations, by construction
    assert runs["qd"]["evaluations"] == runs["random"]["evaluations"] == 8 + 3 * 7
    for bias in BIASES:
        _fp("shapes-classifier", "--bias", str(bias), "--no-progress")
        result = json.loads((workdir / f"outputs/qdgs-shapes/classifier/{bias_name(bias)}.json").read_text())
        assert len(result["trials"]) == 2
        assert set(result["summary"]["arms"]) == {"real", "qd", "random"}
        assert set(result["summary"]["differences"]) == {"qd-real", "qd-random"}
    _fp("shapes-report")
    report = (workdir / "outputs/qdgs-shapes-report/report.md").read_text()
    assert "Zero-shot accuracy" in report and "| 0.90 |" in report and "| 0.80 |" in report
    for figure in ("fig1-accuracy-vs-bias.png", "fig3-coverage.png"):
        assert (workdir / "outputs/qdgs-shapes-report" / figure).stat().st_size > 1000

    runs_by_name = {
        r.info.run_name: r for r in mlflow.search_runs(experiment_names=["fp"], output_format="list")
    }
    expected = {
        "qdgs-shapes-data",
        "qdgs-shapes-vae",
        "clip-shapes",
        "qdgs-shapes@qd",
        "qdgs-shapes@random",
        "shapes-classifier@0.9",
        "shapes-classifier@0.8",
        "qdgs-shapes-report",
    }
    assert expected <= set(runs_by_name)
    assert all(runs_by_name[name].data.tags["fp.paper"] == "qdgs" for name in expected)
    assert "coverage" in runs_by_name["qdgs-shapes@qd"].data.metrics


def test_total_evaluations_counts_the_start_draws_and_every_batch() -> None:
    from fp_qdgs import SamplerConfig

    config = SamplerConfig(
        measure_dims=(4, 4),
        measure_ranges=((-1, 1), (-1, 1)),
        iterations=10,
        num_emitters=2,
        batch_size=5,
        x0_samples=7,
    )
    assert total_evaluations(config) == 7 + 10 * 2 * 6


def test_bias_names_match_what_dvc_writes_for_the_matrix() -> None:
    assert [bias_name(b) for b in (0.98, 0.95, 0.9, 0.85, 0.8)] == ["b0.98", "b0.95", "b0.9", "b0.85", "b0.8"]
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outs = dvc["stages"]["shapes-classifier"]["outs"]
    assert list(outs[0])[0] == "outputs/qdgs-shapes/classifier/b${item.bias}.json"
    # the report's explicit deps list one classifier file per bias of params.yaml
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    report_deps = dvc["stages"]["qdgs-shapes-report"]["deps"]
    for bias in biases(params):
        assert f"outputs/qdgs-shapes/classifier/{bias_name(bias)}.json" in report_deps


@pytest.mark.parametrize("bad", [[], [0.4], [0.9, 0.9], ["x"]])
def test_bad_bias_lists_are_clear_errors(bad: list) -> None:
    with pytest.raises(ParamsError, match="qdgs.shapes.data.biases"):
        biases({"qdgs": {"shapes": {"data": {"biases": bad}}}})
