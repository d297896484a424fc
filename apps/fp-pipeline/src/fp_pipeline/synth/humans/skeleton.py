"""Poses: an OpenPose-18 skeleton built from sampled joint angles (image-side units, x right, y down).

The person faces the camera, so their right side (``r_*`` joints, side ``-1``) is on the image's left.
A limb segment's direction is an angle from straight down, positive away from the body's midline
(``pi``: straight up), and a foreshortening factor in (0, 1] (a limb pointing towards the camera looks
shorter: a sitting person's thighs, a walking person's lifted shin). Lengths are in head units ``unit``
(chin to crown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "JOINTS",
    "LIMBS",
    "PROPORTIONS",
    "SIDES",
    "LimbAngles",
    "PoseAngles",
    "Skeleton",
    "build_skeleton",
    "sample_pose",
]

#: OpenPose-18 joint order (the order ControlNet's OpenPose conditions are drawn in).
JOINTS: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)  # fmt: skip
#: OpenPose-18 limbs as pairs of joint indices, in the standard drawing order.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
#: ``-1``: the person's right (image left), ``+1``: their left (image right).
SIDES: tuple[int, int] = (-1, 1)
#: Body proportions in head units.
PROPORTIONS: dict[str, float] = {
    "shoulder_half": 0.95, "torso": 2.7, "hip_half": 0.55, "upper_arm": 1.35, "forearm": 1.2,
    "hand": 0.85, "thigh": 1.95, "shin": 1.85, "neck": 0.2,
}  # fmt: skip


@dataclass(frozen=True)
class LimbAngles:
    """One limb's two segments: ``(angle, foreshortening)`` each; angles from straight down, outward > 0."""

    upper: tuple[float, float]
    lower: tuple[float, float]


@dataclass(frozen=True)
class PoseAngles:
    """A whole pose: the arms and legs of the right (index 0) and left (index 1) side, and what is hidden."""

    kind: str
    arms: tuple[LimbAngles, LimbAngles]
    legs: tuple[LimbAngles, LimbAngles]
    head_tilt_deg: float
    hands_hidden: bool  # hands behind the back: not drawn, no box
    seated: bool


@dataclass(frozen=True)
class Skeleton:
    """``joints``: ``[18, 2]`` in :data:`JOINTS` order (image-side units); ``unit``: head height."""

    joints: np.ndarray
    unit: float

    def joint(self, name: str) -> np.ndarray:
        """``[2]`` position of joint ``name``."""
        return self.joints[JOINTS.index(name)]


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _arm(rng: np.random.Generator, kind: str, raised: bool) -> LimbAngles:
    if raised:
        up = _u(rng, 2.5, 2.85)
        return LimbAngles((up, 1.0), (up + _u(rng, -0.25, 0.15), 1.0))
    if kind == "waving_arm":
        up = _u(rng, 1.5, 1.9)
        return LimbAngles((up, 1.0), (_u(rng, 2.75, 3.05), 1.0))
    if kind == "hands_on_hips":
        return LimbAngles((_u(rng, 0.55, 0.7), 1.0), (_u(rng, -0.85, -0.65), 1.0))
    if kind == "walking":
        return LimbAngles((_u(rng, 0.05, 0.2), _u(rng, 0.85, 1.0)), (_u(rng, -0.05, 0.25), _u(rng, 0.7, 1.0)))
    if kind == "sitting":
        return LimbAngles((_u(rng, 0.1, 0.25), 1.0), (_u(rng, -0.35, -0.1), _u(rng, 0.55, 0.7)))
    if kind == "hands_behind_back":
        return LimbAngles((_u(rng, 0.1, 0.2), 1.0), (_u(rng, -0.6, -0.4), 0.7))
    return LimbAngles((_u(rng, 0.08, 0.25), 1.0), (_u(rng, 0.0, 0.3), 1.0))


def _leg(rng: np.random.Generator, kind: str, lifted: bool) -> LimbAngles:
    if kind == "sitting":
        return LimbAngles((_u(rng, 0.25, 0.5), _u(rng, 0.3, 0.4)), (_u(rng, 0.0, 0.12), 1.0))
    if kind == "walking" and lifted:
        return LimbAngles(
            (_u(rng, 0.05, 0.15), _u(rng, 0.85, 0.95)), (_u(rng, 0.1, 0.25), _u(rng, 0.55, 0.7))
        )
    spread = (0.08, 0.22) if kind in ("arms_raised", "hands_on_hips") else (0.03, 0.12)
    thigh = _u(rng, *spread)
    return LimbAngles((thigh, 1.0), (thigh - _u(rng, 0.0, 0.06), 1.0))


def sample_pose(kind: str, rng: np.random.Generator) -> PoseAngles:
    """Joint angles of a pose of ``kind`` (one of ``config.POSES``), jittered by ``rng``."""
    waving_side = int(rng.integers(2))
    lifted_side = int(rng.integers(2))
    arms = []
    for side in range(2):
        if kind == "waving":
            arms.append(_arm(rng, "waving_arm" if side == waving_side else "standing", False))
        else:
            arms.append(_arm(rng, kind, kind == "arms_raised"))
    legs = tuple(_leg(rng, kind, side == lifted_side) for side in range(2))
    return PoseAngles(
        kind=kind,
        arms=(arms[0], arms[1]),
        legs=(legs[0], legs[1]),
        head_tilt_deg=_u(rng, -8.0, 8.0),
        hands_hidden=kind == "hands_behind_back",
        seated=kind == "sitting",
    )


def _step(start: np.ndarray, side: int, segment: tuple[float, float], length: float) -> np.ndarray:
    angle, shortening = segment
    return start + length * shortening * np.array([side * math.sin(angle), math.cos(angle)])


def build_skeleton(pose: PoseAngles, neck: tuple[float, float], unit: float) -> Skeleton:
    """The body joints of ``pose`` with the neck at ``neck`` and head height ``unit``.

    The face joints (nose, eyes, ears) are placed on a default head here; the body module overwrites them
    with the drawn head's landmarks.
    """
    p = PROPORTIONS
    joints = np.zeros((len(JOINTS), 2))
    base = np.asarray(neck, dtype=float)
    joints[1] = base
    for side, arm, leg in zip(SIDES, pose.arms, pose.legs):
        prefix = "r_" if side < 0 else "l_"
        shoulder = base + unit * np.array([side * p["shoulder_half"], 0.25])
        elbow = _step(shoulder, side, arm.upper, unit * p["upper_arm"])
        wrist = _step(elbow, side, arm.lower, unit * p["forearm"])
        hip = base + unit * np.array([side * p["hip_half"], p["torso"]])
        knee = _step(hip, side, leg.upper, unit * p["thigh"])
        ankle = _step(knee, side, leg.lower, unit * p["shin"])
        for name, point in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist), ("hip", hip),
                            ("knee", knee), ("ankle", ankle)):  # fmt: skip
            joints[JOINTS.index(prefix + name)] = point
    centre = base - np.array([0.0, unit * (p["neck"] + 0.45)])
    joints[0] = centre + unit * np.array([0.0, 0.12])
    for side in SIDES:
        prefix = "r_" if side < 0 else "l_"
        joints[JOINTS.index(prefix + "eye")] = centre + unit * np.array([side * 0.17, -0.05])
        joints[JOINTS.index(prefix + "ear")] = centre + unit * np.array([side * 0.38, 0.0])
    return Skeleton(joints=joints, unit=unit)
