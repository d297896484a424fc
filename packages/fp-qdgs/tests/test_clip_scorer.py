from __future__ import annotations

import math
import warnings

import pytest
import torch

from fp_qdgs import (
    CLIP_MEAN,
    CLIP_STD,
    CLIPScorer,
    CLIPScorerConfig,
    EmbeddingMemory,
    evaluate_with_jacobian,
    latent_norm_penalty,
    margin_penalty,
    pairwise_angle,
    preprocess_for_clip,
    prompt_pair_score,
)
from fp_qdgs.toy import LinearSigmoidGenerator

PI = math.pi


def _v(*xs):
    return torch.tensor([xs], dtype=torch.float64)


def test_angle_by_hand():
    x = _v(1.0, 0.0)
    y = torch.tensor(
        [[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.0, 7.0]], dtype=torch.float64
    )
    got = pairwise_angle(x, y)[0]
    torch.testing.assert_close(
        got, torch.tensor([PI / 2, 0.0, PI, PI / 3, PI / 2], dtype=torch.float64), atol=2e-6, rtol=0
    )
    # 2 * arcsin(|x - y| / 2) for unit x, y: |x - y| = sqrt(2) at 90 degrees
    assert 2 * math.asin(math.sqrt(2) / 2) == pytest.approx(PI / 2)
    # finite gradient at identical vectors
    z = _v(0.3, 0.4).requires_grad_(True)
    pairwise_angle(z, _v(0.3, 0.4)).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_prompt_pair_score_by_hand():
    e = _v(1.0, 0.0)
    assert float(prompt_pair_score(e, (_v(0.0, 1.0)[0], _v(-1.0, 0.0)))) == pytest.approx(PI / 2 - PI)
    two_positive = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # mean angle pi / 4
    assert float(prompt_pair_score(e, (two_positive, _v(0.0, -1.0)))) == pytest.approx(PI / 4 - PI / 2)


def test_latent_norm_penalty_by_hand():
    z = torch.tensor([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]])
    torch.testing.assert_close(
        latent_norm_penalty(z, rho=1.0, mean_prior_norm=4.0), torch.tensor([1.0, 0.0, 36.0])
    )
    torch.testing.assert_close(
        latent_norm_penalty(z, rho=2.0, mean_prior_norm=4.0), torch.tensor([0.0, 0.0, 4.0])
    )


