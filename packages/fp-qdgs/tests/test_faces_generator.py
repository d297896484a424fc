"""The embedded face VAE: shapes, training on the harness with resume, save / load, the QDGS generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fp_core.manifest import ManifestError
from fp_core.training import list_checkpoints
from fp_qdgs.faces.generator import (
    FaceDecoderGenerator,
    FaceVAE,
    FaceVAEConfig,
    load_face_vae,
    save_face_vae,
    train_face_vae,
)
from fp_qdgs.protocols import Generator

SMALL = FaceVAEConfig(image_size=16, latent_dim=4, channels=(4, 8))


def _vae(config: FaceVAEConfig = SMALL) -> FaceVAE:
    torch.manual_seed(0)
    return FaceVAE(config)


def _images(n: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_default_shapes_and_generator() -> None:
    vae = _vae(FaceVAEConfig())
    with torch.no_grad():
        mean, logvar = vae.encode(torch.rand(2, 3, 64, 64))
        out = vae.decode(mean)
    assert mean.shape == logvar.shape == (2, 32)
    assert out.shape == (2, 3, 64, 64) and float(out.min()) > 0 and float(out.max()) < 1
    gen = FaceDecoderGenerator(vae)
    assert isinstance(gen, Generator) and gen.latent_dim == 32
    assert gen(gen.sample_prior(3)).shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match=r"\[B, 3, 64, 64\]"):
        vae.encode(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="multiple of"):
        FaceVAEConfig(image_size=60)


class _Kill(RuntimeError):
    pass


def _killer(at_step: int):
    def log(metrics, step):
        if "vae/loss" in metrics and step == at_step:
            raise _Kill(f"killed at step {step}")

    return log


def test_one_epoch_trains_and_bad_input(tmp_path: Path) -> None:
    vae = _vae()
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    losses = train_face_vae(vae, _images(), epochs=1, seed=0, batch_size=4, checkpoint_dir=tmp_path / "a")
    assert len(losses) == 1 and torch.isfinite(torch.tensor(losses)).all()
    assert any(not torch.equal(before[k], v) for k, v in vae.state_dict().items())
    with pytest.raises(ValueError, match=r"\[N >= 1, 3, 16, 16\]"):
        train_face_vae(_vae(), torch.rand(2, 3, 8, 8), epochs=1, seed=0, checkpoint_dir=tmp_path / "c")


def test_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    images = _images()
    kw = {"epochs": 2, "seed": 3, "batch_size": 4}  # 2 steps per epoch
    straight = _vae()
    losses = train_face_vae(straight, images, checkpoint_dir=tmp_path / "a", **kw)
    assert len(losses) == 2
    with pytest.raises(_Kill):
        train_face_vae(_vae(), images, checkpoint_dir=tmp_path / "b", log=_killer(2), **kw)
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["checkpoint-00000002"]
    fresh = _vae()
    assert train_face_vae(fresh, images, checkpoint_dir=tmp_path / "b", **kw) == pytest.approx(
        losses, rel=1e-6
    )
    for (name, a), b in zip(straight.state_dict().items(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_save_load_round_trip_and_errors(tmp_path: Path) -> None:
    vae = _vae()
    out = save_face_vae(vae, tmp_path / "vae", extra={"losses": [1.0]})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "face-vae" and manifest["params"]["channels"] == [4, 8]
    loaded = load_face_vae(out)
    z = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(z), vae.decode(z), rtol=0, atol=0)
    (out / "config.json").write_text(json.dumps({"image_size": 16, "latent_dim": 5, "channels": [4, 8]}))
    with pytest.raises(ManifestError, match="model.safetensors does not hold"):
        load_face_vae(out)
    (out / "model.safetensors").unlink()
    with pytest.raises(ManifestError, match="model.safetensors"):
        load_face_vae(out)
    with pytest.raises(ManifestError, match="manifest.json"):
        load_face_vae(tmp_path)
