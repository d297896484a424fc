"""One scene: rasterise every person supersampled, colour by coverage, and read the face and hand boxes.

Boxes come from the same paint map as the image: a box is the tight pixel box ``[x0, y0, x1, y1]``
(``x1``, ``y1`` exclusive, so ``x1 - x0`` is the width in pixels) of the output pixels that the region
covers at all (any of its sub-pixels, after occlusion), hence always inside the image. A region whose summed
coverage is below ``config.min_box_pixels`` (a hand behind the back, out of the frame or hidden behind the
other person) gets no box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from fp_core.seeds import seed_sequence
from fp_pipeline.synth.geometry import Pose, Shape
from fp_pipeline.synth.humans.body import HEAD_PAINTS, PersonDrawing, PersonSpec, draw_person, hand_paint
from fp_pipeline.synth.humans.captions import caption
from fp_pipeline.synth.humans.clothes import person_colours
from fp_pipeline.synth.humans.config import HumanSceneConfig
from fp_pipeline.synth.humans.pose_image import draw_pose_image
from fp_pipeline.synth.humans.scene import SceneSpec, background_image, sample_scene
from fp_pipeline.synth.humans.skeleton import SIDES
from fp_pipeline.synth.raster import rasterize

__all__ = ["PAINTS_PER_PERSON", "RenderedScene", "region_box", "render_scene"]

#: Paint ids of person ``p`` are ``p * PAINTS_PER_PERSON + local`` (0 is the background).
PAINTS_PER_PERSON = 64


@dataclass(frozen=True)
class RenderedScene:
    """One rendered image and its annotations.

    Attributes:
        scene: what was sampled.
        image: RGB ``[H, W]``.
        pose_image: RGB ``[H, W]`` OpenPose-style skeletons on black.
        paint_map: ``[H*ss, W*ss]`` uint8 paint ids (person ``p``: ``p * 64 + local``).
        regions: ``{"p0.face" | "p0.hand_right" | "p0.hand_left" | ...: float32 [H, W]}`` coverage of each region.
        face_boxes, hand_boxes: ``[x0, y0, x1, y1]`` int pixel boxes (faces by person, hands by person then
            right/left), only the visible ones.
        people: per person a dict of drawn attributes (what the caption says, plus boxes by name).
        caption: the caption.
    """

    scene: SceneSpec
    image: Image.Image
    pose_image: Image.Image
    paint_map: np.ndarray
    regions: dict[str, np.ndarray]
    face_boxes: list[list[int]]
    hand_boxes: list[list[int]]
    people: list[dict]
    caption: str


def _coverage(paint_map: np.ndarray, size: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint map -> (present ids ``[K]``, coverage ``[K, size, size]`` float32 summing to 1 per pixel)."""
    ids, compact = np.unique(paint_map, return_inverse=True)
    rows = np.arange(size * ss) // ss
    block = (rows[:, None] * size + rows[None, :]).ravel()
    flat = compact.ravel().astype(np.int64) * (size * size) + block
    counts = np.bincount(flat, minlength=len(ids) * size * size).astype(np.float32)
    return ids, counts.reshape(len(ids), size, size) / np.float32(ss * ss)


def region_box(coverage: np.ndarray, min_pixels: float) -> list[int] | None:
    """Tight ``[x0, y0, x1, y1]`` (exclusive ends) of the pixels with coverage > 0, or ``None`` when the summed
    coverage is below ``min_pixels`` (or zero)."""
    total = float(coverage.sum())
    if total <= 0 or total < min_pixels:
        return None
    ys, xs = np.nonzero(coverage > 0)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _regions(ids: np.ndarray, coverage: np.ndarray, count: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    local, person = ids % PAINTS_PER_PERSON, ids // PAINTS_PER_PERSON
    for p in range(count):
        mine = (person == p) & (ids > 0)
        wanted = {"face": np.isin(local, list(HEAD_PAINTS))}
        for side in SIDES:
            wanted["hand_right" if side < 0 else "hand_left"] = local == int(hand_paint(side))
        for name, select in wanted.items():
            out[f"p{p}.{name}"] = coverage[mine & select].sum(axis=0)
    return out


def _shapes(drawings: list[PersonDrawing]) -> list[Shape]:
    shapes = []
    for p, drawing in enumerate(drawings):
        offset = p * PAINTS_PER_PERSON
        shapes.extend(Shape(s.paint + offset, s.points, s.width, s.closed) for s in drawing.shapes)
    return shapes


def render_scene(config: HumanSceneConfig, index: int) -> RenderedScene:
    """Render image ``index`` of ``config`` (deterministic in ``(config.seed, index)``)."""
    size, ss = config.image_size, config.supersample
    scene = sample_scene(config, index)
    rng = np.random.default_rng(seed_sequence(config.seed, "humans-texture", index))
    drawings = [draw_person(person, rng) for person in scene.people]
    paint_map = rasterize(_shapes(drawings), Pose(), size * ss)
    ids, coverage = _coverage(paint_map, size, ss)
    colours = [person_colours(person, d, size, rng) for person, d in zip(scene.people, drawings)]
    image = np.zeros((size, size, 3), dtype=np.float32)
    for k, paint in enumerate(ids):
        p, local = divmod(int(paint), PAINTS_PER_PERSON)
        field = background_image(scene, size, rng) if paint == 0 else colours[p][local]()
        image += coverage[k, :, :, None] * np.asarray(field, dtype=np.float32)
    image = image * scene.brightness + config.noise_sigma * rng.standard_normal(image.shape).astype(
        np.float32
    )
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    regions = _regions(ids, coverage, len(drawings))
    face_boxes, hand_boxes, people = [], [], []
    for p, person in enumerate(scene.people):
        face = region_box(regions[f"p{p}.face"], config.min_box_pixels)
        hands = {
            n: region_box(regions[f"p{p}.{n}"], config.min_box_pixels) for n in ("hand_right", "hand_left")
        }
        face_boxes += [face] if face else []
        hand_boxes += [box for box in hands.values() if box]
        people.append(_attributes(person, face, hands))
    return RenderedScene(
        scene=scene,
        image=Image.fromarray(pixels),
        pose_image=draw_pose_image([d.skeleton for d in drawings], size),
        paint_map=paint_map,
        regions=regions,
        face_boxes=face_boxes,
        hand_boxes=hand_boxes,
        people=people,
        caption=caption(scene),
    )


def _attributes(person: PersonSpec, face: list[int] | None, hands: dict[str, list[int] | None]) -> dict:
    return {
        "sex": "male" if person.identity.male else "female",
        "skin": person.skin,
        "skin_tone": round(float(person.identity.tone), 4),
        "pose": person.pose_kind,
        "top_colour": person.top_colour,
        "top_pattern": person.top_pattern,
        "sleeves": person.sleeves,
        "bottom": person.bottom,
        "bottom_colour": person.bottom_colour,
        "face_box": face,
        "hand_boxes": hands,
    }
