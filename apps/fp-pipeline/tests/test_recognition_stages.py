"""The recognition stages end to end on a tiny config: data -> pretrain -> train -> eval -> report, each an
MLflow run; the `recognition` typer sub-app drives the same stage functions. Both tests train several tiny
networks (10-20 s on a shared CPU), hence `slow`: run them with `-m slow`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from fp_pipeline.stages import recognition as stages
from fp_pipeline.stages.recognition import recognition_app

ROOT = Path(__file__).resolve().parents[3]


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    rec = params["recognition"]
    rec["trials"] = [0, 1]
    rec["synth"].update(
        train_identities=6,
        train_images_per_identity=3,
        eval_identities_per_group=3,
        eval_images_per_identity=2,
        pairs=20,
        bin_identities=3,
        bin_images_per_identity=2,
        bin_pairs=20,
        bin_sets={"lfw": {}, "cfp_fp": {"max_yaw": 0.2}},
        supersample=1,
    )
    rec["data"]["bin_sets"] = ["lfw", "cfp_fp"]
    rec["model"].update(input_size=16, embedding_size=8, width=4)
    rec["train"].update(epochs=1, batch_size=6, warmup_epochs=0, milestones=[])
    rec["pretrain"]["sources"] = {"none": None, "folder": "outputs/recognition/data/train"}
    rec["eval"]["batch_size"] = 32
    return params


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return tmp_path


def _fp(*args: str) -> None:
    app = typer.Typer()
    app.add_typer(recognition_app, name="recognition")
    result = CliRunner().invoke(app, ["recognition", *args, "--no-progress"])
    assert result.exit_code == 0, (
        f"fp recognition {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
    )


@pytest.mark.slow
def test_every_stage_runs_and_is_tracked(workdir: Path) -> None:
    import mlflow

    params = Path("params.yaml")
    _fp("data")
    assert (workdir / "outputs/recognition/data/train_rec/train.rec").is_file()
    stages.pretrain_stage(params_path=params, source="none", progress=False)
    none = json.loads((workdir / "outputs/recognition/pretrain/none/manifest.json").read_text())
    assert none["backbone"] is None
    for trial in ("0", "1"):  # the commands exactly as dvc.yaml calls them
        _fp("train", "--loss", "arcface", "--trial", trial, "--pretrain", "none")
        _fp("eval", "--loss", "arcface", "--trial", trial)
    for trial in (0, 1):
        stages.train_stage(params_path=params, loss="adaface", trial=trial, progress=False)
        stages.eval_stage(params_path=params, loss="adaface", trial=trial, progress=False)
    _fp("report")

    run = workdir / "outputs/recognition/runs/adaface-1"
    assert {"backbone.safetensors", "backbone.json", "head.safetensors", "history.json"} <= {
        p.name for p in (run / "model").iterdir()
    }
    metrics = json.loads((run / "eval/metrics.json").read_text())
    assert {"bins/lfw", "bins/cfp_fp", "bins/mean", "rfw/light", "rfw/dark", "rfw/disparate_impact"} <= set(
        metrics
    )
    assert 0 <= metrics["rfw/disparate_impact"] <= 1
    roc = json.loads((run / "eval/roc.json").read_text())
    assert set(roc) == {"lfw", "cfp_fp", "RFW light", "RFW dark"} and roc["lfw"]["fpr"][0] == 0.0

    report = (workdir / "outputs/recognition-report/report.md").read_text()
    for title in ("Table 2", "Table 3", "Table 4", "Findings"):
        assert title in report
    assert "| ArcFace (pretrain: none) | 2 |" in report and " ± " in report
    assert "chance" in report and "group" in report
    for figure in ("group_accuracy.png", "roc.png"):
        assert (workdir / "outputs/recognition-report/figures" / figure).stat().st_size > 1000

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["fp"], output_format="list")
    names = sorted(r.info.run_name for r in runs)
    assert names.count("recognition-data") == 1 and "recognition-pretrain@none" in names
    assert {"recognition-train@arcface-0", "recognition-eval@adaface-1", "recognition-report"} <= set(names)
    assert all(r.info.status == "FINISHED" for r in runs)
    train_run = next(r for r in runs if r.info.run_name == "recognition-train@arcface-0")
    assert "train/loss" in train_run.data.metrics and train_run.data.tags["fp.pretrain"] == "none"


@pytest.mark.slow
def test_pretraining_hands_over_the_backbone_only(workdir: Path) -> None:
    from safetensors.torch import load_file

    params = Path("params.yaml")
    stages.data_stage(params_path=params, progress=False)
    stages.pretrain_stage(params_path=params, source="folder", progress=False)
    backbone = workdir / "outputs/recognition/pretrain/folder/model"
    assert json.loads((backbone.parent / "manifest.json").read_text())["backbone"] == "model"
    stages.train_stage(params_path=params, loss="adaface", trial=0, pretrain="folder", progress=False)
    info = json.loads((workdir / "outputs/recognition/runs/adaface-0/train.json").read_text())
    assert info["pretrain"] == "folder"
    config = json.loads((workdir / "outputs/recognition/runs/adaface-0/model/train_config.json").read_text())
    assert config["init_backbone"] == "outputs/recognition/pretrain/folder/model"
    head = load_file(str(workdir / "outputs/recognition/runs/adaface-0/model/head.safetensors"))
    assert head["classifier.weight"].shape == (6, 8)
    with pytest.raises(ValueError, match="unknown pretraining source"):
        stages.pretrain_stage(params_path=params, source="nowhere", progress=False)
