"""Supersampled rasterisation: shapes -> paint map -> per-pixel paint coverage -> part masks.

Coordinates: a canonical point ``(x, y)`` in [0, 1] lies at ``(x * S, y * S)`` on a canvas of ``S`` pixels,
where pixel ``j`` spans ``[j, j + 1)``; output pixel ``j`` covers canvas pixels ``j * ss .. j * ss + ss - 1``,
so masks and images share one pixel grid exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from fp_pipeline.synth.geometry import Pose, Shape
from fp_pipeline.synth.layout import PARTS
from fp_pipeline.synth.paints import SKIN_UNDERLAY_PARTS, Paint, paint_to_part_matrix

__all__ = ["paint_coverage", "part_masks", "rasterize", "rasterize_polygon_coverage"]

_PAINT_PART_IDS = tuple(int(k) for k in np.argmax(paint_to_part_matrix(), axis=1))
_UNDERLAY_IDS = np.array([PARTS.index(p) + 1 for p in SKIN_UNDERLAY_PARTS])
_SKIN_ID = PARTS.index("skin") + 1


def _to_canvas(points: np.ndarray, pose: Pose, canvas: int) -> list[tuple[float, float]]:
    # PIL puts integer coordinates on pixel centres; our pixel j spans [j, j + 1), hence the half-pixel shift.
    posed = pose.apply(points) * canvas - 0.5
    return [(float(x), float(y)) for x, y in posed]


def rasterize(shapes: Sequence[Shape], pose: Pose, canvas: int) -> np.ndarray:
    """Draw ``shapes`` in order (later over earlier) -> paint map ``[canvas, canvas]`` uint8 (0: background)."""
    image = Image.new("L", (canvas, canvas), int(Paint.BACKGROUND))
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        points = _to_canvas(shape.points, pose, canvas)
        if shape.width > 0:
            if shape.closed:
                points = [*points, points[0], points[1]]
            width = max(1, round(shape.width * pose.scale * canvas))
            draw.line(points, fill=shape.paint, width=width, joint="curve")
        else:
            draw.polygon(points, fill=shape.paint)
    return np.asarray(image)


def rasterize_polygon_coverage(points: np.ndarray, pose: Pose, size: int, supersample: int) -> np.ndarray:
    """Share ``[size, size]`` float32 of each output pixel that one polygon covers."""
    canvas = size * supersample
    image = Image.new("L", (canvas, canvas), 0)
    ImageDraw.Draw(image).polygon(_to_canvas(points, pose, canvas), fill=1)
    blocks = np.asarray(image, dtype=np.float32).reshape(size, supersample, size, supersample)
    return blocks.mean(axis=(1, 3))


@lru_cache(maxsize=8)
def _block_index(size: int, supersample: int) -> np.ndarray:
    rows = np.arange(size * supersample) // supersample
    index = (rows[:, None] * size + rows[None, :]).ravel().astype(np.int64)
    index.setflags(write=False)
    return index


def paint_coverage(paint_map: np.ndarray, size: int, supersample: int) -> np.ndarray:
    """Paint map ``[size*ss, size*ss]`` -> coverage ``[num_paints, size, size]`` float32 (sums to 1 per pixel)."""
    num_paints = len(Paint)
    if paint_map.shape != (size * supersample, size * supersample):
        raise ValueError(
            f"paint map of shape {paint_map.shape} does not match size {size} x supersample {supersample}"
        )
    flat = paint_map.ravel().astype(np.int64) * (size * size) + _block_index(size, supersample)
    counts = np.bincount(flat, minlength=num_paints * size * size).astype(np.float32)
    return counts.reshape(num_paints, size, size) * np.float32(1.0 / (supersample * supersample))


def part_masks(coverage: np.ndarray, face_coverage: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Coverage ``[P, H, W]`` -> (label map ``[H, W]`` uint8 of part ids, ``{part: bool [H, W]}``).

    Each pixel takes the part covering most of it (ties: the lower part id), so a part covering more than
    half a pixel always gets it. The skin mask also holds the :data:`SKIN_UNDERLAY_PARTS` pixels that lie
    inside the face outline (``face_coverage >= 0.5``), like the release's annotations.
    """
    part_cover = np.zeros((len(PARTS) + 1, *coverage.shape[1:]), dtype=np.float32)
    for paint, part in enumerate(_PAINT_PART_IDS):
        part_cover[part] += coverage[paint]  # a loop, not a matmul: no BLAS threads per image
    labels = np.argmax(part_cover, axis=0).astype(np.uint8)
    masks = {part: labels == k + 1 for k, part in enumerate(PARTS)}
    underlay = np.isin(labels, _UNDERLAY_IDS) & (face_coverage >= 0.5)
    masks["skin"] = (labels == _SKIN_ID) | underlay
    return labels, masks
