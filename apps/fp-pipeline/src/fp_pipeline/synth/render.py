"""One image: draw the shapes, rasterise them supersampled, derive masks, colour the image, set attributes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from fp_pipeline.synth.attributes import attribute_values
from fp_pipeline.synth.config import SynthConfig
from fp_pipeline.synth.faces import draw_face
from fp_pipeline.synth.paints import Paint
from fp_pipeline.synth.population import STREAM_TEXTURE, Identity, ImageSpec, rng_for
from fp_pipeline.synth.raster import paint_coverage, part_masks, rasterize, rasterize_polygon_coverage
from fp_pipeline.synth.shading import compose, finish, paint_colours

__all__ = ["RenderedFace", "render_face"]


@dataclass(frozen=True)
class RenderedFace:
    """One rendered image with its annotations.

    Attributes:
        image: RGB image ``[H, W]``.
        labels: ``[H, W]`` uint8 visible part per pixel (0 background, ``PARTS.index(p) + 1``).
        masks: ``{part: bool [H, W]}`` for the parts present (non-empty masks only).
        attributes: ``[40]`` values of -1 / 1 in ``ATTRIBUTE_NAMES`` order.
    """

    image: Image.Image
    labels: np.ndarray
    masks: dict[str, np.ndarray]
    attributes: list[int]


def render_face(config: SynthConfig, identity: Identity, spec: ImageSpec) -> RenderedFace:
    """Render image ``spec.index`` (deterministic in the config's seed and the index)."""
    rng = rng_for(config.seed, STREAM_TEXTURE, spec.index)
    size, supersample = config.image_size, config.supersample
    drawing = draw_face(identity, spec, rng)
    paint_map = rasterize(drawing.shapes, drawing.pose, size * supersample)
    coverage = paint_coverage(paint_map, size, supersample)
    face_cover = rasterize_polygon_coverage(drawing.outline, drawing.pose, size, supersample)
    labels, masks = part_masks(coverage, face_cover)
    present = {part: mask for part, mask in masks.items() if mask.any()}
    tie_visible = bool((np.argmax(coverage, axis=0) == int(Paint.TIE)).any())
    image = finish(compose(coverage, paint_colours(identity, spec, drawing, size, rng)), spec, rng)
    return RenderedFace(
        image=image,
        labels=labels,
        masks=present,
        attributes=attribute_values(identity, spec, present, tie_visible),
    )
