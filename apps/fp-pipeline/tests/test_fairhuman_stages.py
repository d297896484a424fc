"""The FairHuman stages (issue 16) on tiny params, through `fp` as dvc.yaml calls them: data -> base (base,
scene CLIP, base-alone eval) -> train / eval of a LoRA and a ControlNet variant, each an MLflow run (slow);
the train stage's resume (slow); the eval files' exact schema keys; the real-scale SDXL error naming the files;
and the small pieces with hand-checkable answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fp_pipeline.cli import app
from fp_pipeline.config import ParamsError
from fp_pipeline.stages.fairhuman_common import load_fairhuman_base, train_config, variant_names
from fp_pipeline.stages.fairhuman_eval import METRIC_KEYS, TRAIN_KEYS
from fp_pipeline.stages.fairhuman_scores import _bootstrap_fd, regional_rows
from fp_pipeline.stages.fairhuman_train import last_epoch_means

ROOT = Path(__file__).resolve().parents[3]
EVALUATION_KEYS = {
    "variant", "module", "weighting", "seed", "lora_rank", "images", "features", "fd_floor", "unavailable",
}  # fmt: skip


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    fh = params["fairhuman"]
    fh["data"]["train"].update(num_images=12)
    fh["data"]["test"].update(num_images=6)
    fh["data"]["common"].update(supersample=1)
    fh["base"] = {
        "resolution": 64,
        "vae_block_out_channels": [8, 8, 8, 8],
        "vae_norm_num_groups": 4,
        "unet_block_out_channels": [16, 16],
        "unet_cross_attention": [True, False],
        "unet_attention_head_dim": 8,
        "unet_norm_num_groups": 8,
        "text_hidden_size": 16,
        "text_layers": 1,
        "text_heads": 2,
        "text_intermediate_size": 32,
        "text_max_length": 32,
        "vae_epochs": 1,
        "unet_epochs": 1,
        "vae_batch_size": 4,
        "unet_batch_size": 4,
        "max_steps_per_epoch": 2,
        "unet_warmup_steps": 1,
        "num_samples": 2,
        "sample_steps": 2,
        "flip": False,
    }
    fh["clip"] = {
        "model": {"image_size": 32, "vision_width": 16, "vision_layers": 1, "vision_heads": 2,
                  "text_width": 16, "text_layers": 1, "text_heads": 2, "context_length": 32, "embed_dim": 8},
        "train": {"epochs": 1, "batch_size": 4, "warmup_steps": 1},
    }  # fmt: skip
    fh["train"].update(
        epochs=2, batch_size=4, max_steps_per_epoch=2, lora_rank=2, validation_count=2, validation_steps=2
    )
    fh["run"] = ["lora-mpd", "controlnet-ls"]
    fh["seeds"] = [0, 1]
    fh["sample_every"] = 2
    fh["eval"].update(steps=2, bootstrap=5, speed_images=2, grid_images=2)
    return params


def _isolate(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(path / "no-weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(path / "no-hub-cache"))


def _fp(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, f"fp {' '.join(args)} failed:\n{result.output}\n{result.exception!r}"
    return result.output


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the tiny params, the rendered scenes and the trained base + scene CLIP."""
    path = tmp_path_factory.mktemp("fairhuman")
    (path / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(path, monkeypatch)
        _fp("fairhuman", "data")
        _fp("fairhuman", "base")
    return path


@pytest.mark.slow
def test_every_fairhuman_stage_runs_writes_the_schema_and_is_tracked(
    prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    _isolate(prepared, monkeypatch)
    assert (prepared / "outputs/fairhuman/data-contact-sheet.png").stat().st_size > 1000
    assert (prepared / "outputs/fairhuman/base/unet/config.json").is_file()
    assert (prepared / "outputs/fairhuman/clip/manifest.json").is_file()
    base = json.loads((prepared / "outputs/fairhuman/base-eval/metrics.json").read_text())
    assert set(base) == set(METRIC_KEYS) and base["speed_ratio"] == 1.0 and base["extra_parameters"] == 0.0
    # lora-mpd as dvc.yaml calls it (every seed in one process), controlnet-ls one seed by --seed
    for variant, seed_args in (("lora-mpd", ()), ("controlnet-ls", ("--seed", "0"))):
        _fp("fairhuman", "train", "--variant", variant, *seed_args)
        trained = prepared / f"outputs/fairhuman/runs/{variant}/train"
        assert sorted(p.name for p in trained.iterdir()) == (
            ["seed-0", "seed-1"] if not seed_args else ["seed-0"]
        )
        assert (trained / "seed-0/model/final").is_dir() and (trained / "seed-0/train.json").is_file()
        assert not (prepared / f"outputs/checkpoints/fairhuman-{variant}-seed-0").exists()
        _fp("fairhuman", "eval", "--variant", variant, *seed_args)
        gathered = json.loads((prepared / f"outputs/fairhuman/runs/{variant}/metrics.json").read_text())
        assert sorted(gathered) == (["seed-0", "seed-1"] if not seed_args else ["seed-0"])
        evaluated = prepared / f"outputs/fairhuman/runs/{variant}/eval/seed-0"
        metrics = json.loads((evaluated / "metrics.json").read_text())
        assert gathered["seed-0"] == metrics
        assert set(metrics) == set(METRIC_KEYS) | set(TRAIN_KEYS)
        assert all(isinstance(v, float) for v in metrics.values())
        assert metrics["speed_ratio"] == pytest.approx(
            metrics["seconds_per_image"] / metrics["base_seconds_per_image"]
        )
        assert metrics["extra_megabytes"] == pytest.approx(metrics["extra_parameters"] * 4 / 1e6)
        assert metrics["weight_global"] + metrics["weight_face"] + metrics["weight_hand"] > 0
        evaluation = json.loads((evaluated / "evaluation.json").read_text())
        assert set(evaluation) == EVALUATION_KEYS
        assert set(evaluation["fd_floor"]) == {"global", "face", "hand"}
        assert set(evaluation["unavailable"]) == {"hps_v2", "image_reward", "mediapipe"}
        assert evaluation["unavailable"]["hps_v2"].startswith("unavailable: place HPS_v2_compressed.pt at ")
        samples = prepared / f"outputs/fairhuman/runs/{variant}/samples/seed-0.png"
        assert evaluation["images"] == 6 and samples.stat().st_size > 1000
    lora = json.loads((prepared / "outputs/fairhuman/runs/lora-mpd/eval/seed-1/evaluation.json").read_text())
    control = json.loads(
        (prepared / "outputs/fairhuman/runs/controlnet-ls/eval/seed-0/evaluation.json").read_text()
    )
    assert (lora["module"], lora["weighting"], lora["lora_rank"], lora["seed"]) == ("lora", "mpd", 2, 1)
    assert (control["module"], control["lora_rank"]) == ("controlnet", None)

    runs = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["fp"], output_format="list")}
    assert {
        "fairhuman-data",
        "fairhuman-base",
        "fairhuman-train@lora-mpd-0",
        "fairhuman-train@lora-mpd-1",
        "fairhuman-eval@lora-mpd-1",
        "fairhuman-eval@controlnet-ls-0",
    } <= set(runs)
    train_run = runs["fairhuman-train@lora-mpd-0"]
    assert train_run.data.tags["fp.paper"] == "fairhuman" and "train/loss_face" in train_run.data.metrics
    client = mlflow.MlflowClient()
    samples = [a.path for a in client.list_artifacts(train_run.info.run_id, "samples")]
    assert samples, "the validation images were not logged"


