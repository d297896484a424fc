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

Splatters (:func:`make_splatters`, the negative side of the objective prompt pair, ``"Splatters of colors."``):
3-8 opaque ellipses and thick polylines in random colours (half of them red, blue or a red-blue mix, the
rest uniform RGB) on white, then a Gaussian blur of radius 1.5-5 px: roughly what a poor VAE decode looks like.
:func:`make_clip_training_set` mixes balanced shapes (``bias = 0.5``) and splatters, with captions from
:mod:`fp_qdgs.shapes.captions`, to train the embedded CLIP.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from fp_core.seeds import derive_seed, seed_sequence
from fp_qdgs.shapes.captions import shape_caption, splatter_caption

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
    "make_clip_training_set",
    "make_shapes",
    "make_splatters",
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


def _splatter_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    pick = rng.random()
    if pick < 0.2:
        return RED
    if pick < 0.4:
        return BLUE
    if pick < 0.5:
        t = rng.random()
        return tuple(int(round(t * r + (1 - t) * b)) for r, b in zip(RED, BLUE))  # type: ignore[return-value]
    return tuple(int(v) for v in rng.integers(0, 256, size=3))  # type: ignore[return-value]


def _splatter(rng: np.random.Generator) -> np.ndarray:
    """One splatter image: ``[128, 128, 3]`` uint8 (module docstring)."""
    pil = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(3, 9))):
        colour = _splatter_colour(rng)
        if rng.random() < 0.5:
            cx, cy = rng.uniform(0, IMAGE_SIZE, size=2)
            rx, ry = rng.uniform(6, 30, size=2)
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=colour)
        else:
            points = [
                tuple(float(v) for v in p)
                for p in rng.uniform(0, IMAGE_SIZE, size=(int(rng.integers(2, 6)), 2))
            ]
            draw.line(points, fill=colour, width=int(rng.integers(4, 15)), joint="curve")
    pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1.5, 5.0))))
    return np.asarray(pil)


def make_splatters(n: int, seed: int) -> torch.Tensor:
    """``n`` splatter images ``[n, 3, 128, 128]`` float32 in ``[0, 1]``; image ``i`` from ``(seed, "splatters", i)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i in range(n):
        images[i] = _splatter(np.random.default_rng(seed_sequence(seed, "splatters", i)))
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).contiguous()


def make_clip_training_set(n: int, seed: int, splatter_share: float = 0.1) -> tuple[torch.Tensor, list[str]]:
    """``n`` captioned images for the embedded CLIP: ``(images [n, 3, 128, 128] in [0, 1], n captions)``.

    ``round(splatter_share * n)`` splatters (:func:`make_splatters`), the rest balanced shapes
    (:func:`make_shapes` with ``bias = 0.5``), captioned by :mod:`fp_qdgs.shapes.captions` and shuffled together.
    Streams: shapes ``(seed, "clip", "shapes")``, splatters ``(seed, "clip", "splatters")``, captions
    ``(seed, "clip", "captions")``, order ``(seed, "clip", "order")``.
    """
    if not 0.0 <= splatter_share <= 1.0:
        raise ValueError(f"splatter_share must be in [0, 1], got {splatter_share}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    n_splatters = round(splatter_share * n)
    shapes = make_shapes(n - n_splatters, 0.5, derive_seed(seed, "clip", "shapes"))
    rng = np.random.default_rng(seed_sequence(seed, "clip", "captions"))
    captions = [shape_caption(s, c, rng) for s, c in zip(shapes.shape.tolist(), shapes.colour.tolist())]
    captions += [splatter_caption(rng) for _ in range(n_splatters)]
    position = torch.from_numpy(np.random.default_rng(seed_sequence(seed, "clip", "order")).permutation(n))
    images = torch.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.float32)
    images[position[: n - n_splatters]] = shapes.images  # item j of the concatenation goes to position[j]
    del shapes
    images[position[n - n_splatters :]] = make_splatters(n_splatters, derive_seed(seed, "clip", "splatters"))
    out_captions = [""] * n
    for j, p in enumerate(position.tolist()):
        out_captions[p] = captions[j]
    return images, out_captions
