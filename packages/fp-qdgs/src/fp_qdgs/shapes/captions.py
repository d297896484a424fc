"""Captions for the embedded CLIP's training images, written from what the renderer drew.

QDGS's shapes run scores images with four prompt pairs (``docs/qdgs.md``):

* colour measure: ``"A red shape"`` vs ``"A blue shape"``;
* shape measure: ``"A triangle with 3 edges"`` vs ``"A square or diamond with 4 edges"``;
* objective: ``"A regular square or a triangle."`` vs ``"Splatters of colors."``.

So that these prompts are in the trained model's vocabulary, a shape image gets one caption drawn from five
kinds of template (``{c}`` = ``red`` / ``blue``, ``{s}`` = a name of the drawn shape):

======================  ======  =====================================================================
kind                    weight  templates
======================  ======  =====================================================================
colour and shape        0.35    ``a {c} {s}``
colour only             0.25    ``a {c} shape``
shape only              0.25    ``a {s}``
regular (either shape)  0.10    ``a regular square or a triangle``, ``a regular {square|triangle}``
shape on white          0.05    ``a {s} on a white background``
======================  ======  =====================================================================

Shape names: triangle ``triangle`` / ``triangle with 3 edges``; square ``square`` / ``diamond`` /
``square or diamond`` / ``square or diamond with 4 edges`` (a rotated square looks like a diamond), each
equally likely. Half of all captions end with a full stop. The tokenizer lower-cases, so ``"A red shape"``
and ``"a red shape"`` are the same tokens. Splatter images get one of :data:`SPLATTER_CAPTIONS`
(:func:`splatter_caption`), with or without a full stop.

Labels as in :mod:`fp_qdgs.shapes.render`: shape 0 triangle / 1 square, colour 0 red / 1 blue.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COLOUR_WORDS",
    "SHAPE_NAMES",
    "SPLATTER_CAPTIONS",
    "TEMPLATE_WEIGHTS",
    "shape_caption",
    "splatter_caption",
]

#: colour label -> word
COLOUR_WORDS: tuple[str, str] = ("red", "blue")
#: shape label -> the names a caption may use for it
SHAPE_NAMES: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("triangle", "triangle with 3 edges"),
    ("square", "diamond", "square or diamond", "square or diamond with 4 edges"),
)
#: template kind -> probability (see the module docstring)
TEMPLATE_WEIGHTS: dict[str, float] = {
    "colour_shape": 0.35,
    "colour": 0.25,
    "shape": 0.25,
    "regular": 0.10,
    "on_white": 0.05,
}
#: captions of the splatter images (the objective's negative side)
SPLATTER_CAPTIONS: tuple[str, ...] = (
    "splatters of colors",
    "splatters of colours",
    "colorful splatters",
    "paint splatters",
    "blurry blobs of color",
    "a blurry smear of colors",
    "random strokes of paint",
    "splatters of colors on white",
)
_REGULAR = ("a regular square or a triangle", "a regular triangle", "a regular square")


def _stop(text: str, rng: np.random.Generator) -> str:
    return text + "." if rng.random() < 0.5 else text


def _check_label(value: int, name: str) -> int:
    if value not in (0, 1):
        raise ValueError(f"{name} must be 0 or 1, got {value!r}")
    return int(value)


def shape_caption(shape: int, colour: int, rng: np.random.Generator) -> str:
    """A caption of one shape image: ``shape`` 0 triangle / 1 square, ``colour`` 0 red / 1 blue."""
    shape, colour = _check_label(shape, "shape"), _check_label(colour, "colour")
    kinds = list(TEMPLATE_WEIGHTS)
    kind = kinds[int(rng.choice(len(kinds), p=list(TEMPLATE_WEIGHTS.values())))]
    names = SHAPE_NAMES[shape]
    name = names[int(rng.integers(len(names)))]
    c = COLOUR_WORDS[colour]
    if kind == "colour_shape":
        text = f"a {c} {name}"
    elif kind == "colour":
        text = f"a {c} shape"
    elif kind == "shape":
        text = f"a {name}"
    elif kind == "regular":
        text = _REGULAR[0] if rng.random() < 0.5 else _REGULAR[1 + shape]
    else:
        text = f"a {name} on a white background"
    return _stop(text, rng)


def splatter_caption(rng: np.random.Generator) -> str:
    """A caption of one splatter image: one of :data:`SPLATTER_CAPTIONS`, half of them with a full stop."""
    return _stop(SPLATTER_CAPTIONS[int(rng.integers(len(SPLATTER_CAPTIONS)))], rng)
