from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fp_pipeline.tracking import (
    data_version,
    dataset_context,
    dataset_version,
    paper_of,
    stage_run,
    tracking_uri,
)


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


# --- tags, experiment kind, input dataset, resume ------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "paper"),
    [
        ("parsing-train@single-0", "parsing"),
        ("gan-train", "parsing"),
        ("controlnet-eval@x", "parsing"),
        ("diffusion-sample", "parsing"),
        ("fairhuman-train", "fairhuman"),
        ("qdgs-train", "qdgs"),
        ("clip-eval", "qdgs"),
        ("recognition-eval@arcface-1", "qdgs"),
        ("synth", "shared"),
    ],
)
def test_paper_from_the_stage_prefix(stage: str, paper: str) -> None:
    assert paper_of(stage) == paper


def test_dataset_context_from_the_stage() -> None:
    assert dataset_context("parsing-train@single-0") == "training"
    assert dataset_context("parsing-eval@single-0") == "evaluation"
    assert dataset_context("parsing-export@single-0") == "inference"
    assert dataset_context("parsing-report") == "input"


def test_dataset_version_from_its_dvc_file_or_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data.dvc").write_text("outs:\n- md5: aaa.dir\n  path: data\n")
    Path("dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  synth:\n    outs:\n    - path: outputs/synth\n      md5: bbb.dir\n"
    )
    assert dataset_version("data") == "aaa.dir"
    assert dataset_version(tmp_path / "outputs" / "synth") == "bbb.dir"
    assert dataset_version("elsewhere") == "untracked"


def test_runs_are_tagged_and_read_their_dataset(store: str, tmp_path: Path) -> None:
    import mlflow

    (tmp_path / "data").mkdir()
    (tmp_path / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n")
    with stage_run(
        "parsing-train@mpd-2", params={"lr": 0.1}, variant="mpd", seed=2, dataset=tmp_path / "data"
    ) as run:
        run_id = run.run_id
    with stage_run("synth", params={}) as other:
        other_id = other.run_id

    client = mlflow.MlflowClient(tracking_uri=store)
    finished = client.get_run(run_id)
    tags = finished.data.tags
    assert tags["fp.stage"] == "parsing-train@mpd-2" and tags["fp.paper"] == "parsing"
    assert tags["fp.variant"] == "mpd" and tags["fp.seed"] == "2"
    assert tags["data.version"] == "0123456789abcdef0123456789abcdef.dir"
    assert tags["git.commit"] == "unknown" and "mlflow.source.git.commit" not in tags  # not in git
    (dataset_input,) = finished.inputs.dataset_inputs
    assert dataset_input.dataset.name == "data"
    assert dataset_input.dataset.digest == "0123456789abcdef0123456789abcdef.dir"
    assert str((tmp_path / "data").resolve()) in dataset_input.dataset.source
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"

    plain = client.get_run(other_id).data.tags
    assert plain["fp.paper"] == "shared" and plain["fp.variant"] == "none" and plain["fp.seed"] == "none"
    assert client.get_run(other_id).inputs.dataset_inputs == []


def test_the_experiment_opens_on_model_runs(store: str) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store)
    with stage_run("synth", params={}, experiment="fresh"):
        pass
    assert client.get_experiment_by_name("fresh").tags["mlflow.experimentKind"] == "custom_model_development"
    client.create_experiment("old", artifact_location=(Path.cwd() / "old").as_uri())
    with stage_run("synth", params={}, experiment="old"):
        pass
    assert client.get_experiment_by_name("old").tags["mlflow.experimentKind"] == "custom_model_development"
    client.set_experiment_tag(
        client.get_experiment_by_name("old").experiment_id, "mlflow.experimentKind", "x"
    )
    with stage_run("synth", params={}, experiment="old"):
        pass
    assert client.get_experiment_by_name("old").tags["mlflow.experimentKind"] == "x"  # a choice is kept


def test_a_resumed_stage_continues_its_run(store: str, tmp_path: Path) -> None:
    import mlflow

    (tmp_path / "data").mkdir()
    params = {"train": {"epochs": 4}}
    with (
        pytest.raises(KeyboardInterrupt),
        stage_run(
            "parsing-train@single-0", params=params, variant="single", seed=0, dataset=tmp_path / "data"
        ) as first,
    ):
        first({"loss": 1.0}, step=0)
        run_id = first.run_id
        assert not first.resumed
        raise KeyboardInterrupt  # the job is killed mid-training
    client = mlflow.MlflowClient(tracking_uri=store)
    assert client.get_run(run_id).info.status == "FAILED"

    with stage_run(
        "parsing-train@single-0",
        params={"train": {"epochs": 4, "resumed": True}},
        variant="single",
        seed=0,
        dataset=tmp_path / "data",
        run_id=run_id,
    ) as second:
        assert second.run_id == run_id and second.resumed
        second({"loss": 0.5}, step=1)

    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0, 0.5]
    assert finished.data.params == {"train.epochs": "4", "train.resumed": "True"}
    assert "fp.resumed.git.commit" in finished.data.tags
    assert len(finished.inputs.dataset_inputs) == 1
    assert len(client.search_runs([finished.info.experiment_id])) == 1


def test_resuming_an_unknown_run_starts_a_new_one(store: str) -> None:
    with (
        pytest.warns(UserWarning, match="starting a new run"),
        stage_run("parsing-train@single-0", params={}, run_id="0" * 32) as run,
    ):
        assert run.run_id != "0" * 32 and not run.resumed


def test_the_commit_fills_the_source_version(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from fp_pipeline import tracking

    monkeypatch.setattr(tracking, "git_commit", lambda: "abc123-dirty")
    with stage_run("parsing-report", params={}) as run:
        run_id = run.run_id
    tags = mlflow.MlflowClient(tracking_uri=store).get_run(run_id).data.tags
    assert tags["git.commit"] == "abc123-dirty" and tags["mlflow.source.git.commit"] == "abc123"
