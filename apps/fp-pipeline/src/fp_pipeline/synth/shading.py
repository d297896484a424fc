"""Colours: each paint's colour field, the anti-aliased composite, then lighting, sensor noise and blur.

The image is made from the same coverage the masks come from: an output pixel's colour is the
coverage-weighted mix of its paints' colours, so the part that covers most of a pixel (its mask label)
dominates its colour. Lighting, noise and blur touch the image only, never the masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from fp_pipeline.synth.faces import FaceDrawing
from fp_pipeline.synth.paints import Paint
from fp_pipeline.synth.palette import skin_rgb
from fp_pipeline.synth.population import Identity, ImageSpec

__all__ = ["compose", "finish", "paint_colours", "smooth_noise"]

ColourField = np.ndarray  # [H, W, 3] or [3], float32 in [0, 1]


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise ``[size, size]`` in about [-1, 1]: a random ``cells x cells`` grid, bicubic-resized."""
    grid = rng.uniform(-1.0, 1.0, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC))


def _mix(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    return (1.0 - share) * np.asarray(a, dtype=np.float32) + share * np.asarray(b, dtype=np.float32)


class _Fields:
    """Per-pixel quantities shared by several paints, on the output grid."""

    def __init__(self, drawing: FaceDrawing, size: int, rng: np.random.Generator) -> None:
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        self.x, self.y = np.meshgrid(centres, centres)  # image coordinates in [0, 1]
        canonical = drawing.pose.invert(np.stack([self.x, self.y], axis=-1))
        self.u, self.v = canonical[..., 0], canonical[..., 1]
        cx, cy = drawing.centre
        w, h = drawing.half_size
        radius2 = ((self.u - cx) / w) ** 2 + ((self.v - cy) / h) ** 2
        self.face_shade = (1.05 - 0.2 * np.clip(radius2, 0.0, 1.6))[..., None].astype(np.float32)
        self.mottle = (1.0 + 0.04 * smooth_noise(rng, size, 7))[..., None]
        self.fine = rng.standard_normal((size, size)).astype(np.float32)[..., None]
        self.folds = (0.86 + 0.14 * smooth_noise(rng, size, 5))[..., None]
        warp = smooth_noise(rng, size, 4)
        strands = np.sin(2 * math.pi * (size / 4.0) * (self.u + 0.03 * warp) + 4.0 * warp)
        top = drawing.hair_top
        sheen = 0.16 * np.exp(-(((self.v - (top + 0.06)) / 0.045) ** 2))
        grain = 0.05 * np.clip(self.fine[..., 0], -2.0, 2.0)
        self.hair_texture = (0.84 + 0.07 * strands + sheen + grain)[..., None].astype(np.float32)
        self.chin_y = cy + h


def _background(spec: ImageSpec, fields: _Fields, rng: np.random.Generator, size: int) -> np.ndarray:
    a, b = (np.asarray(c, dtype=np.float32) for c in spec.background_rgb)
    if spec.background == "flat":
        weight = np.zeros_like(fields.x)
    elif spec.background == "gradient":
        along = (fields.x - 0.5) * math.cos(spec.background_angle) + (fields.y - 0.5) * math.sin(
            spec.background_angle
        )
        weight = np.clip(along + 0.5, 0.0, 1.0)
    elif spec.background == "radial":
        weight = np.clip(np.hypot(fields.x - 0.5, fields.y - 0.45) / 0.7, 0.0, 1.0)
    else:
        weight = 0.5 + 0.5 * smooth_noise(rng, size, 9)
    return _mix(a, b, 1.0)[None, None] * weight[..., None] + a[None, None] * (1.0 - weight[..., None])


def paint_colours(
    identity: Identity, spec: ImageSpec, drawing: FaceDrawing, size: int, rng: np.random.Generator
) -> dict[Paint, Callable[[], ColourField]]:
    """Lazy colour field of every paint (only the paints present get evaluated)."""
    fields = _Fields(drawing, size, rng)
    skin = np.asarray(skin_rgb(identity.tone), dtype=np.float32)
    hair = np.asarray(identity.hair_rgb, dtype=np.float32)
    lip = np.asarray(spec.lip_rgb, dtype=np.float32)
    light_hair = identity.hair_colour in ("blond", "gray")
    brow = _mix(hair, (0.28, 0.19, 0.11), 0.45 if light_hair else 0.0) * 0.75
    shaded_skin = skin * fields.face_shade * fields.mottle

    def iris() -> ColourField:
        field = np.broadcast_to(np.asarray(identity.iris_rgb, dtype=np.float32), (size, size, 3)).copy()
        for ix, iy, radius in drawing.irises:
            pupil = np.hypot(fields.u - ix, fields.v - iy) < 0.45 * radius
            field[pupil] *= 0.2
        return field

    def neck() -> ColourField:
        shadow = np.clip((fields.v - fields.chin_y) / 0.1, 0.0, 1.0)[..., None]
        return skin * (0.7 + 0.14 * shadow) * fields.mottle

    def jewel() -> ColourField:
        return np.asarray(spec.jewel_rgb, dtype=np.float32) * (0.85 + 0.12 * np.clip(fields.fine, -1.5, 1.5))

    return {
        Paint.BACKGROUND: lambda: _background(spec, fields, rng, size),
        Paint.HAIR_BACK: lambda: hair * fields.hair_texture * 0.82,
        Paint.HAIR_FRONT: lambda: hair * fields.hair_texture,
        Paint.NECK: neck,
        Paint.CLOTH: lambda: np.asarray(spec.cloth_rgb, dtype=np.float32) * fields.folds,
        Paint.SHIRT: lambda: np.asarray(spec.shirt_rgb, dtype=np.float32) * fields.folds,
        Paint.TIE: lambda: (
            np.asarray(spec.tie_rgb, dtype=np.float32)
            * (0.9 + 0.1 * np.sign(np.sin(60 * (fields.u + fields.v))))[..., None]
        ),
        Paint.NECKLACE: jewel,
        Paint.EARRING: jewel,
        Paint.EAR_L: lambda: shaded_skin * 0.9,
        Paint.EAR_R: lambda: shaded_skin * 0.9,
        Paint.FACE: lambda: shaded_skin,
        Paint.CHIN_FOLD: lambda: shaded_skin * 0.72,
        Paint.STUBBLE: lambda: (
            _mix(skin, hair * 0.5, 0.35) * fields.face_shade * (0.92 + 0.08 * np.clip(fields.fine, -2, 2))
        ),
        Paint.BEARD: lambda: _mix(skin, hair * 0.85, 0.8) * (0.85 + 0.1 * np.clip(fields.fine, -2, 2)),
        Paint.CHEEKBONE: lambda: shaded_skin * 1.05,
        Paint.CHEEK: lambda: _mix(skin, (0.88, 0.35, 0.38), 0.35) * fields.face_shade,
        Paint.EYE_BAG: lambda: shaded_skin * np.array([0.84, 0.8, 0.86], dtype=np.float32),
        Paint.WRINKLE: lambda: shaded_skin * np.array([0.7, 0.66, 0.66], dtype=np.float32),
        Paint.EYESHADOW: lambda: _mix(skin, spec.eyeshadow_rgb, 0.6) * fields.face_shade,
        Paint.NOSE: lambda: shaded_skin * 0.88,
        Paint.EYE_L: lambda: np.array([0.93, 0.91, 0.89], dtype=np.float32),
        Paint.EYE_R: lambda: np.array([0.93, 0.91, 0.89], dtype=np.float32),
        Paint.IRIS_L: iris,
        Paint.IRIS_R: iris,
        Paint.MOUTH: lambda: np.array([0.28, 0.07, 0.08], dtype=np.float32),
        Paint.TEETH: lambda: np.array([0.95, 0.93, 0.86], dtype=np.float32),
        Paint.LIP_U: lambda: lip * 0.88,
        Paint.LIP_L: lambda: lip * (1.0 + 0.05 * fields.mottle),
        Paint.GLASS_LENS: lambda: (
            np.array([0.07, 0.07, 0.09], dtype=np.float32)
            * (1.0 + 0.8 * np.clip(fields.y[..., None] - 0.3, 0, 1))
        ),
        Paint.GLASS_FRAME: lambda: np.asarray(spec.frame_rgb, dtype=np.float32),
        Paint.BROW_L: lambda: brow,
        Paint.BROW_R: lambda: brow,
        Paint.HAT: lambda: (
            np.asarray(spec.hat_rgb, dtype=np.float32)
            * (0.9 + 0.1 * np.sin(2 * math.pi * (size / 6.0) * fields.u))[..., None]
        ),
        Paint.HAT_BAND: lambda: np.asarray(spec.hat_band_rgb, dtype=np.float32) * fields.folds,
    }


def compose(coverage: np.ndarray, colours: dict[Paint, Callable[[], ColourField]]) -> np.ndarray:
    """Coverage ``[P, H, W]`` and per-paint colours -> image ``[H, W, 3]`` float32 (coverage-weighted mix)."""
    num_paints, height, width = coverage.shape
    image = np.zeros((height, width, 3), dtype=np.float32)
    present = np.flatnonzero(coverage.reshape(num_paints, -1).max(axis=1) > 0)
    for paint in present:
        image += coverage[paint, :, :, None] * np.asarray(colours[Paint(int(paint))](), dtype=np.float32)
    return image


def finish(image: np.ndarray, spec: ImageSpec, rng: np.random.Generator) -> Image.Image:
    """Lighting (directional gradient, brightness, tint), sensor noise and blur -> RGB PIL image."""
    size = image.shape[0]
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(centres, centres)
    along = (x - 0.5) * math.cos(spec.light_angle) + (y - 0.5) * math.sin(spec.light_angle)
    light = np.clip(spec.brightness * (1.0 + 1.4 * spec.light_strength * along), 0.3, 1.6)
    lit = image * light[..., None] * np.asarray(spec.tint, dtype=np.float32)
    lit = lit + spec.noise_sigma * rng.standard_normal(lit.shape).astype(np.float32)
    pixels = np.clip(np.rint(lit * 255.0), 0, 255).astype(np.uint8)
    result = Image.fromarray(pixels)
    if spec.blur_radius > 0:
        result = result.filter(ImageFilter.GaussianBlur(radius=spec.blur_radius * size / 128.0))
    return result