def test_margin_penalty_by_hand():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    e = torch.tensor([[math.cos(0.05), math.sin(0.05)], [-1.0, -1.0]], dtype=torch.float64)
    got = margin_penalty(e, memory, margin=0.2)
    torch.testing.assert_close(got, torch.tensor([0.15, 0.0], dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.equal(margin_penalty(e, None, 0.2), torch.zeros(2, dtype=torch.float64))


def test_fifo_memory():
    mem = EmbeddingMemory(3)
    assert len(mem) == 0 and mem.embeddings is None
    mem.push(torch.tensor([[1.0, 0.0], [2.0, 0.0]]))
    mem.push(torch.zeros(0, 2))
    mem.push(torch.tensor([[3.0, 0.0], [4.0, 0.0]]))
    assert len(mem) == 3
    torch.testing.assert_close(mem.embeddings[:, 0], torch.tensor([2.0, 3.0, 4.0]))  # oldest dropped first
    with pytest.raises(ValueError, match="dim"):
        mem.push(torch.zeros(1, 5))
    other = EmbeddingMemory(3)
    other.load_state_tensors(mem.state_tensors())
    torch.testing.assert_close(other.embeddings, mem.embeddings)


def test_preprocess_is_clip_normalisation_and_differentiable():
    x = torch.full((2, 3, 64, 64), 0.5, requires_grad=True)
    out = preprocess_for_clip(x, size=32)
    assert out.shape == (2, 3, 32, 32)
    for c in range(3):
        assert float(out.detach()[0, c].mean()) == pytest.approx((0.5 - CLIP_MEAN[c]) / CLIP_STD[c], abs=1e-5)
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert preprocess_for_clip(torch.rand(1, 3, 40, 20), size=24).shape == (
        1,
        3,
        24,
        24,
    )  # shorter side, crop


class _FakeCLIP:
    """encode_image = per-channel mean of the preprocessed image: [B, 3, S, S] -> [B, 3]."""

    def encode_image(self, images):
        return images.mean(dim=(2, 3))


def _colour_images(colours):
    return torch.tensor(colours, dtype=torch.float32)[:, :, None, None].expand(-1, 3, 8, 8).contiguous()


def _embedding(colour):
    c = torch.tensor(colour, dtype=torch.float32)
    v = (c - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    return v / v.norm()


def _scorer(config=None):
    t = torch.eye(3)
    return CLIPScorer(
        _FakeCLIP(),
        objective_prompts=(t[0], t[1]),
        measure_prompts=[(t[1], t[2]), (t[0], t[2])],
        mean_prior_norm=1.0,
        config=config or CLIPScorerConfig(image_size=16),
    )


def test_scorer_terms_by_hand():
    colours = [[0.9, 0.2, 0.1], [0.1, 0.3, 0.9]]
    images = _colour_images(colours)
    latents = torch.tensor([[0.5, 0.0], [3.0, 0.0]])
    scorer = _scorer()
    scorer.memory.push(_embedding(colours[0])[None])
    terms = scorer.terms(images, latents)
    t = torch.eye(3)
    for b, colour in enumerate(colours):
        e = _embedding(colour)

        def ang(u, v):
            return 2 * math.asin(float((u - v).norm()) / 2)

        prompt = ang(e, t[0]) - ang(e, t[1])
        reg = max(0.0, float(latents[b].norm()) - 1.0) ** 2
        margin = max(0.0, 0.2 - ang(e, _embedding(colours[0])))
        loss = prompt + 0.5 * reg + 0.2 * margin
        assert float(terms["prompt"][b]) == pytest.approx(prompt, abs=1e-5)
        assert float(terms["regularization"][b]) == pytest.approx(reg, abs=1e-5)
        assert float(terms["margin"][b]) == pytest.approx(margin, abs=1e-3)
        assert float(terms["objective"][b]) == pytest.approx(100 - 50 * loss, abs=1e-3)
        assert float(terms["measures"][b, 0]) == pytest.approx(ang(e, t[1]) - ang(e, t[2]), abs=1e-5)
        assert float(terms["measures"][b, 1]) == pytest.approx(ang(e, t[0]) - ang(e, t[2]), abs=1e-5)
    assert float(terms["margin"][0]) == pytest.approx(0.2, abs=2e-3)  # the remembered image itself
    objective, measures = scorer(images, latents)
    assert objective.shape == (2,) and measures.shape == (2, 2) and scorer.num_measures == 2


def test_prompt_only_config():
    c = CLIPScorerConfig.prompt_only()
    assert (c.prompt_weight, c.regularization_weight, c.margin_weight) == (1.0, 0.0, 0.0)
    assert CLIPScorerConfig().regularization_weight == 0.5 and CLIPScorerConfig().margin_weight == 0.2


def test_update_pushes_the_first_accepted_images():
    colours = [[0.9, 0.2, 0.1], [0.1, 0.3, 0.9], [0.5, 0.5, 0.5]]
    scorer = _scorer(CLIPScorerConfig(image_size=16, memory_per_batch=1, memory_size=2))
    scorer.update(_colour_images(colours), torch.tensor([False, True, True]))
    assert len(scorer.memory) == 1
    torch.testing.assert_close(scorer.memory.embeddings[0], _embedding(colours[1]), atol=1e-5, rtol=0)
    scorer.update(_colour_images(colours), torch.tensor([False, False, False]))
    assert len(scorer.memory) == 1
    scorer.update(_colour_images(colours), torch.tensor([True, True, True]))
    scorer.update(_colour_images(colours), torch.tensor([False, False, True]))
    assert len(scorer.memory) == 2  # FIFO capacity
    torch.testing.assert_close(scorer.memory.embeddings[1], _embedding(colours[2]), atol=1e-5, rtol=0)


def test_scorer_gives_batched_jacobians_through_a_generator():
    gen = LinearSigmoidGenerator(latent_dim=6, size=4)
    scorer = _scorer()
    scorer.memory.push(torch.tensor([[0.0, 0.6, 0.8]]))
    z = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the batched path, not the fallback
        ev = evaluate_with_jacobian(gen, scorer, z)
    assert ev.jacobian.shape == (3, 3, 6)
    for j in range(3):
        zj = z.clone().requires_grad_(True)
        obj, meas = scorer(gen(zj), zj)
        (g,) = torch.autograd.grad(torch.cat([obj[:, None], meas], 1)[:, j].sum(), zj)
        torch.testing.assert_close(ev.jacobian[:, j], g, atol=1e-5, rtol=1e-4)
