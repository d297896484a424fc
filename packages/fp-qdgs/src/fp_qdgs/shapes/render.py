"""The colour-biased shapes data of the QDGS proof of concept (facts from the public code).

Base images, 128 x 128, one shape on black (made white at the end):

* colours: red ``(216, 27, 96)``, blue ``(30, 136, 229)``;
* upward triangle: for columns ``c = 32..95`` (``i = c - 32``), rows ``32 + |32 - i| .. 63``: apex at
  row 32, column 64; base on row 63, columns 33-95 (63 px wide);
* square 36 x 36: rows and columns 46-81.

Augmentation (torchvision's semantics, re-implemented on PIL with a seeded ``numpy`` generator):
``RandomRotation(180)`` (angle uniform in [-180, 180] degrees, nearest neighbour, black fill), then
``RandomResizedCrop(128, scale=(0.5, 2))`` (area share uniform in [0.5, 2], log-uniform aspect ratio in
[3/4, 4/3], up to 10 tries for a crop that fits, else the whole image; bilinear resize to 128), then every pixel
with all channels ``< 0.5`` is made white, which whitens the background and the rotation's black corners.
Without augmentation only the last step runs, so the shape sits on white.

Bias ``b``: of the ``n // 2`` triangles ``round(b * n // 2)`` are red (the rest blue); of the ``n - n // 2``
squares ``round(b * (n - n // 2))`` are blue. Labels: shape 0 triangle / 1 square, colour 0 red / 1 blue.
Image ``i`` is augmented with its own stream ``seed_sequence(seed, "shapes", i)``, so it does not depend on
``n``; the order of the images is shuffled with ``(seed, "order")``.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
import torch
from PIL import Image

from fp_core.seeds import seed_sequence

__all__ = [
    "BLUE",
    "COLOURS",
    "IMAGE_SIZE",
    "RED",
    "SHAPES",
    "ShapesData",
    "augment",
    "base_image",
    "caption",
    "make_shapes",
    "whiten_dark",
]

IMAGE_SIZE = 128
RED: tuple[int, int, int] = (216, 27, 96)
BLUE: tuple[int, int, int] = (30, 136, 229)
SHAPES: tuple[str, str] = ("triangle", "square")  # label 0, 1
COLOURS: tuple[str, str] = ("red", "blue")  # label 0, 1
_RGB = {"red": RED, "blue": BLUE}

Shape = Literal["triangle", "square"]
Colour = Literal["red", "blue"]


def caption(shape: str, colour: str) -> str:
    """The CLIP caption of an image: ``"a red triangle"``, ``"a blue square"``, ..."""
    return f"a {colour} {shape}"


def _mask(shape: str) -> np.ndarray:
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    if shape == "triangle":
        for i in range(64):
            mask[32 + abs(32 - i) : 64, 32 + i] = True
    elif shape == "square":
        mask[46:82, 46:82] = True
    else:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return mask


def _base_black(shape: str, colour: str) -> np.ndarray:
    if colour not in _RGB:
        raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
    img = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    img[_mask(shape)] = _RGB[colour]
    return img


def whiten_dark(image: np.ndarray) -> np.ndarray:
    """Make white every pixel whose channels are all below half intensity: ``[H, W, 3]`` uint8 -> same."""
    out = image.copy()
    out[(out < 128).all(axis=-1)] = 255  # uint8 v < 128  <=>  v / 255 < 0.5
    return out


def base_image(shape: Shape, colour: Colour) -> np.ndarray:
    """The unaugmented image: ``[128, 128, 3]`` uint8, the shape on white."""
    return whiten_dark(_base_black(shape, colour))


def _crop_box(rng: np.random.Generator, size: int) -> tuple[int, int, int, int]:
    area = size * size
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = area * rng.uniform(0.5, 2.0)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= size and 0 < h <= size:
            top = int(rng.integers(0, size - h + 1))
            left = int(rng.integers(0, size - w + 1))
            return left, top, left + w, top + h
    return 0, 0, size, size  # torchvision's fallback: a centre crop at aspect 1, here the whole image


def augment(image_on_black: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random rotation, random resized crop, dark pixels to white: ``[128, 128, 3]`` uint8 -> same."""
    pil = Image.fromarray(image_on_black)
    angle = float(rng.uniform(-180.0, 180.0))
    pil = pil.rotate(angle, resample=Image.Resampling.NEAREST, expand=False, fillcolor=(0, 0, 0))
    box = _crop_box(rng, IMAGE_SIZE)
    pil = pil.resize((IMAGE_SIZE, IMAGE_SIZE), resample=Image.Resampling.BILINEAR, box=box)
    return whiten_dark(np.asarray(pil))


class ShapesData(NamedTuple):
    """``images [N, 3, 128, 128]`` float32 in [0, 1], ``shape [N]`` int64 (0 triangle, 1 square), ``colour [N]``
    int64 (0 red, 1 blue), ``captions`` (N strings)."""

    images: torch.Tensor
    shape: torch.Tensor
    colour: torch.Tensor
    captions: list[str]

    @property
    def groups(self) -> torch.Tensor:
        """Colour x shape group id ``2 * shape + colour``: ``[N]`` in {0, 1, 2, 3}."""
        return 2 * self.shape + self.colour


def make_shapes(n: int, bias: float, seed: int, *, augmented: bool = True) -> ShapesData:
    """``n`` images with colour bias ``bias`` (a ``bias`` share of triangles red, of squares blue)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= bias <= 1.0:
        raise ValueError(f"bias must be in [0, 1], got {bias}")
    n_tri, n_sq = n // 2, n - n // 2
    red_tri, blue_sq = round(bias * n_tri), round(bias * n_sq)
    shapes = [0] * n_tri + [1] * n_sq
    colours = [0] * red_tri + [1] * (n_tri - red_tri) + [1] * blue_sq + [0] * (n_sq - blue_sq)
    order = np.random.default_rng(seed_sequence(seed, "order")).permutation(n)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, j in enumerate(order):
        black = _base_black(SHAPES[shapes[j]], COLOURS[colours[j]])
        if augmented:
            images[i] = augment(black, np.random.default_rng(seed_sequence(seed, "shapes", i)))
        else:
            images[i] = whiten_dark(black)
    shape_t = torch.as_tensor([shapes[j] for j in order], dtype=torch.int64)
    colour_t = torch.as_tensor([colours[j] for j in order], dtype=torch.int64)
    return ShapesData(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).contiguous(),
        shape=shape_t,
        colour=colour_t,
        captions=[caption(SHAPES[s], COLOURS[c]) for s, c in zip(shape_t.tolist(), colour_t.tolist())],
    )
