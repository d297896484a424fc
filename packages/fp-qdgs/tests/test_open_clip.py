"""An untrained, tiny open_clip model plugs into the CLIP scorer (slow: importing open_clip takes seconds)."""

from __future__ import annotations

import warnings

import pytest
import torch

from fp_qdgs import CLIPScorer, CLIPScorerConfig, embed_texts, evaluate_with_jacobian
from fp_qdgs.toy import LinearSigmoidGenerator


@pytest.mark.slow
def test_tiny_open_clip_model_in_the_scorer():
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    ).eval()
    texts = embed_texts(
        model, open_clip.get_tokenizer("ViT-B-32"), ["a red shape", "a blue shape", "a triangle", "a square"]
    )
    assert texts.shape == (4, 16)
    torch.testing.assert_close(texts.norm(dim=1), torch.ones(4))
    scorer = CLIPScorer(
        model,
        (texts[0], texts[1]),
        [(texts[2], texts[3])],
        mean_prior_norm=1.0,
        config=CLIPScorerConfig(image_size=32),
    )
    gen = LinearSigmoidGenerator(latent_dim=6, size=4)
    z = torch.randn(3, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # batched VJP through the ViT, no fallback
        ev = evaluate_with_jacobian(gen, scorer, z)
    assert ev.jacobian.shape == (3, 2, 6)
    for j in range(2):
        zj = z.clone().requires_grad_(True)
        obj, meas = scorer(gen(zj), zj)
        (g,) = torch.autograd.grad(torch.cat([obj[:, None], meas], 1)[:, j].sum(), zj)
        torch.testing.assert_close(ev.jacobian[:, j], g, atol=1e-4, rtol=1e-4)
