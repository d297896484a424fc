"""The recognition stages: the source x loss x trial matrix (names, paths, dvc.yaml: one stage per source or
source and loss, running every trial), that training starts from the trial's pretrained backbone, and the
chain end to end on a tiny config (data -> pretrain on a tiny identity folder -> train -> eval -> report, each
trial an MLflow run; one trial alone gives what it gave among all). The end-to-end tests train several tiny
networks (10-30 s on a shared CPU), hence `slow`: run them with `-m slow`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from stage_cli import run_fp  # noqa: I001  (test helper on the pytest pythonpath)

from fp_pipeline.config import ParamsError
from fp_pipeline.stages import recognition_train
from fp_pipeline.stages.recognition_common import (
    checkpoint_dir,
    eval_dir,
    metrics_file,
    pretrain_dir,
    pretrain_settings,
    pretrained_backbone,
    run_name,
    run_sources,
    stage_trials,
    train_dir,
    train_settings,
)
from fp_pipeline.stages.recognition_pretrain import pretrain_stage
from fp_pipeline.stages.recognition_report_stage import _pretraining_sizes
from fp_pipeline.stages.recognition_train import train_stage

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
    rec["pretrain"]["sources"] = {"none": None, "rand": "ids/rand", "qd": "ids/qd"}
    rec["pretrain"]["run"] = ["none", "qd"]
    rec["pretrain"]["train"] = {"loss": "arcface", "epochs": 2, "milestones": []}
    rec["eval"]["batch_size"] = 32
    return params


@pytest.fixture()
def workdir(stage_workdir: Path) -> Path:
    (stage_workdir / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return stage_workdir


def _fp(*args: str) -> str:
    return run_fp("recognition", *args)


def _image_folder(root: Path, identities: int, images: int, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for i in range(identities):
        (root / f"id{i}").mkdir(parents=True)
        base = rng.integers(0, 255, (size, size, 3))
        for n in range(images):
            pixels = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"id{i}" / f"{n}.png")
    return root


def test_the_matrix_names_and_paths() -> None:
    assert run_name("qd", "adaface", 2) == "qd-adaface-2"
    assert train_dir("rand", "arcface", 1) == Path("outputs/recognition/runs/rand/arcface/train/1")
    assert eval_dir("rand", "arcface", 1) == Path("outputs/recognition/runs/rand/arcface/eval/1")
    assert metrics_file("rand", "arcface") == Path("outputs/recognition/runs/rand/arcface/metrics.json")
    assert pretrain_dir("qd", 2) == Path("outputs/recognition/pretrain/qd/2")
    assert checkpoint_dir(run_name("none", "arcface", 0)) == Path(
        "outputs/checkpoints/recognition-none-arcface-0"
    )
    params = _tiny_params()
    assert run_sources(params) == ["none", "qd"]
    assert stage_trials(params, None) == [0, 1] and stage_trials(params, 1) == [1]
    with pytest.raises(ParamsError, match=r"trial 3 is not one of recognition.trials \[0, 1\]"):
        stage_trials(params, 3)
    for bad in (["none", "none"], ["elsewhere"], [], "none"):
        params["recognition"]["pretrain"]["run"] = bad
        with pytest.raises(ParamsError, match=r"recognition\.pretrain\.run"):
            run_sources(params)


def test_dvc_matrix_writes_where_the_stages_read() -> None:
    """One stage per source (pretraining) and per source and loss (training, evaluation), each running every
    trial: no ``--trial`` in the commands, and outputs that hold every trial's folder."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["recognition"]
    assert params["pretrain"]["run"] == ["none", "rand", "qd"] and "use" not in params["pretrain"]
    item = {"source": "qd", "loss": "adaface"}

    def fill(text: str) -> str:
        for key, value in item.items():
            text = text.replace(f"${{item.{key}}}", str(value))
        return text

    def outs(stage: str) -> list[str]:
        return [fill(next(iter(o)) if isinstance(o, dict) else o) for o in dvc[stage]["outs"]]

    for stage in ("recognition-train", "recognition-eval"):
        assert dvc[stage]["matrix"] == {
            "source": "${recognition.pretrain.run}",
            "loss": ["arcface", "adaface"],
        }
        assert fill(dvc[stage]["cmd"]).split() == [
            "fp", "recognition", stage.split("-")[1], "--source", "qd", "--loss", "adaface", "--no-progress"
        ]  # fmt: skip
        assert "recognition.trials" in dvc[stage]["params"]
    assert outs("recognition-train") == [str(train_dir("qd", "adaface", 0).parent)]
    assert outs("recognition-eval") == [str(eval_dir("qd", "adaface", 0).parent)]
    assert fill(next(iter(dvc["recognition-eval"]["metrics"][0]))) == str(metrics_file("qd", "adaface"))
    assert outs("recognition-train")[0] in [fill(d) for d in dvc["recognition-eval"]["deps"]]
    assert str(pretrain_dir("qd", 0).parent) in [fill(d) for d in dvc["recognition-train"]["deps"]]
    pretrain = dvc["recognition-pretrain"]
    assert pretrain["matrix"] == {"source": "${recognition.pretrain.run}"}
    assert fill(pretrain["cmd"]).split() == [
        "fp",
        "recognition",
        "pretrain",
        "--source",
        "qd",
        "--no-progress",
    ]
    assert outs("recognition-pretrain") == [str(pretrain_dir("qd", 0).parent)]
    assert "outputs/qdgs-faces/identities" in pretrain["deps"]


