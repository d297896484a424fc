"""The stage commands end to end on a tiny config: synth -> train -> eval -> export -> report, each an MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fp_pipeline.cli import app

ROOT = Path(__file__).resolve().parents[3]


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synth"].update(num_identities=10, images_per_identity=2, image_size=64)
    params["data"].update(root="outputs/synth", image_size=32)
    params["parsing"]["model"]["encoder_name"] = "resnet18"
    params["parsing"]["seeds"] = [0]
    params["parsing"]["train"].update(epochs=1, batch_size=4, max_steps_per_epoch=2)
    params["parsing"]["variants"] = {
        "single": {},
        "mpd": {"weighting": "mpd"},
    }
    params["parsing"]["eval"].update(perturbations=["blur", "darkness"], severities=[1.0])
    return params


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return tmp_path


def _fp(*args: str) -> None:
    result = CliRunner().invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, f"fp {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"


def test_every_stage_runs_and_is_tracked(workdir: Path) -> None:
    import mlflow

    _fp("data", "synth", "--out", "outputs/synth")
    for variant in ("single", "mpd"):
        _fp("parsing", "train", "--variant", variant)
        _fp("parsing", "eval", "--variant", variant)
    _fp("parsing", "export", "--variant", "single")
    _fp("parsing", "report")

    metrics = json.loads((workdir / "outputs/parsing/single/seed-0/eval/metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0
    assert {"fairness/variance_mean", "robustness/drop", "iou/skin"} <= set(metrics)
    schedule = (workdir / "outputs/parsing/mpd/seed-0/train/schedule.csv").read_text().splitlines()
    assert schedule[0] == "epoch,alpha,beta,gamma" and len(schedule) == 2
    manifest = json.loads((workdir / "outputs/parsing/single/seed-0/export/manifest.json").read_text())
    assert manifest["counts"]["train"] > 0 and manifest["variant"] == "single"
    report = (workdir / "outputs/parsing-report/report.md").read_text()
    assert "| single |" in report and "| mpd |" in report
    assert (workdir / "outputs/parsing-report/figures/qualitative.png").is_file()

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fp")
    runs = client.search_runs([experiment.experiment_id])
    by_stage = {run.data.tags["fp.stage"]: run for run in runs}
    assert set(by_stage) == {
        "synth",
        "parsing-train@single-0",
        "parsing-eval@single-0",
        "parsing-train@mpd-0",
        "parsing-eval@mpd-0",
        "parsing-export@single-0",
        "parsing-report",
    }
    assert all(run.info.status == "FINISHED" for run in runs)
    train = by_stage["parsing-train@single-0"]
    assert [m.step for m in client.get_metric_history(train.info.run_id, "train/loss")] == [0, 1]
    assert by_stage["parsing-eval@single-0"].data.metrics["miou"] == pytest.approx(metrics["miou"])
    assert "mpd/residual" in by_stage["parsing-train@mpd-0"].data.metrics
