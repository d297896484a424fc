"""The stage commands end to end on a tiny config: synth -> train -> eval -> export -> report, each an MLflow run.

Two variants x two seeds, so the report's aggregation over seeds and its paired verdicts are exercised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from stage_cli import run_fp  # noqa: I001  (test helper on the pytest pythonpath)

ROOT = Path(__file__).resolve().parents[3]


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synth"].update(num_identities=10, images_per_identity=2, image_size=64)
    params["data"].update(root="outputs/synth", image_size=32)
    params["parsing"]["model"]["encoder_name"] = "resnet18"
    params["parsing"]["seeds"] = [0, 1]
    params["parsing"]["train"].update(epochs=1, batch_size=4, max_steps_per_epoch=2)
    params["parsing"]["variants"] = {
        "single": {},
        "mpd": {"weighting": "mpd"},
    }
    params["parsing"]["eval"].update(perturbations=["blur", "darkness"], severities=[1.0])
    params["parsing"]["export"].update(
        splits=["val", "test"], perturbations=["gaussian_noise", "darkness"], severities=[0.5]
    )
    return params


@pytest.fixture()
def workdir(stage_workdir: Path) -> Path:
    (stage_workdir / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return stage_workdir


_fp = run_fp


def test_every_stage_runs_and_is_tracked(workdir: Path) -> None:
    import mlflow

    from fp_parsing.export import read_export

    _fp("data", "synth", "--out", "outputs/synth")
    for variant in ("single", "mpd"):
        for seed in ("0", "1"):
            _fp("parsing", "train", "--variant", variant, "--seed", seed)
            _fp("parsing", "eval", "--variant", variant, "--seed", seed)
    _fp("parsing", "export", "--variant", "single", "--seed", "1")
    _fp("parsing", "report")

    metrics = json.loads((workdir / "outputs/parsing/single/seed-0/eval/metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0
    assert {"fairness/variance_mean", "robustness/drop", "iou/skin", "dice", "foreground_f1"} <= set(metrics)
    schedule = (workdir / "outputs/parsing/mpd/seed-0/train/schedule.csv").read_text().splitlines()
    assert schedule[0] == "epoch,alpha,beta,gamma" and len(schedule) == 2

    export = read_export(workdir / "outputs/parsing-export/single/seed-1")
    assert export.provenance["variant"] == "single" and export.provenance["seed"] == 1
    assert export.resolution == 32 and sorted(export.splits) == ["test", "val"]
    assert sorted(export.perturbed) == ["darkness-0.5", "gaussian_noise-0.5"]
    label, image = export.pairs("test")[0].load()
    assert label.shape == (32, 32) and image.shape == (32, 32, 3)
    assert len(export.perturbed_pairs("darkness", 0.5)) == export.counts["test"] > 0

    report = (workdir / "outputs/parsing-report/report.md").read_text()
    assert "2 seeds per variant" in report and "| single | 2 |" in report and "| mpd | 2 |" in report
    assert " ± " in report and "paired difference" in report
    assert (workdir / "outputs/parsing-report/figures/qualitative.png").is_file()
    summary = json.loads((workdir / "outputs/parsing-report/summary.json").read_text())
    assert summary["seeds"] == {"single": [0, 1], "mpd": [0, 1]}
    per_seed = summary["variants"]["single"]["miou"]["per_seed"]
    assert per_seed["0"] == pytest.approx(metrics["miou"]) and set(per_seed) == {"0", "1"}
    assert summary["verdicts"]["mpd"]["miou"]["seeds"] == [0, 1]

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fp")
    runs = client.search_runs([experiment.experiment_id])
    by_stage = {run.data.tags["fp.stage"]: run for run in runs}
    assert set(by_stage) == {
        "synth",
        *(f"parsing-{kind}@{v}-{s}" for kind in ("train", "eval") for v in ("single", "mpd") for s in (0, 1)),
        "parsing-export@single-1",
        "parsing-report",
    }
    assert all(run.info.status == "FINISHED" for run in runs)
    train = by_stage["parsing-train@single-0"]
    assert [m.step for m in client.get_metric_history(train.info.run_id, "train/loss")] == [0, 1]
    evaluation = by_stage["parsing-eval@single-0"]
    assert evaluation.data.metrics["miou"] == pytest.approx(metrics["miou"])
    assert evaluation.data.tags["fp.variant"] == "single" and evaluation.data.tags["fp.seed"] == "0"
    assert by_stage["parsing-export@single-1"].data.tags["fp.seed"] == "1"
    assert "mpd/residual" in by_stage["parsing-train@mpd-0"].data.metrics
    assert "single/miou_se" in by_stage["parsing-report"].data.metrics