def _parameters(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state = load_file(str(path))
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def test_the_source_names_its_backbone(workdir: Path) -> None:
    for source, backbone in (("none", None), ("rand", "model")):  # as pretrain_stage writes them
        (workdir / pretrain_dir(source, 1)).mkdir(parents=True)
        (workdir / pretrain_dir(source, 1) / "manifest.json").write_text(
            json.dumps({"source": source, "backbone": backbone, "identities": 5, "images": 45})
        )
    assert pretrained_backbone("none", 1) is None
    assert pretrained_backbone("rand", 1) == Path("outputs/recognition/pretrain/rand/1/model")
    assert _pretraining_sizes(["none", "rand", "qd"], 1) == "; sets: rand 5 identities / 45 images"
    with pytest.raises(ParamsError, match="pretrain --source rand --trial 0"):
        pretrained_backbone("rand", 0)  # each trial has its own pretraining
    with pytest.raises(ParamsError, match="pretrain --source qd --trial 1"):
        pretrained_backbone("qd", 1)
    with pytest.raises(
        ParamsError, match=r"ids/qd of source 'qd' not found: run `dvc repro qdgs-faces-export@qd`"
    ):
        pretrain_stage(params_path=Path("params.yaml"), source="qd", progress=False)
    with pytest.raises(ParamsError, match="trial 7 is not one of recognition.trials"):
        pretrain_stage(params_path=Path("params.yaml"), source="none", trial=7, progress=False)
    with pytest.raises(ParamsError, match="unknown pretraining source 'nowhere'"):
        pretrain_stage(params_path=Path("params.yaml"), source="nowhere", progress=False)
    # a training stage checks every trial's pretraining before it trains any
    with pytest.raises(ParamsError, match="pretrain --source rand --trial 0"):
        train_stage(params_path=Path("params.yaml"), source="rand", loss="arcface", progress=False)


def test_each_trial_pretrains_with_its_own_seed() -> None:
    params = _tiny_params()
    seeds = [pretrain_settings(params, t)["seed"] for t in (0, 1)]
    assert seeds == [0, 1]
    assert pretrain_settings(params, 1)["epochs"] == params["recognition"]["pretrain"]["train"]["epochs"]


@pytest.mark.slow
def test_train_starts_from_the_sources_backbone(workdir: Path) -> None:
    """lr 1e-9: training leaves the weights where they started, so the run's backbone shows its start."""
    from fp_recognition.train import RecognitionTrainConfig, build_models, save_backbone

    params = _tiny_params()
    params["recognition"]["train"].update(lr=1e-9, momentum=0.0, weight_decay=0.0, augment={"enabled": False})
    params["recognition"]["data"]["train"] = str(_image_folder(workdir / "train", 3, 2))
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    settings = train_settings(params, "arcface", 0)
    config = RecognitionTrainConfig.from_dict({**settings, "seed": 7})
    rand_backbone, _ = build_models(config, 3)
    rand_dir = workdir / pretrain_dir("rand", 0)
    save_backbone(rand_backbone, rand_dir / "model", config.backbone_config())
    (rand_dir / "manifest.json").write_text(json.dumps({"source": "rand", "backbone": "model"}))
    pretrain_stage(params_path=Path("params.yaml"), source="none", trial=0, progress=False)

    for source in ("none", "rand"):
        train_stage(params_path=Path("params.yaml"), source=source, loss="arcface", trial=0, progress=False)
    fresh, _ = build_models(RecognitionTrainConfig.from_dict(settings), 3)
    expected = {"none": fresh.state_dict(), "rand": rand_backbone.state_dict()}
    for source in ("none", "rand"):
        run = workdir / train_dir(source, "arcface", 0)
        trained = _parameters(run / "model/backbone.safetensors")
        other = expected["rand" if source == "none" else "none"]
        assert all(torch.allclose(v, expected[source][k], atol=1e-6) for k, v in trained.items()), source
        assert not all(torch.allclose(v, other[k], atol=1e-3) for k, v in trained.items()), source
        info = json.loads((run / "train.json").read_text())
        assert info["source"] == source
        assert info["init_backbone"] == (
            None if source == "none" else "outputs/recognition/pretrain/rand/0/model"
        )
    with pytest.raises(ParamsError, match="pretrain --source qd --trial 0"):
        train_stage(params_path=Path("params.yaml"), source="qd", loss="arcface", trial=0, progress=False)
    with pytest.raises(ParamsError, match="unknown pretraining source"):
        train_stage(params_path=Path("params.yaml"), source="nowhere", loss="arcface", trial=0)
    with pytest.raises(ParamsError, match="unknown recognition loss 'triplet'"):
        train_stage(params_path=Path("params.yaml"), source="none", loss="triplet", trial=0)


@pytest.mark.slow
def test_the_chain_per_source_end_to_end(workdir: Path) -> None:
    import mlflow

    from fp_qdgs.faces import write_identity_folder

    _fp("data")
    assert (workdir / "outputs/recognition/data/train_rec/train.rec").is_file()
    pixels = np.random.default_rng(1).integers(0, 255, (4, 3, 16, 16, 3), dtype=np.uint8)
    write_identity_folder(
        pixels, np.arange(4), workdir / "ids/qd", measures=np.zeros((4, 2)), provenance={}, image_size=16
    )
    for source in ("none", "qd"):  # the commands exactly as dvc.yaml calls them: every trial per process
        _fp("pretrain", "--source", source)
        for loss in ("arcface", "adaface"):
            _fp("train", "--source", source, "--loss", loss)
            _fp("eval", "--source", source, "--loss", loss)
    _fp("report")

    pretrained = json.loads((workdir / pretrain_dir("qd", 1) / "manifest.json").read_text())
    assert (pretrained["identities"], pretrained["images"], pretrained["seed"]) == (4, 12, 1)
    run = workdir / train_dir("qd", "adaface", 1)
    config = json.loads((run / "model/train_config.json").read_text())
    assert config["init_backbone"] == "outputs/recognition/pretrain/qd/1/model"
    metrics = json.loads((workdir / eval_dir("qd", "adaface", 1) / "metrics.json").read_text())
    assert {"bins/lfw", "bins/mean", "rfw/light", "rfw/dark", "rfw/disparate_impact"} <= set(metrics)
    assert 0 <= metrics["rfw/disparate_impact"] <= 1
    assert (
        json.loads((workdir / eval_dir("qd", "adaface", 1) / "evaluation.json").read_text())["source"] == "qd"
    )
    gathered = json.loads((workdir / metrics_file("qd", "adaface")).read_text())
    assert list(gathered) == ["trial-0", "trial-1"] and gathered["trial-1"] == metrics
    assert gathered["trial-0"] != gathered["trial-1"]  # the trials differ by seed

    # one trial alone gives what it gave among all (no state carried from trial to trial in a process)
    first_weights = _parameters(run / "model/backbone.safetensors")
    _fp("train", "--source", "qd", "--loss", "adaface", "--trial", "1")
    _fp("eval", "--source", "qd", "--loss", "adaface", "--trial", "1")
    again = _parameters(run / "model/backbone.safetensors")
    assert all(torch.equal(v, first_weights[k]) for k, v in again.items())
    assert json.loads((workdir / eval_dir("qd", "adaface", 1) / "metrics.json").read_text()) == metrics
    assert json.loads((workdir / metrics_file("qd", "adaface")).read_text()) == gathered  # trial 0 kept

    report = (workdir / "outputs/recognition-report/report.md").read_text()
    for title in ("Table 2", "Table 3", "Table 4", "Verdicts", "Findings"):
        assert title in report
    assert "| ArcFace, pretrain QD | 2 |" in report and "| AdaFace, pretrain None | 2 |" in report
    assert "ArcFace, rfw/dark: QD " in report and "vs Rand: not run" in report
    summary = json.loads((workdir / "outputs/recognition-report/summary.json").read_text())
    assert len(summary["pretraining_verdicts"]) == 8  # 2 losses x 2 keys x (rand, none)
    for figure in ("group_accuracy.png", "roc.png"):
        assert (workdir / "outputs/recognition-report/figures" / figure).stat().st_size > 1000

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["fp"], output_format="list")
    names = [r.info.run_name for r in runs]
    assert {
        "recognition-pretrain@qd-1",
        "recognition-train@qd-arcface-0",
        "recognition-eval@none-adaface-1",
    } <= set(names)
    assert all(r.info.status == "FINISHED" for r in runs)
    per_trial = [n for n in names if n.startswith("recognition-eval@none-arcface-")]
    assert sorted(per_trial) == ["recognition-eval@none-arcface-0", "recognition-eval@none-arcface-1"]
    train_run = next(r for r in runs if r.info.run_name == "recognition-train@qd-arcface-0")
    assert "train/loss" in train_run.data.metrics and train_run.data.tags["fp.pretrain"] == "qd"


@pytest.mark.slow
def test_training_resumes_from_its_checkpoint(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the run's checkpoints kept (as after a crash), a rerun resumes under the source's own
    checkpoint directory and ends with the same backbone."""
    import mlflow

    params = _tiny_params()
    params["recognition"]["data"]["train"] = str(_image_folder(workdir / "train", 3, 4))
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    pretrain_stage(params_path=Path("params.yaml"), source="none", trial=0, progress=False)
    monkeypatch.setattr(recognition_train.shutil, "rmtree", lambda *args, **kwargs: None)
    weights = workdir / train_dir("none", "arcface", 0) / "model/backbone.safetensors"
    train_stage(params_path=Path("params.yaml"), source="none", loss="arcface", trial=0, progress=False)
    assert (workdir / checkpoint_dir(run_name("none", "arcface", 0))).is_dir()
    first = _parameters(weights)
    train_stage(params_path=Path("params.yaml"), source="none", loss="arcface", trial=0, progress=False)
    assert all(torch.equal(v, first[k]) for k, v in _parameters(weights).items())
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["fp"], output_format="list")
    assert any(
        "fp.resumed_from_epoch" in r.data.tags
        for r in runs
        if r.info.run_name.startswith("recognition-train")
    )
