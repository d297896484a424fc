"""The Pix2PixHD stages end to end on a tiny config, through `fp` as dvc.yaml calls them: synth -> parsing
train / export (two variants) -> clip-faces -> gan train / eval per variant -> gan report, each an MLflow run
(slow: several tiny trainings). Also the pieces with hand-checkable answers: the statistics, the
LPIPS-unavailable path and the verdict rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from stage_cli import run_fp  # noqa: I001  (test helper on the pytest pythonpath)

from fp_pipeline.stages.gan_common import CLIP_FD_LABEL, format_cell
from fp_pipeline.stages.gan_report import beats
from fp_pipeline.stages.generative_eval import bootstrap_se, lpips_or_reason, mean_se

ROOT = Path(__file__).resolve().parents[3]


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synth"].update(num_identities=20, images_per_identity=2, image_size=64)
    params["data"].update(root="outputs/synth", image_size=32)
    params["parsing"]["seeds"] = [0]
    params["parsing"]["train"].update(epochs=1, batch_size=4, max_steps_per_epoch=2)
    params["parsing"]["variants"] = {"single": {}, "mpd": {"weighting": "mpd"}}
    params["parsing"]["export"].update(perturbations=["blur"], severities=[0.5])
    params["clip_faces"].update(
        model={
            "image_size": 32,
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
    params["gan"]["model"].update(
        resolution=32,
        ngf=4,
        ndf=4,
        n_blocks=1,
        niter=1,
        niter_decay=0,
        batch_size=4,
        max_steps_per_epoch=3,
        num_samples=2,
    )
    params["gan"].update(sample_every=2)
    params["gan"]["eval"].update(bootstrap=5, grid_maps=2)
    return params


@pytest.fixture()
def workdir(stage_workdir: Path) -> Path:
    (stage_workdir / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return stage_workdir


_fp = run_fp


@pytest.mark.slow
def test_every_gan_stage_runs_and_is_tracked(workdir: Path) -> None:
    import mlflow

    _fp("data", "synth", "--out", "outputs/synth")
    for variant in ("single", "mpd"):
        _fp("parsing", "train", "--variant", variant, "--seed", "0")
        _fp("parsing", "export", "--variant", variant, "--seed", "0")
    _fp("gan", "clip-faces")
    zero_shot = json.loads((workdir / "outputs/clip-faces-zero-shot.json").read_text())
    assert set(zero_shot["pairs"]) == {"skin", "gender", "hair", "age"} and zero_shot["chance"] == 0.5
    assert (workdir / "outputs/clip-faces/manifest.json").is_file()
    for variant in ("single", "mpd"):
        _fp("gan", "train", "--variant", variant)
        assert (workdir / f"outputs/gan/{variant}/model/seed-0/generator.safetensors").is_file()
        _fp("gan", "eval", "--variant", variant)
        metrics = json.loads((workdir / f"outputs/gan/{variant}/eval/metrics.json").read_text())
        assert set(metrics[CLIP_FD_LABEL]) == {"test", "blur-0.5"}
        fd = metrics[CLIP_FD_LABEL]["test"]
        assert fd["mean"] >= 0 and fd["se"] >= 0 and fd["se_kind"] == "bootstrap over test images"
        assert metrics["LPIPS (alex)"].startswith("unavailable: place alexnet-owt-7be5be79.pth at ")
        assert (workdir / f"outputs/gan/{variant}/eval/fig6.png").stat().st_size > 1000
    _fp("gan", "report")
    report = (workdir / "outputs/gan-report/report.md").read_text()
    assert CLIP_FD_LABEL in report and "| single |" in report and "| blur-0.5 | mpd |" in report
    assert "## Verdict" in report and "unavailable: place" in report
    assert (workdir / "outputs/gan-report/figures/fig6.png").stat().st_size > 1000
    summary = json.loads((workdir / "outputs/gan-report/summary.json").read_text())
    assert summary["verdict"]["baseline"] == "single" and "mpd" in summary["verdict"]["variants"]

    runs = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["fp"], output_format="list")}
    expected = {
        "clip-faces",
        "gan-train@single",
        "gan-eval@single",
        "gan-train@mpd",
        "gan-eval@mpd",
        "gan-report",
    }
    assert expected <= set(runs)
    assert runs["gan-train@mpd"].data.tags["fp.paper"] == "parsing"
    assert "train/loss" in runs["gan-train@mpd"].data.metrics


def test_mean_se_on_a_hand_made_case() -> None:
    mean, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert se == pytest.approx(math.sqrt(5 / 3) / 2)  # sample sd sqrt(5/3), n = 4
    assert mean_se([7.0]) == (7.0, None)


def test_bootstrap_se_of_a_mean_matches_the_plug_in_formula() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    se = bootstrap_se(lambda idx: float(x[idx].mean()), len(x), samples=4000, seed=0)
    # the bootstrap s.e. of a mean is sd(ddof=0) / sqrt(n) = sqrt(8.25 / 10)
    assert se == pytest.approx(math.sqrt(8.25 / 10), rel=0.05)
    assert bootstrap_se(lambda idx: 3.0, 5, samples=10, seed=0) == 0.0
    assert se == bootstrap_se(lambda idx: float(x[idx].mean()), len(x), samples=4000, seed=0)


def test_bootstrap_fd_of_identical_sets_is_zero() -> None:
    from fp_metrics.generative import fid_from_features

    feats = np.random.default_rng(1).normal(size=(20, 3))
    se = bootstrap_se(lambda idx: fid_from_features(feats[idx], feats[idx]), 20, samples=20, seed=0)
    assert se == pytest.approx(0.0, abs=1e-9)


def test_lpips_without_local_weights_says_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    model, reason = lpips_or_reason("alex")
    assert model is None
    assert reason == (
        f"unavailable: place alexnet-owt-7be5be79.pth at {tmp_path / 'alexnet-owt-7be5be79.pth'} "
        "(from https://download.pytorch.org/models/alexnet-owt-7be5be79.pth)"
    )


def test_the_verdict_rule_and_cells() -> None:
    base = {"mean": 10.0, "se": 1.0}
    assert beats(base, {"mean": 7.0, "se": 1.0}) is True  # 3 > 2 * sqrt(2) = 2.83
    assert beats(base, {"mean": 7.5, "se": 1.0}) is False  # 2.5 < 2.83
    assert beats(base, "unavailable: place x at y") is None
    assert beats(base, {"mean": 1.0, "se": None}) is None
    assert format_cell({"mean": 12.345, "se": 0.456}) == "12.35 ± 0.46"
    assert format_cell("unavailable: place x at y") == "unavailable: place x at y"


def test_several_gan_seeds_give_the_standard_error_over_seeds() -> None:
    from fp_pipeline.stages.gan import _aggregate

    rows = [
        {"fd": 1.0, "fd_bootstrap_se": 0.5, "images": 10, "lpips": 0.2, "lpips_se": 0.01},
        {"fd": 3.0, "fd_bootstrap_se": 0.5, "images": 10, "lpips": 0.4, "lpips_se": 0.01},
    ]
    out = _aggregate(rows, None)
    assert out["fd"] == {"mean": 2.0, "se": pytest.approx(1.0), "se_kind": "over 2 GAN seeds"}
    assert out["lpips"]["mean"] == pytest.approx(0.3) and out["lpips"]["se"] == pytest.approx(0.1)
    one = _aggregate(rows[:1], None)
    assert one["fd"] == {"mean": 1.0, "se": 0.5, "se_kind": "bootstrap over test images"}
    assert one["lpips"] == {"mean": 0.2, "se": 0.01, "se_kind": "over test images"}
    assert (
        _aggregate([{"fd": 1.0, "fd_bootstrap_se": 0.5, "images": 3}], "unavailable: x")["lpips"]
        == "unavailable: x"
    )
