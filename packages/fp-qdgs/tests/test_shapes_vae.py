"""The shapes VAE on the training harness (a killed run resumes to the same weights) and its save / load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fp_core.manifest import ManifestError
from fp_core.training import list_checkpoints
from fp_qdgs.shapes.vae import ShapesVAE, load_vae, save_vae, train_vae


class _Kill(RuntimeError):
    pass


def _images(n: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, 128, 128, generator=g) > 0.5).float()


def _vae() -> ShapesVAE:
    torch.manual_seed(0)
    return ShapesVAE()


def _killer(at_step: int):
    def log(metrics, step):
        if "vae/loss" in metrics and step == at_step:
            raise _Kill(f"killed at step {step}")

    return log


def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    images = _images()
    kw = {"epochs": 3, "seed": 5, "batch_size": 4}  # 2 steps per epoch
    straight = _vae()
    losses = train_vae(straight, images, checkpoint_dir=tmp_path / "a", **kw)
    assert len(losses) == 3

    resumed = _vae()
    with pytest.raises(_Kill):
        train_vae(resumed, images, checkpoint_dir=tmp_path / "b", log=_killer(3), **kw)  # in epoch 2
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["checkpoint-00000002"]
    fresh = _vae()  # a new process: fresh weights, everything else from the checkpoint
    again = train_vae(fresh, images, checkpoint_dir=tmp_path / "b", **kw)
    assert again == pytest.approx(losses, rel=1e-6)
    for (name, a), b in zip(straight.state_dict().items(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    images = _images(4)
    train_vae(_vae(), images, epochs=1, seed=0, batch_size=4, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="other settings"):
        train_vae(_vae(), images, epochs=1, seed=1, batch_size=4, checkpoint_dir=tmp_path)


def test_bad_training_input() -> None:
    with pytest.raises(ValueError, match=r"\[N, 3, 128, 128\]"):
        train_vae(_vae(), torch.rand(2, 3, 64, 64), epochs=1, seed=0, checkpoint_dir="unused")
    with pytest.raises(ValueError, match="epochs"):
        train_vae(_vae(), torch.rand(2, 3, 128, 128), epochs=0, seed=0, checkpoint_dir="unused")


def test_save_load_round_trip(tmp_path: Path) -> None:
    vae = _vae()
    out = save_vae(vae, tmp_path / "vae", extra={"losses": [1.0, 0.5]})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "shapes-vae" and manifest["extra"] == {"losses": [1.0, 0.5]}
    assert manifest["parameters"] == sum(p.numel() for p in vae.parameters())
    back = load_vae(out)
    assert not back.training and back.latent_dim == 6
    z = torch.randn(2, 6)
    assert torch.equal(back.decode(z), vae.eval().decode(z))
    small = ShapesVAE(latent_dim=3)
    assert load_vae(save_vae(small, tmp_path / "small")).latent_dim == 3


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest.json does not exist"):
        load_vae(tmp_path / "nothing")
    out = save_vae(_vae(), tmp_path / "vae")
    (out / "config.json").write_text(json.dumps({"latent_dim": 4}))
    with pytest.raises(ManifestError, match="wrong shapes"):
        load_vae(out)
    (out / "model.safetensors").unlink()
    with pytest.raises(ManifestError, match="model.safetensors is missing"):
        load_vae(out)
    (out / "config.json").unlink()
    with pytest.raises(ManifestError, match="config.json"):
        load_vae(out)
