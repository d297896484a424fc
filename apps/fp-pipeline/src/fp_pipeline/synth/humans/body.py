"""A person's shapes: legs, torso, neck, the face renderer's head (scaled small), arms and hands with fingers.

Every shape is in image-side units (x right, y down, [0, 1] across the image) with a paint id
``offset + local``: the head keeps the face renderer's :class:`~fp_pipeline.synth.paints.Paint` ids, the body
uses :class:`BodyPaint` (ids above them), and ``offset`` separates the people of one image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import IntEnum

import numpy as np

from fp_pipeline.synth.faces import FaceDrawing, draw_face
from fp_pipeline.synth.geometry import Pose, Shape, ellipse
from fp_pipeline.synth.humans.skeleton import JOINTS, PROPORTIONS, SIDES, PoseAngles, Skeleton, build_skeleton
from fp_pipeline.synth.paints import Paint
from fp_pipeline.synth.population import Identity, ImageSpec

__all__ = [
    "BODY_ONLY_FACE_PAINTS",
    "HEAD_PAINTS",
    "BodyPaint",
    "HandDrawing",
    "PersonDrawing",
    "PersonSpec",
    "draw_person",
    "hand_paint",
]


class BodyPaint(IntEnum):
    """Body paints of one person (ids above the face renderer's :class:`Paint` ids)."""

    SKIN = 40
    TOP = 41
    BOTTOM = 42
    SHOE = 43
    HAND_R = 44  # the person's right hand (image left)
    HAND_L = 45
    SEAT = 46


#: Face-renderer paints that belong to its bust, not the head: never drawn on a person (our body replaces
#: them; the neck is drawn by the body with the face renderer's neck colour).
BODY_ONLY_FACE_PAINTS: frozenset[int] = frozenset(
    int(p) for p in (Paint.BACKGROUND, Paint.CLOTH, Paint.SHIRT, Paint.TIE, Paint.NECKLACE)
)
#: Local paints whose pixels make the face box: the head without the long hair falling behind it.
HEAD_PAINTS: frozenset[int] = frozenset(
    int(p) for p in Paint if int(p) not in BODY_ONLY_FACE_PAINTS | {int(Paint.HAIR_BACK), int(Paint.NECK)}
)


def hand_paint(side: int) -> BodyPaint:
    """The paint of the hand on ``side`` (-1: the person's right, +1: their left)."""
    return BodyPaint.HAND_R if side < 0 else BodyPaint.HAND_L


@dataclass(frozen=True)
class PersonSpec:
    """Everything drawn for one person (sampled by :mod:`~fp_pipeline.synth.humans.scene`)."""

    identity: Identity
    face_spec: ImageSpec
    skin: str  # "light" | "medium" | "dark"
    pose_kind: str
    pose: PoseAngles
    neck: tuple[float, float]
    unit: float  # head height, image-side units
    top_colour: str
    top_pattern: str  # "plain" | "striped" | "checked" | "dotted"
    pattern_colour: str
    sleeves: str  # "short" | "long"
    bottom: str  # "trousers" | "shorts" | "skirt"
    bottom_colour: str
    shoe_colour: str


@dataclass(frozen=True)
class HandDrawing:
    """One drawn hand: its side, palm centre and the tips of its five fingers (thumb last), image units."""

    side: int
    palm_centre: tuple[float, float]
    tips: np.ndarray  # [5, 2]


@dataclass(frozen=True)
class PersonDrawing:
    """The shapes of one person in drawing order (local paint ids) plus what colours and boxes need."""

    shapes: tuple[Shape, ...]
    face: FaceDrawing  # its pose places the head in the image
    skeleton: Skeleton  # face joints from the drawn head
    hands: tuple[HandDrawing, ...]
    chin_y: float


class _Out:
    def __init__(self) -> None:
        self.shapes: list[Shape] = []

    def fill(self, paint: int, points: np.ndarray | list) -> None:
        self.shapes.append(Shape(int(paint), np.asarray(points, dtype=float)))

    def line(self, paint: int, a: np.ndarray, b: np.ndarray, width: float) -> None:
        """A limb segment with round ends."""
        self.shapes.append(Shape(int(paint), np.stack([a, b]).astype(float), width=width))
        for point in (a, b):
            self.fill(paint, ellipse(float(point[0]), float(point[1]), width / 2, width / 2, 16))


def _head_pose(identity: Identity, neck: np.ndarray, unit: float, tilt: float) -> tuple[Pose, float]:
    """The pose that puts the face renderer's head (canonical units) on the neck; also the chin's y."""
    h = identity.face_half_height
    canonical_height = 2.06 * h + 0.075  # chin to the top of the hair cap
    scale = unit / canonical_height
    chin_y = float(neck[1] - PROPORTIONS["neck"] * unit)
    centre = (float(neck[0]), chin_y - h * scale)
    return Pose(rotation_deg=tilt, scale=scale, shift=(centre[0] - 0.5, centre[1] - 0.5)), chin_y


def _face_joints(skeleton: Skeleton, identity: Identity, pose: Pose) -> Skeleton:
    w, h = identity.face_half_width, identity.face_half_height
    eye_y = 0.5 - 0.18 * h
    canonical = {"nose": (0.5, eye_y + 0.8 * identity.nose_length)}
    for side in SIDES:
        prefix = "r_" if side < 0 else "l_"
        canonical[prefix + "eye"] = (0.5 + side * identity.eye_spacing * w, eye_y)
        canonical[prefix + "ear"] = (0.5 + side * (w + 0.006), eye_y + 0.035)
    joints = skeleton.joints.copy()
    for name, point in canonical.items():
        joints[JOINTS.index(name)] = pose.apply(np.asarray(point))
    return Skeleton(joints=joints, unit=skeleton.unit)


def _draw_hand(out: _Out, side: int, elbow: np.ndarray, wrist: np.ndarray, unit: float) -> HandDrawing:
    """Palm plus four fanned fingers and a thumb, along the forearm's direction."""
    d = wrist - elbow
    d = d / max(float(np.hypot(*d)), 1e-9)
    n = np.array([-d[1], d[0]])
    length = PROPORTIONS["hand"] * unit
    paint = hand_paint(side)
    palm = [wrist + length * (a * d + b * n) for a, b in
            ((-0.05, -0.17), (0.5, -0.24), (0.56, 0.0), (0.5, 0.24), (-0.05, 0.17))]  # fmt: skip
    out.fill(paint, palm)
    tips = []
    for offset, spread, finger in (
        (-0.18, -0.3, 0.36),
        (-0.06, -0.1, 0.44),
        (0.06, 0.1, 0.42),
        (0.18, 0.3, 0.34),
    ):
        base = wrist + length * (0.48 * d + offset * n)
        direction = math.cos(spread) * d + math.sin(spread) * n
        tip = base + length * finger * direction
        out.line(paint, base, tip, 0.09 * length)
        tips.append(tip)
    thumb_sign = -side
    base = wrist + length * (0.18 * d + thumb_sign * 0.18 * n)
    direction = math.cos(1.0) * d + thumb_sign * math.sin(1.0) * n
    tip = base + length * 0.36 * direction
    out.line(paint, base, tip, 0.11 * length)
    tips.append(tip)
    centre = wrist + 0.28 * length * d
    return HandDrawing(side=side, palm_centre=(float(centre[0]), float(centre[1])), tips=np.array(tips))


def _draw_legs(out: _Out, person: PersonSpec, skeleton: Skeleton) -> None:
    u = person.unit
    covered = person.bottom == "trousers"
    for side in SIDES:
        prefix = "r_" if side < 0 else "l_"
        hip, knee, ankle = (skeleton.joint(prefix + j) for j in ("hip", "knee", "ankle"))
        thigh_paint = BodyPaint.SKIN if person.bottom == "skirt" else BodyPaint.BOTTOM
        out.line(thigh_paint, hip, knee, 0.62 * u)
        out.line(BodyPaint.BOTTOM if covered else BodyPaint.SKIN, knee, ankle, 0.46 * u)
        foot = ankle + u * np.array([side * 0.12, 0.1])
        out.fill(BodyPaint.SHOE, ellipse(float(foot[0]), float(foot[1]), 0.32 * u, 0.15 * u, 20))


def _draw_torso(out: _Out, person: PersonSpec, neck: np.ndarray) -> None:
    u = person.unit
    rel = [(-0.45, -0.02), (-0.95, 0.12), (-1.05, 0.5), (-0.72, 2.8), (0.72, 2.8), (1.05, 0.5), (0.95, 0.12),
           (0.45, -0.02)]  # fmt: skip
    out.fill(BodyPaint.TOP, [neck + u * np.array(p) for p in rel])
    if person.bottom == "skirt":
        rel = [(-0.7, 2.5), (0.7, 2.5), (1.25, 4.0), (-1.25, 4.0)]
    else:
        rel = [(-0.7, 2.5), (0.7, 2.5), (0.76, 3.0), (-0.76, 3.0)]
    out.fill(BodyPaint.BOTTOM, [neck + u * np.array(p) for p in rel])


def _draw_arms(out: _Out, person: PersonSpec, skeleton: Skeleton, hands: list[HandDrawing]) -> None:
    u = person.unit
    for side in SIDES:
        prefix = "r_" if side < 0 else "l_"
        shoulder, elbow, wrist = (skeleton.joint(prefix + j) for j in ("shoulder", "elbow", "wrist"))
        out.line(BodyPaint.TOP, shoulder, elbow, 0.45 * u)
        out.line(BodyPaint.SKIN if person.sleeves == "short" else BodyPaint.TOP, elbow, wrist, 0.36 * u)
        if not person.pose.hands_hidden:
            hands.append(_draw_hand(out, side, elbow, wrist, u))


def draw_person(person: PersonSpec, rng: np.random.Generator) -> PersonDrawing:
    """All shapes of ``person``, back to front; ``rng`` varies the head's small details only."""
    u = person.unit
    neck = np.asarray(person.neck, dtype=float)
    skeleton = build_skeleton(person.pose, person.neck, u)
    face = draw_face(person.identity, person.face_spec, rng)
    head_pose, chin_y = _head_pose(person.identity, neck, u, person.pose.head_tilt_deg)
    face = replace(face, pose=head_pose)
    skeleton = _face_joints(skeleton, person.identity, head_pose)
    head = [
        Shape(s.paint, head_pose.apply(s.points), s.width * head_pose.scale, s.closed)
        for s in face.shapes
        if s.paint not in BODY_ONLY_FACE_PAINTS
    ]
    out = _Out()
    hands: list[HandDrawing] = []
    if person.pose.seated:
        seat = ((-2.0, 2.3), (2.0, 2.3), (2.0, 3.2), (-2.0, 3.2))
        out.fill(BodyPaint.SEAT, [neck + u * np.array(p) for p in seat])
    _draw_legs(out, person, skeleton)
    out.shapes.extend(s for s in head if s.paint == Paint.HAIR_BACK)
    if person.pose.hands_hidden:
        _draw_arms(out, person, skeleton, hands)
    out.fill(
        Paint.NECK, [neck + u * np.array(p) for p in ((-0.2, -0.4), (0.2, -0.4), (0.22, 0.1), (-0.22, 0.1))]
    )
    _draw_torso(out, person, neck)
    out.shapes.extend(s for s in head if s.paint != Paint.HAIR_BACK)
    if not person.pose.hands_hidden:
        _draw_arms(out, person, skeleton, hands)
    return PersonDrawing(
        shapes=tuple(out.shapes), face=face, skeleton=skeleton, hands=tuple(hands), chin_y=chin_y
    )
