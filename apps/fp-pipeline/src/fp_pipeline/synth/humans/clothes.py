"""Colours of a person: named clothes colours, patterns and skin, plus the face renderer's head colours."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fp_pipeline.synth.humans.body import BodyPaint, PersonDrawing, PersonSpec
from fp_pipeline.synth.palette import skin_rgb
from fp_pipeline.synth.shading import paint_colours, smooth_noise

__all__ = ["COLOURS", "PATTERNS", "person_colours"]

#: Named colours of clothes (the caption uses the names), RGB in [0, 1]; far apart from one another.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.8, 0.1, 0.1),
    "orange": (0.95, 0.5, 0.05),
    "yellow": (0.95, 0.85, 0.15),
    "green": (0.1, 0.6, 0.2),
    "blue": (0.1, 0.25, 0.8),
    "purple": (0.5, 0.15, 0.6),
    "pink": (0.95, 0.42, 0.68),
    "white": (0.95, 0.95, 0.95),
    "black": (0.08, 0.08, 0.08),
    "gray": (0.5, 0.5, 0.5),
    "brown": (0.45, 0.27, 0.1),
}
PATTERNS: tuple[str, ...] = ("plain", "striped", "checked", "dotted")

ColourFn = Callable[[], np.ndarray]


def _top_field(person: PersonSpec, x: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` colour of the top: base colour, with stripes / checks / dots of the pattern colour."""
    base = np.asarray(COLOURS[person.top_colour], dtype=np.float32)
    second = np.asarray(COLOURS[person.pattern_colour], dtype=np.float32)
    period = 0.4 * person.unit
    gx = (x - person.neck[0]) / period
    gy = (y - person.neck[1]) / period
    if person.top_pattern == "striped":
        use = np.floor(gy).astype(int) % 2 == 1
    elif person.top_pattern == "checked":
        use = (np.floor(gx).astype(int) + np.floor(gy).astype(int)) % 2 == 1
    elif person.top_pattern == "dotted":
        use = np.hypot(gx - np.round(gx), gy - np.round(gy)) < 0.3
    else:
        use = np.zeros_like(x, dtype=bool)
    field = np.where(use[..., None], second, base)
    return (field * folds).astype(np.float32)


def person_colours(
    person: PersonSpec, drawing: PersonDrawing, size: int, rng: np.random.Generator
) -> dict[int, ColourFn]:
    """Lazy ``[H, W, 3]`` (or ``[3]``) colour of every local paint of ``person`` (head paints included)."""
    head = paint_colours(person.identity, person.face_spec, drawing.face, size, rng)
    colours: dict[int, ColourFn] = {int(k): v for k, v in head.items()}
    centres = (np.arange(size, dtype=np.float64) + 0.5) / size
    x, y = np.meshgrid(centres, centres)
    folds = (0.95 + 0.05 * smooth_noise(rng, size, 6))[..., None].astype(np.float32)
    skin = np.asarray(skin_rgb(person.identity.tone), dtype=np.float32)
    colours[int(BodyPaint.SKIN)] = lambda: skin * 0.95
    colours[int(BodyPaint.HAND_R)] = lambda: skin * 1.0
    colours[int(BodyPaint.HAND_L)] = lambda: skin * 1.0
    colours[int(BodyPaint.TOP)] = lambda: _top_field(person, x, y, folds)
    colours[int(BodyPaint.BOTTOM)] = lambda: np.asarray(COLOURS[person.bottom_colour], np.float32) * folds
    colours[int(BodyPaint.SHOE)] = lambda: np.asarray(COLOURS[person.shoe_colour], np.float32) * 0.8
    colours[int(BodyPaint.SEAT)] = lambda: np.array([0.42, 0.3, 0.18], dtype=np.float32) * folds
    return colours
