"""Square crops of the face / hand boxes of images, for regional metrics (regional FD, per-region scores).

Boxes use the data layout's pixel convention (docs/fairhuman.md): ``[x0, y0, x1, y1]`` with exclusive ends,
pixel ``(row, col)`` spanning ``[col, col + 1) x [row, row + 1)``. A box's crop is the square of side
``ceil(max(w, h) * (1 + 2 * padding))`` (at most the image's shorter side) centred on the box's centre
(``left = round(cx - side / 2)``), shifted to lie inside the image, then resized to ``size`` bilinearly with
antialiasing (not resized when it already is ``size``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["crop_box", "crop_regions"]

Box = Sequence[float]


def crop_box(box: Box, height: int, width: int, padding: float = 0.0) -> tuple[int, int, int]:
    """``(top, left, side)`` of the padded square crop of ``box`` in an ``height x width`` image."""
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        raise ValueError(f"a box must be 4 finite numbers [x0, y0, x1, y1], got {list(box)!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {list(box)} is malformed: expected x1 > x0 and y1 > y0")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise ValueError(f"box {list(box)} lies outside the {width}x{height} image")
    side = min(math.ceil(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * padding) - 1e-9), height, width)
    side = max(side, 1)
    left = min(max(round((x0 + x1) / 2 - side / 2), 0), width - side)
    top = min(max(round((y0 + y1) / 2 - side / 2), 0), height - side)
    return int(top), int(left), int(side)


def crop_regions(
    images: torch.Tensor, boxes: Sequence[Sequence[Box]], size: int, *, padding: float = 0.0
) -> torch.Tensor:
    """``[N, 3, size, size]`` crops of every box of every image, image by image, box by box.

    Args:
        images: ``[B, 3, H, W]`` (any float range; dtype kept).
        boxes: ``B`` lists of ``[x0, y0, x1, y1]`` boxes (pixels, exclusive ends); an image may have none.
        size: the crops' side.
        padding: each side grows by this fraction of the box's longer side before squaring (0: tight).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be [B, C, H, W], got {getattr(images, 'shape', type(images).__name__)}"
        )
    if len(boxes) != images.shape[0]:
        raise ValueError(f"give one box list per image: {images.shape[0]} images, {len(boxes)} box lists")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not (isinstance(padding, int | float) and padding >= 0):
        raise ValueError(f"padding must be a number >= 0, got {padding!r}")
    height, width = images.shape[-2:]
    crops = []
    for index, image_boxes in enumerate(boxes):
        for box in image_boxes:
            top, left, side = crop_box(box, height, width, padding)
            crop = images[index : index + 1, :, top : top + side, left : left + side]
            if side != size:
                crop = F.interpolate(
                    crop.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
                ).to(images.dtype)
            crops.append(crop)
    if not crops:
        return images.new_zeros((0, images.shape[1], size, size))
    return torch.cat(crops)
