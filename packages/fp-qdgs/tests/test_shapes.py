from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_qdgs.protocols import generate
from fp_qdgs.shapes import (
    BLUE,
    RED,
    DecoderGenerator,
    ShapeClassifier,
    ShapesVAE,
    balanced_group_accuracy,
    base_image,
    make_shapes,
    predict_shapes,
    train_classifier,
    train_vae,
)

WHITE = (255, 255, 255)


def _coloured(img):
    return ~(img == 255).all(axis=-1)


def test_triangle_pixels():
    img = base_image("triangle", "red")
    mask = _coloured(img)
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.min() == 32 and rows.max() == 63  # apex row 32, base row 63
    assert np.nonzero(mask[32])[0].tolist() == [64]  # apex at column 64
    base = np.nonzero(mask[63])[0]
    assert (base.min(), base.max(), len(base)) == (33, 95, 63)  # 63 px wide base
    assert tuple(img[40, 64]) == RED and tuple(img[10, 10]) == WHITE and tuple(img[32, 63]) == WHITE


def test_square_pixels_and_colours():
    img = base_image("square", "blue")
    mask = _coloured(img)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (46, 81, 46, 81)
    assert mask.sum() == 36 * 36
    assert {tuple(p) for p in img[mask]} == {BLUE}
    assert {tuple(p) for p in base_image("square", "red")[mask]} == {RED}


@pytest.mark.parametrize("bias", [0.98, 0.5, 0.8])
def test_bias_shares(bias):
    data = make_shapes(100, bias, seed=0, augmented=False)
    tri, sq = data.shape == 0, data.shape == 1
    assert int(tri.sum()) == 50 and int(sq.sum()) == 50
    assert int((data.colour[tri] == 0).sum()) == round(bias * 50)  # red triangles
    assert int((data.colour[sq] == 1).sum()) == round(bias * 50)  # blue squares
    assert data.images.shape == (100, 3, 128, 128) and data.images.dtype == torch.float32
    i = int(torch.nonzero(tri & (data.colour == 0))[0])
    assert data.captions[i] == "a red triangle"
    assert set(data.captions) <= {"a red triangle", "a blue triangle", "a red square", "a blue square"}


def test_augmentation_is_seeded_and_whitens_the_background():
    a = make_shapes(8, 0.5, seed=3)
    b = make_shapes(8, 0.5, seed=3)
    c = make_shapes(8, 0.5, seed=4)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    plain = make_shapes(8, 0.5, seed=3, augmented=False)
    assert torch.equal(a.shape, plain.shape) and torch.equal(a.colour, plain.colour)
    assert not torch.equal(a.images, plain.images)
    dark = (a.images < 0.5).all(dim=1)
    assert not dark.any()  # no black rotation corners or background left
    assert float((a.images == 1.0).all(dim=1).float().mean()) > 0.5  # mostly white


def test_vae_shapes_and_parameter_count():
    vae = ShapesVAE()
    # encoder convs 448 + 4640 + 9248, heads 2 * (8192 * 6 + 6), decoder fc 6 * 8192 + 8192,
    # transposed convs 16416 + 8208 + 771
    assert sum(p.numel() for p in vae.parameters()) == 195_391
    x = torch.rand(2, 3, 128, 128)
    out = vae(x, generator=torch.Generator().manual_seed(0))
    assert (
        out.reconstruction.shape == (2, 3, 128, 128)
        and out.mean.shape == (2, 6)
        and out.logvar.shape == (2, 6)
    )
    assert vae.encoder(x).shape == (2, 8192)
    gen = DecoderGenerator(vae)
    z = gen.sample_prior(3, torch.Generator().manual_seed(0))
    assert generate(gen, z).shape == (3, 3, 128, 128) and gen.latent_dim == 6
    assert gen.mean_prior_norm == pytest.approx(2.3499, abs=1e-4)


def test_tiny_vae_training_lowers_its_loss(tmp_path):
    data = make_shapes(8, 0.5, seed=0, augmented=False)
    torch.manual_seed(0)
    vae = ShapesVAE()
    logged = []
    losses = train_vae(
        vae,
        data.images,
        epochs=3,
        seed=0,
        batch_size=4,
        checkpoint_dir=tmp_path / "ckpt",
        log=lambda m, s: logged.append((s, dict(m))),
    )
    assert losses[-1] < losses[0]
    epochs = [(s, m) for s, m in logged if "epoch/vae/loss" in m]
    assert [s for s, _ in epochs] == [0, 1, 2]
    assert [m["epoch/vae/loss"] for _, m in epochs] == pytest.approx(losses)


def test_classifier_output_and_training_step():
    model = ShapeClassifier()
    x = torch.rand(3, 3, 128, 128)
    p = model(x)
    assert p.shape == (3,) and bool(((p > 0) & (p < 1)).all())
    data = make_shapes(8, 0.5, seed=1, augmented=False)
    losses = train_classifier(model, data.images, data.shape, epochs=1, seed=0)
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert predict_shapes(model, data.images).shape == (8,)


def test_balanced_group_accuracy():
    shape = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    colour = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    pred = torch.tensor([0, 0, 0, 1, 1, 0, 1, 1])  # groups: 1.0, 0.5, 0.5, 1.0
    assert balanced_group_accuracy(pred, shape, colour) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="empty"):
        balanced_group_accuracy(pred[:4], shape[:4], colour[:4])


class _MeanColourCLIP:
    def encode_image(self, images):
        return images.mean(dim=(2, 3))


def test_decoder_generator_in_a_short_qdgs_run():
    import warnings

    from fp_qdgs import CLIPScorer, CLIPScorerConfig, QDGSSampler, SamplerConfig, evaluate_with_jacobian

    torch.manual_seed(0)
    gen = DecoderGenerator(ShapesVAE())
    t = torch.eye(3)
    scorer = CLIPScorer(
        _MeanColourCLIP(),
        (t[0], t[1]),
        [(t[1], t[2]), (t[0], t[2])],
        mean_prior_norm=gen.mean_prior_norm,
        config=CLIPScorerConfig.prompt_only(image_size=32),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # batched VJP through the transposed convolutions
        ev = evaluate_with_jacobian(gen, scorer, gen.sample_prior(2))
    assert ev.jacobian.shape == (2, 3, 6)
    config = SamplerConfig(
        measure_dims=(5, 5),
        measure_ranges=((-0.2, 0.2), (-0.2, 0.2)),
        batch_size=4,
        iterations=2,
        x0_samples=8,
    )
    sampler = QDGSSampler(gen, scorer, config)
    archive = sampler.run()
    assert len(archive) >= 1 and sampler.evaluations == 8 + 2 * 5
