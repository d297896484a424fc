"""The ControlNet stages end to end on a tiny config, through `fp` as dvc.yaml calls them: synth -> parsing
train / export (single, linear) -> clip-faces -> diffusion base -> controlnet train / eval per variant ->
report, each an MLflow run (slow). Also the pieces with hand-checkable answers: map adherence and the
convergence verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from stage_cli import run_fp  # noqa: I001  (test helper on the pytest pythonpath)

from fp_pipeline.stages.controlnet import adherence, snapshots
from fp_pipeline.stages.controlnet_report import convergence
from fp_pipeline.stages.gan_common import CLIP_FD_LABEL

ROOT = Path(__file__).resolve().parents[3]


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synth"].update(num_identities=20, images_per_identity=2, image_size=64)
    params["data"].update(root="outputs/synth", image_size=32)
    params["parsing"]["seeds"] = [0]
    params["parsing"]["train"].update(epochs=1, batch_size=4, max_steps_per_epoch=2)
    params["parsing"]["variants"] = {k: params["parsing"]["variants"][k] for k in ("single", "linear")}
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
    params["controlnet"].update(
        sample_every=2,
        base={
            "resolution": 32,
            "vae_block_out_channels": [8, 16, 16],
            "vae_norm_num_groups": 4,
            "unet_block_out_channels": [16, 32, 32],
            "unet_norm_num_groups": 8,
            "unet_attention_head_dim": 8,
            "text_hidden_size": 16,
            "text_layers": 1,
            "text_heads": 2,
            "text_intermediate_size": 32,
            "vae_epochs": 1,
            "unet_epochs": 1,
            "max_steps_per_epoch": 2,
            "unet_warmup_steps": 1,
            "num_samples": 2,
            "sample_steps": 2,
        },
        train={
            "epochs": 2,
            "snapshot_epochs": [1, 2],
            "batch_size": 4,
            "max_steps_per_epoch": 2,
            "validation_steps": 2,
        },
    )
    params["controlnet"]["eval"].update(steps=2, bootstrap=5, batch_size=8, grid_maps=2)
    return params


@pytest.fixture()
def workdir(stage_workdir: Path) -> Path:
    (stage_workdir / "params.yaml").write_text(yaml.safe_dump(_tiny_params()))
    return stage_workdir


_fp = run_fp


@pytest.mark.slow
def test_every_controlnet_stage_runs_and_is_tracked(workdir: Path) -> None:
    import mlflow

    _fp("data", "synth", "--out", "outputs/synth")
    for variant in ("single", "linear"):
        _fp("parsing", "train", "--variant", variant, "--seed", "0")
        _fp("parsing", "export", "--variant", variant, "--seed", "0")
    _fp("gan", "clip-faces")
    _fp("controlnet", "base")
    base = json.loads((workdir / "outputs/diffusion-base-metrics.json").read_text())
    assert base["fd_label"] == CLIP_FD_LABEL and base[CLIP_FD_LABEL]["se"] >= 0
    assert (workdir / "outputs/diffusion-base/unet/config.json").is_file()
    assert (workdir / "outputs/diffusion-base-samples.png").stat().st_size > 500
    for variant in ("single", "linear"):
        _fp("controlnet", "train", "--variant", variant)
        model = workdir / f"outputs/controlnet/{variant}/model"
        assert [e for e, _ in snapshots(model)] == [1, 2]
        assert (model / "final/config.json").is_file()
        assert not (workdir / f"outputs/checkpoints/controlnet-{variant}").exists()
        _fp("controlnet", "eval", "--variant", variant)
        metrics = json.loads((workdir / f"outputs/controlnet/{variant}/eval/metrics.json").read_text())
        assert [row["epoch"] for row in metrics["curve"]] == [0, 1, 2]
        assert 0.0 <= metrics["adherence_miou"]["mean"] <= 1.0
        assert metrics["LPIPS (alex)"].startswith("unavailable: place alexnet-owt-7be5be79.pth at ")
        assert (workdir / f"outputs/controlnet/{variant}/eval/fig7.png").stat().st_size > 1000
    _fp("controlnet", "report")
    report = (workdir / "outputs/controlnet-report/report.md").read_text()
    assert "| single |" in report and "| linear |" in report and "Open question 2" in report
    assert (workdir / "outputs/controlnet-report/figures/curve.png").stat().st_size > 1000
    summary = json.loads((workdir / "outputs/controlnet-report/summary.json").read_text())
    assert set(summary["convergence"]) == {"single", "linear"}

    runs = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["fp"], output_format="list")}
    assert {
        "diffusion-base",
        "controlnet-train@single",
        "controlnet-eval@linear",
        "controlnet-report",
    } <= set(runs)
    assert runs["controlnet-train@linear"].data.tags["fp.paper"] == "parsing"
    assert "train/loss" in runs["controlnet-train@linear"].data.metrics


class _OneHotParser(torch.nn.Module):
    """'Parses' an image whose red channel holds ``label / 10`` back into that label (3 classes)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        labels = (images[:, 0] * 10).round().long()
        return torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()


def test_adherence_is_the_mean_per_image_miou_on_a_hand_made_case() -> None:
    maps = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [1, 1]]])
    parsed = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [0, 1]]])  # image 1 exact; image 2: one 1 read as 0
    images = torch.zeros(2, 3, 2, 2)
    images[:, 0] = parsed.float() / 10
    mean, se = adherence(_OneHotParser(), images, maps, 3)
    # image 2: class 0 IoU 2/3, class 1 IoU 1/2 (class 2 absent from both: left out) -> 7/12
    assert mean == pytest.approx((1.0 + 7 / 12) / 2)
    assert se == pytest.approx(abs(1.0 - 7 / 12) / 2)  # sd of two values / sqrt(2)


def test_convergence_compares_the_last_snapshot_with_the_first_beyond_the_errors() -> None:
    def row(epoch: int, fd: float, adh: float) -> dict:
        return {"epoch": epoch, "fd": {"mean": fd, "se": 0.1}, "adherence": {"mean": adh, "se": 0.01}}

    curve = [row(0, 5.0, 0.2), row(1, 3.0, 0.5), row(2, 2.9, 0.6), row(4, 2.0, 0.55)]
    c = convergence(curve)
    assert (c["first_epoch"], c["last_epoch"]) == (1, 4)
    assert c["fd_lower_at_last"] is True and c["fd_higher_at_last"] is False  # 1.0 > 2 * sqrt(0.02)
    assert c["adherence_higher_at_last"] is True  # 0.05 > 2 * sqrt(2e-4) = 0.028
    assert c["adherence_above_base"] is True
    flat = convergence([row(1, 3.0, 0.5), row(2, 2.9, 0.51)])
    assert flat["fd_lower_at_last"] is False and flat["adherence_higher_at_last"] is False
    assert flat["adherence_above_base"] is None
    with pytest.raises(ValueError, match="no trained snapshot"):
        convergence([row(0, 1.0, 0.1)])
