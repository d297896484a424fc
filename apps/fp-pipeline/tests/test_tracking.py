from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fp_pipeline.tracking import data_version, stage_run, tracking_uri


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_default_store_is_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == "sqlite:///mlflow.db"


def test_data_version_reads_the_dvc_hash(tmp_path: Path) -> None:
    dvc_file = tmp_path / "data.dvc"
    dvc_file.write_text("outs:\n- md5: abc123.dir\n  path: data\n")
    assert data_version(dvc_file) == "abc123.dir"
    assert data_version(tmp_path / "missing.dvc") == "untracked"


def test_stage_run_records_params_metrics_tags_and_status(store: str, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    checkpoint = tmp_path / "model.bin"
    checkpoint.write_bytes(b"weights")
    with stage_run("parsing-train@single", params={"train": {"epochs": 2, "w": None}}) as run:
        run({"loss": 1.0, "bad name!": 2.0, "nan": float("nan")}, step=0)
        run({"loss": 0.5}, step=1)
        run.log_reference("model", checkpoint)
        figure, axis = plt.subplots()
        axis.plot([0, 1])
        run.log_figure(figure, "plots/curve.png")
        run_id = run.run_id

    client = mlflow.MlflowClient(tracking_uri=store)
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED"
    assert finished.data.params == {"train.epochs": "2", "train.w": "null"}
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0, 0.5]
    assert "bad name_" in finished.data.metrics and "nan" not in finished.data.metrics
    tags = finished.data.tags
    assert tags["fp.stage"] == "parsing-train@single" and tags["data.version"] == "untracked"
    assert tags["ref.model.sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/curve.png"]


def test_stage_run_marks_a_failed_stage(store: str) -> None:
    import mlflow

    with pytest.raises(ValueError), stage_run("boom", params={}) as run:
        run_id = run.run_id
        raise ValueError("bad input")
    assert mlflow.MlflowClient(tracking_uri=store).get_run(run_id).info.status == "FAILED"
