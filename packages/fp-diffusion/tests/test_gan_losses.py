"""Each Pix2PixHD loss on a constructed case."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fp_diffusion.gan import Pix2PixHDConfig, Pix2PixHDLosses, feature_matching, lsgan
from fp_diffusion.gan.vgg import VGG19_FILE, VGG19Features


def _predictions(value: float, num_D: int = 2, n_layers: int = 3) -> list[list[torch.Tensor]]:
    return [[torch.full((2, 4, 5, 5), value) for _ in range(n_layers + 2)] for _ in range(num_D)]


def test_lsgan_targets_are_exact() -> None:
    preds = _predictions(0.25)
    assert float(lsgan(preds, True)) == pytest.approx(2 * (0.25 - 1) ** 2)  # summed over the 2 scales
    assert float(lsgan(preds, False)) == pytest.approx(2 * 0.25**2)
    assert float(lsgan(_predictions(1.0), True)) == 0.0
    assert float(lsgan(_predictions(0.0), False)) == 0.0


def test_feature_matching_zero_for_identical_and_exact_for_a_unit_gap() -> None:
    real = _predictions(0.3)
    assert float(feature_matching(real, real, n_layers=3)) == 0.0
    # every intermediate feature off by 1 (the scores differ too but are not matched): per scale the
    # n_layers + 1 = 4 layers weigh 4 / 4 each, each of the 2 scales 1 / 2: lambda * 4 = 40
    fake = [[f + 1 for f in scale[:-1]] + [scale[-1] + 100] for scale in real]
    assert float(feature_matching(fake, real, n_layers=3, weight=10.0)) == pytest.approx(40.0)
    fake_features = [[f.clone().requires_grad_(True) for f in scale] for scale in real]
    real_features = [[f.clone().requires_grad_(True) for f in scale] for scale in real]
    feature_matching(fake_features, real_features, 3).backward()
    assert real_features[0][0].grad is None  # real features are detached


def test_discriminator_and_generator_terms() -> None:
    config = Pix2PixHDConfig.toy(vgg=False, lambda_l1=2.0, n_layers_D=3)
    losses = Pix2PixHDLosses(config)
    d = losses.discriminator(_predictions(0.5), _predictions(1.0))
    assert float(d["loss_D_fake"]) == pytest.approx(0.5 * 2 * 0.25)
    assert float(d["loss_D_real"]) == 0.0
    fake, real = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    g = losses.generator(_predictions(1.0), _predictions(1.0), fake, real)
    assert float(g["loss_G_GAN"]) == 0.0 and float(g["loss_G_FM"]) == 0.0 and float(g["loss_G_VGG"]) == 0.0
    assert float(g["loss_G_L1"]) == pytest.approx(2.0 * 0.5)
    assert float(g["l1"]) == pytest.approx(0.5)
    assert float(g["loss_G"]) == pytest.approx(1.0)
    off = Pix2PixHDLosses(Pix2PixHDConfig.toy(vgg=False)).generator(
        _predictions(1.0), _predictions(1.0), fake, real
    )
    assert float(off["loss_G_L1"]) == 0.0 and float(off["l1"]) == pytest.approx(0.5)


def test_vgg_is_off_with_a_note_when_the_weights_are_missing(no_vgg_weights: Path) -> None:
    losses = Pix2PixHDLosses(Pix2PixHDConfig.toy())
    assert not losses.vgg_enabled
    assert len(losses.notes) == 1
    assert "VGG perceptual loss is OFF" in losses.notes[0] and VGG19_FILE in losses.notes[0]
    x = torch.rand(1, 3, 8, 8)
    assert float(losses.perceptual(x, -x)) == 0.0
    explicit = Pix2PixHDLosses(Pix2PixHDConfig.toy(vgg_path=str(no_vgg_weights / "elsewhere.pth")))
    assert not explicit.vgg_enabled and "elsewhere.pth" in explicit.notes[0]
    assert Pix2PixHDLosses(Pix2PixHDConfig.toy(vgg=False)).notes == []  # asked off: no note


def _fake_vgg_file(directory: Path) -> Path:
    """torchvision's VGG19 layout with seeded random weights (only the loading path is tested with it)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["E"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / VGG19_FILE
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.mark.slow  # ~6-9 s: an 80 MB VGG19 file is written, read and run
def test_vgg_loads_from_the_weight_cache_and_weighs_the_five_relus(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "weights"))
    path = _fake_vgg_file(tmp_path / "weights")
    losses = Pix2PixHDLosses(Pix2PixHDConfig.toy(lambda_vgg=10.0))
    assert losses.vgg_enabled and losses.notes == []
    assert all(not p.requires_grad for p in losses.vgg.parameters())
    real = torch.rand(1, 3, 16, 16) * 2 - 1
    fake = (real + 0.3 * torch.randn_like(real)).clamp(-1, 1).requires_grad_(True)
    assert float(losses.perceptual(real, real)) == 0.0
    value = losses.perceptual(fake, real)
    vgg = losses.vgg
    assert isinstance(vgg, VGG19Features)
    first = next(vgg.parameters())
    assert torch.equal(first, torch.load(path, weights_only=True)["features.0.weight"])
    outs_fake, outs_real = vgg(fake.detach()), vgg(real)
    assert [o.shape[1] for o in outs_fake] == [64, 128, 256, 512, 512]
    weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    expected = 10.0 * sum(w * float((f - r).abs().mean()) for w, f, r in zip(weights, outs_fake, outs_real))
    assert math.isclose(float(value.detach()), expected, rel_tol=1e-5)
    value.backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