@pytest.mark.slow
def test_the_train_stage_resumes_to_the_weights_of_an_uninterrupted_run(
    prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    import fp_diffusion.fairhuman.train as trainer
    from fp_pipeline.stages.fairhuman_train import train_checkpoint_dir, train_stage

    _isolate(prepared, monkeypatch)
    params = yaml.safe_load((prepared / "params.yaml").read_text())
    params["fairhuman"]["sample_every"] = 0
    (prepared / "params-resume.yaml").write_text(yaml.safe_dump(params))
    weights = Path("outputs/fairhuman/runs/lora-ls/train/seed-0/model/final/pytorch_lora_weights.safetensors")
    train_stage(params_path=Path("params-resume.yaml"), variant="lora-ls", seed=0, progress=False)
    reference = load_file(weights)
    shutil.rmtree("outputs/fairhuman/runs/lora-ls")

    calls, real_step = [0], trainer._train_step

    def failing_step(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls[0] += 1
        if calls[0] == 3:  # the first step of epoch 2: epoch 1's checkpoint is on disk
            raise KeyboardInterrupt("killed")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "_train_step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        train_stage(params_path=Path("params-resume.yaml"), variant="lora-ls", seed=0, progress=False)
    assert any(train_checkpoint_dir("lora-ls", 0).iterdir()) and not weights.exists()
    monkeypatch.setattr(trainer, "_train_step", real_step)
    train_stage(params_path=Path("params-resume.yaml"), variant="lora-ls", seed=0, progress=False)
    resumed = load_file(weights)
    assert resumed.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=0)
    summary = json.loads(Path("outputs/fairhuman/runs/lora-ls/train/seed-0/train.json").read_text())
    assert set(summary["last_epoch"]) == set(TRAIN_KEYS)


def test_real_scale_sdxl_fails_naming_the_missing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fp_core.weights import WeightsNotFoundError

    _isolate(tmp_path, monkeypatch)
    params = _tiny_params()
    params["fairhuman"].update(base_model="stabilityai/stable-diffusion-xl-base-1.0", vae_model=None)
    with pytest.raises(WeightsNotFoundError) as error:
        load_fairhuman_base(params)
    message = str(error.value)
    assert "stabilityai/stable-diffusion-xl-base-1.0" in message
    for name in ("unet/diffusion_pytorch_model.safetensors", "text_encoder_2/model.safetensors"):
        assert name in message
    params["fairhuman"]["vae_model"] = "madebyollin/sdxl-vae-fp16-fix"
    with pytest.raises(
        WeightsNotFoundError, match="diffusion_pytorch_model.safetensors|config.json"
    ) as error:
        load_fairhuman_base(params)
    assert "madebyollin/sdxl-vae-fp16-fix" in str(error.value)

    params["fairhuman"]["eval"]["clip"] = "ViT-L-14/openai"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(app, ["fairhuman", "base", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "madebyollin/sdxl-vae-fp16-fix" in result.output and "fp: error:" in result.output


def test_variant_settings_merge_train_then_variant_then_seed() -> None:
    params = _tiny_params()
    params["fairhuman"]["seeds"] = [0, 3]
    config = train_config(params, "lora-mpd-r4", 3)
    assert (config.module, config.weighting, config.lora_rank, config.seed) == ("lora", "mpd", 4, 3)
    assert config.batch_size == params["fairhuman"]["train"]["batch_size"]
    with pytest.raises(ParamsError, match="seed 5 is not in fairhuman.seeds"):
        train_config(params, "lora-mpd", 5)
    with pytest.raises(ParamsError, match="not a key of fairhuman.variants"):
        train_config(params, "lora-nope", 0)
    params["fairhuman"]["run"] = ["lora-mpd", "lora-nope"]
    with pytest.raises(ParamsError, match=r"\['lora-nope'\] are not keys"):
        variant_names(params)


def test_a_stage_runs_every_seed_or_the_one_asked_for() -> None:
    from fp_pipeline.stages.fairhuman_common import eval_dir, model_dir, samples_file, stage_seeds, train_dir

    params = _tiny_params()
    params["fairhuman"]["seeds"] = [2, 0]
    assert stage_seeds(params, None) == [2, 0] and stage_seeds(params, 0) == [0]
    with pytest.raises(ParamsError, match=r"seed 1 is not in fairhuman.seeds \[2, 0\]"):
        stage_seeds(params, 1)
    runs = Path("outputs/fairhuman/runs/lora-ls")
    assert model_dir("lora-ls", 2) == train_dir("lora-ls", 2) / "model" == runs / "train/seed-2/model"
    assert (
        eval_dir("lora-ls", 2) == runs / "eval/seed-2"
        and samples_file("lora-ls", 2) == runs / "samples/seed-2.png"
    )
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("fairhuman-train", "fairhuman-eval"):  # one stage per variant; its outs hold every seed
        assert dvc[stage]["matrix"] == {"variant": "${fairhuman.run}"} and "--seed" not in dvc[stage]["cmd"]
    assert dvc["fairhuman-train"]["outs"] == ["outputs/fairhuman/runs/${item.variant}/train"]
    assert "outputs/fairhuman/runs/${item.variant}/train" in dvc["fairhuman-eval"]["deps"]


def test_last_epoch_means_take_the_last_epoch_record() -> None:
    keys = [
        "loss_global",
        "loss_face",
        "loss_hand",
        "fairhuman/w_global",
        "fairhuman/w_face",
        "fairhuman/w_hand",
    ]
    first = {f"epoch/{k}": 1.0 for k in keys}
    last = {f"epoch/{k}": float(i) for i, k in enumerate(keys)}
    logged = [{"train/loss": 9.0}, first, {"train/loss": 8.0}, last, {"train/loss": 7.0}]
    assert last_epoch_means(logged) == {
        "train_loss_global": 0.0, "train_loss_face": 1.0, "train_loss_hand": 2.0,
        "weight_global": 3.0, "weight_face": 4.0, "weight_hand": 5.0,
    }  # fmt: skip
    with pytest.raises(RuntimeError, match="no epoch ended"):
        last_epoch_means([{"train/loss": 1.0}])


class _MeanColour:
    """A stand-in CLIP whose 'embedding' of an image is its mean colour (3-d)."""

    image_size = 3

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))


def test_region_rows_follow_their_images_and_the_bootstrap_of_identical_sets_is_zero() -> None:
    images = torch.zeros(2, 3, 8, 8)
    images[1] = 1.0
    images[0, :, 0:2, 0:2] = 0.5
    boxes = [[[0, 0, 2, 2]], [[4, 4, 6, 6], [0, 0, 1, 1]]]
    feats, owner = regional_rows(_MeanColour(), images, boxes)
    assert owner.tolist() == [0, 1, 1]
    # the image-0 crop (2 x 2 box, padding 0.25 -> side 3 = the input side: no resize) is 4 of 9 pixels at 0.5
    np.testing.assert_allclose(feats[:, 0], [0.5 * 4 / 9, 1.0, 1.0], atol=1e-6)
    rng = np.random.default_rng(0)
    gen = rng.normal(size=(12, 3))
    fd, se = _bootstrap_fd(gen, gen.copy(), np.repeat(np.arange(6), 2), 6, 20, 0)
    assert abs(fd) < 1e-6 and se < 1e-6
    shifted, _ = _bootstrap_fd(gen + 1.0, gen, np.repeat(np.arange(6), 2), 6, 20, 0)
    assert shifted == pytest.approx(3.0, abs=1e-6)  # |mean shift|^2 = 3, same covariances


def test_the_cli_lists_the_fairhuman_commands() -> None:
    result = CliRunner().invoke(app, ["fairhuman", "--help"])
    assert result.exit_code == 0
    for command in ("data", "base", "train", "eval", "report"):
        assert command in result.output
