"""The shapes CLIP scorer on a tiny random open_clip model behind a LoadedCLIP-like wrapper (slow: open_clip)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from fp_qdgs import CLIPScorerConfig, embed_texts, pairwise_angle
from fp_qdgs.shapes.scorer import SHAPE_MEASURE, SHAPES_PROMPTS, PromptSet, shapes_scorer


@dataclass
class _Loaded:
    model: object
    tokenizer: object
    image_size: int = 32
    mean: tuple = (0.5, 0.4, 0.3)
    std: tuple = (0.2, 0.25, 0.3)
    calls: list = field(default_factory=list)

    def encode_texts(self, prompts):
        self.calls.append(list(prompts))
        return embed_texts(self.model, self.tokenizer, prompts)


@pytest.fixture(scope="module")
def loaded() -> _Loaded:
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    ).eval()
    return _Loaded(model, open_clip.get_tokenizer("ViT-B-32"))


def test_prompts() -> None:
    assert SHAPES_PROMPTS.objective == (("A regular square or a triangle.",), ("Splatters of colors.",))
    assert SHAPES_PROMPTS.measure_names[SHAPE_MEASURE] == "shape"
    assert SHAPES_PROMPTS.all_prompts()[4:] == [
        "A triangle with 3 edges.",
        "A square or diamond with 4 edges.",
    ]
    with pytest.raises(ValueError, match="one name per measure"):
        PromptSet(objective=(("a",), ("b",)), measures=((("c",), ("d",)),), measure_names=())


@pytest.mark.slow
def test_scorer_shapes_and_values(loaded: _Loaded) -> None:
    scorer = shapes_scorer(loaded)
    assert len(loaded.calls) == 1 and loaded.calls[0] == SHAPES_PROMPTS.all_prompts()  # embedded once
    assert scorer.config.image_size == 32 and scorer.config.mean == (0.5, 0.4, 0.3)
    assert scorer.config.regularization_weight == 0.0  # prompt_only by default
    images, latents = torch.rand(3, 3, 128, 128), torch.randn(3, 6)
    objective, measures = scorer(images, latents)
    assert objective.shape == (3,) and measures.shape == (3, 2)
    assert len(loaded.calls) == 1
    # the shape measure is angle(e, triangle prompt) - angle(e, square prompt)
    e = scorer.embed(images)
    t = loaded.encode_texts(SHAPES_PROMPTS.all_prompts())
    expected = pairwise_angle(e, t[4:5])[:, 0] - pairwise_angle(e, t[5:6])[:, 0]
    torch.testing.assert_close(measures[:, SHAPE_MEASURE], expected, atol=1e-5, rtol=1e-5)
    custom = shapes_scorer(loaded, CLIPScorerConfig(objective_scale=2.0, image_size=224))
    assert custom.config.objective_scale == 2.0 and custom.config.image_size == 32


def test_not_a_loaded_clip() -> None:
    with pytest.raises(TypeError, match="no .model.; expected a loaded CLIP"):
        shapes_scorer(object())
