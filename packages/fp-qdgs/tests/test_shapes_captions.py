"""Captions of the embedded CLIP's training images, the splatter renderer and the mixed training set."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from fp_qdgs.shapes.captions import SPLATTER_CAPTIONS, TEMPLATE_WEIGHTS, shape_caption, splatter_caption
from fp_qdgs.shapes.render import make_clip_training_set, make_splatters

#: the QDGS shapes prompts, lower-cased and without the full stop (the tokenizer lower-cases)
PROMPTS = (
    "a red shape",
    "a blue shape",
    "a triangle with 3 edges",
    "a square or diamond with 4 edges",
    "a regular square or a triangle",
    "splatters of colors",
)


def _captions(shape: int, colour: int, n: int = 2000) -> list[str]:
    rng = np.random.default_rng(0)
    return [shape_caption(shape, colour, rng).removesuffix(".") for _ in range(n)]


def test_template_weights_sum_to_one() -> None:
    assert sum(TEMPLATE_WEIGHTS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(("shape", "colour"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_captions_describe_only_what_was_drawn(shape: int, colour: int) -> None:
    captions = _captions(shape, colour)
    wrong_colour = ("red", "blue")[1 - colour]
    assert not any(wrong_colour in c for c in captions)
    for c in captions:
        if shape == 0:
            assert "diamond" not in c and "4 edges" not in c
            assert "square" not in c or c == "a regular square or a triangle"
        else:
            assert "3 edges" not in c
            assert "triangle" not in c or c == "a regular square or a triangle"


def test_the_qdgs_prompts_occur_as_captions() -> None:
    seen = Counter(_captions(0, 0) + _captions(0, 1) + _captions(1, 0) + _captions(1, 1))
    for prompt in PROMPTS[:5]:
        assert seen[prompt] > 20, prompt
    assert "splatters of colors" in SPLATTER_CAPTIONS


def test_half_the_captions_end_with_a_full_stop() -> None:
    rng = np.random.default_rng(1)
    stops = sum(shape_caption(1, 0, rng).endswith(".") for _ in range(4000))
    assert 1800 < stops < 2200
    assert splatter_caption(np.random.default_rng(0)).removesuffix(".") in SPLATTER_CAPTIONS


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="shape must be 0 or 1"):
        shape_caption(2, 0, np.random.default_rng(0))


def test_splatters_are_seeded_per_image_and_on_white() -> None:
    a, b = make_splatters(6, seed=3), make_splatters(4, seed=3)
    assert a.shape == (6, 3, 128, 128) and a.dtype == torch.float32
    torch.testing.assert_close(a[:4], b, rtol=0, atol=0)  # image i does not depend on n
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    white = (a > 0.99).all(dim=1).float().mean(dim=(1, 2))
    assert bool((white > 0.2).all()) and bool((white < 0.98).all())  # a white background with some paint
    assert not torch.equal(make_splatters(1, seed=4), a[:1])


def test_the_training_set_mixes_balanced_shapes_and_splatters() -> None:
    images, captions = make_clip_training_set(60, seed=0, splatter_share=0.25)
    assert images.shape == (60, 3, 128, 128) and len(captions) == 60
    splatter = [c.removesuffix(".") in SPLATTER_CAPTIONS for c in captions]
    assert sum(splatter) == 15
    assert splatter != sorted(splatter)  # shuffled, not shapes first then splatters
    red_px = ((images - torch.tensor([216, 27, 96]).view(1, 3, 1, 1) / 255).abs().amax(dim=1) < 0.02).any(
        dim=(1, 2)
    )
    blue_px = ((images - torch.tensor([30, 136, 229]).view(1, 3, 1, 1) / 255).abs().amax(dim=1) < 0.02).any(
        dim=(1, 2)
    )
    for i, c in enumerate(captions):  # each caption stays with its image
        if "red" in c:
            assert bool(red_px[i]) and not bool(blue_px[i])
        if "blue" in c:
            assert bool(blue_px[i]) and not bool(red_px[i])
    again, captions_again = make_clip_training_set(60, seed=0, splatter_share=0.25)
    torch.testing.assert_close(images, again, rtol=0, atol=0)
    assert captions == captions_again
    red = sum("red" in c for c in captions)
    blue = sum("blue" in c for c in captions)
    assert red > 5 and blue > 5
    with pytest.raises(ValueError, match="splatter_share"):
        make_clip_training_set(10, seed=0, splatter_share=1.5)
