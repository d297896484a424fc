"""The QDGS faces stages (issue 13): resume of the sampling stage on tiny untrained models, and (slow) the whole
chain on tiny synthetic data through `fp qdgs faces-*` as dvc.yaml calls them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from stage_cli import run_fp  # noqa: I001  (test helper on the pytest pythonpath)

ROOT = Path(__file__).resolve().parents[3]
TINY_CLIP = {
    "image_size": 16,
    "patch_size": 8,
    "vision_width": 16,
    "vision_layers": 1,
    "vision_heads": 2,
    "text_width": 16,
    "text_layers": 1,
    "text_heads": 2,
    "embed_dim": 8,
}


def _params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    faces = params["qdgs"]["faces"]
    faces["generator"].update(image_size=16, latent_dim=4, channels=[8], epochs=1, batch_size=16)
    faces["sets"] = {"15": 6, "50": 12}
    faces["sampler"].update(
        measure_dims=[2, 2, 2, 2], iterations=4, batch_size=4, x0_samples=8, eval_batch=8, checkpoint_every=1
    )
    faces["auto_range"] = {"samples": 32, "quantiles": [0.05, 0.95]}
    faces["attributes"].update(epochs=1, width=4)
    params["recognition"]["model"]["input_size"] = 16
    params["clip_faces"].update(model=TINY_CLIP, train={"epochs": 1, "batch_size": 32, "warmup_steps": 1})
    return params


@pytest.fixture()
def workdir(stage_workdir: Path) -> Path:
    (stage_workdir / "params.yaml").write_text(yaml.safe_dump(_params()))
    return stage_workdir


def _fp(*args: str) -> str:
    return run_fp("qdgs", *args, no_progress=False)  # the commands take --no-progress where they have it


def _tiny_models(root: Path) -> None:
    """An untrained face VAE and embedded CLIP where the sampling stage looks for them."""
    from fp_metrics.clip_models import save_clip
    from fp_qdgs.embedded_clip import EmbeddedCLIPConfig, build_embedded_clip
    from fp_qdgs.faces import FaceVAE, FaceVAEConfig, save_face_vae

    torch.manual_seed(0)
    save_face_vae(FaceVAE(FaceVAEConfig(16, 4, (8,))), root / "outputs/qdgs-faces-vae")
    config = EmbeddedCLIPConfig(**TINY_CLIP)
    save_clip(
        build_embedded_clip(config, seed=0), root / "outputs/clip-faces", context_length=config.context_length
    )


def _write_reached(root: Path, qd: dict[str, int], rand: dict[str, int]) -> Path:
    folder = root / "solutions"
    folder.mkdir(parents=True)
    for method, sets in (("qd", qd), ("rand", rand)):
        (folder / f"{method}.json").write_text(json.dumps({"sets": sets}))
    return folder


def test_export_cuts_both_methods_to_the_size_both_reached(tmp_path: Path) -> None:
    from fp_pipeline.config import ParamsError
    from fp_pipeline.stages.qdgs_faces_common import common_set_sizes
    from fp_pipeline.stages.qdgs_faces_export import export_set

    folder = _write_reached(tmp_path, qd={"15": 40, "50": 52}, rand={"15": 40, "50": 120})
    assert common_set_sizes(folder) == {"15": 40, "50": 52}
    assert export_set({"set": None, "match_sizes": True}, "rand", folder) == ("50", 52)
    assert export_set({"set": None, "match_sizes": True}, "qd", folder) == ("50", 52)
    assert export_set({"set": None, "match_sizes": False}, "rand", folder) == ("50", 120)
    assert export_set({"set": "15"}, "rand", folder) == ("15", 40)  # match_sizes defaults to true
    with pytest.raises(ParamsError, match="'90' is not one of the sets"):
        export_set({"set": "90"}, "qd", folder)
    (folder / "rand.json").unlink()
    with pytest.raises(FileNotFoundError, match="rand.json is missing"):
        export_set({"set": None}, "qd", folder)


@pytest.mark.slow  # two MLflow runs and the sampler on tiny models: ~30 s on the shared 2-core box
def test_a_killed_qd_sampling_run_resumes_from_its_checkpoint(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fp_pipeline.stages import qdgs_faces
    from fp_qdgs import QDGSSampler

    _tiny_models(workdir)
    original = QDGSSampler.step
    calls = {"n": 0}

    def dies_after_two(self: QDGSSampler) -> dict:
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(QDGSSampler, "step", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        qdgs_faces.sample_stage(params_path=Path("params.yaml"), method="qd", progress=False)
    checkpoint = workdir / "outputs/checkpoints/qdgs-faces-qd"
    assert (checkpoint / "state.json").is_file()
    assert not (workdir / "outputs/qdgs-faces/solutions/qd.npz").exists()

    monkeypatch.setattr(QDGSSampler, "step", original)
    qdgs_faces.sample_stage(params_path=Path("params.yaml"), method="qd", progress=False)
    info = json.loads((workdir / "outputs/qdgs-faces/solutions/qd.json").read_text())
    assert info["resumed_from"] == 2
    runs = json.loads((workdir / "outputs/qdgs-faces/runs/qd.json").read_text())
    assert runs["evaluations"] == 8 + 4 * (1 + 4)  # the same count as an uninterrupted run
    assert not checkpoint.exists()  # removed once the outputs are written: a rerun starts afresh
    # the auto ranges were measured from the same seeded draws in both processes
    assert len(info["measure_ranges"]) == 4 and all(lo < hi for lo, hi in info["measure_ranges"])


@pytest.mark.slow
def test_every_faces_stage_runs_on_tiny_synthetic_data(workdir: Path) -> None:
    from fp_pipeline.synth import SynthConfig, render_dataset
    from fp_qdgs.faces import read_identity_folder

    synth = dict(yaml.safe_load((ROOT / "params.yaml").read_text())["synth"])
    synth.update(num_identities=24, image_size=64, supersample=1)
    render_dataset(SynthConfig.from_dict(synth), workdir / "data", progress=False)
    run_fp("gan", "clip-faces")
    _fp("faces-generator", "--no-progress")
    _fp("faces-attributes", "--no-progress")
    accuracy = json.loads((workdir / "outputs/qdgs-faces-attributes/accuracy.json").read_text())
    assert set(accuracy["attributes"]) == {"skin", "gender", "hair", "age"}
    for method in ("qd", "rand"):  # export reads both methods' sizes (match_sizes)
        _fp("faces-sample", "--method", method, "--no-progress")
    exported = {}
    for method in ("qd", "rand"):
        _fp("faces-export", "--method", method, "--no-progress")
        folder = read_identity_folder(workdir / f"outputs/qdgs-faces/identities/{method}")
        manifest = folder.manifest
        assert manifest["variants_per_solution"] == 9 and manifest["image_size"] == [16, 16]
        assert manifest["num_images"] == 9 * manifest["num_solutions"]
        assert manifest["provenance"]["directions"]["labels"] == ["yaw", "Smiling"]
        exported[method] = manifest["num_solutions"]
    assert exported["qd"] == exported["rand"]  # like for like, whatever the archive reached
    rand = json.loads((workdir / "outputs/qdgs-faces/solutions/rand.json").read_text())
    assert rand["sets"] == {"15": 6, "50": 12}
    _fp("faces-report")
    report = (workdir / "outputs/qdgs-faces-report/report.md").read_text()
    assert "Table 1" in report and "| QD15 |" in report and "| Rand50 |" in report
    assert (workdir / "outputs/qdgs-faces-report/fig4-samples-density.png").stat().st_size > 1000
