"""A scene: its background (plain, room, park, street) and the people in it, sampled from ``(seed, index)``.

People are small: a standing person is ``person_height`` of the image side tall (about 8 head heights), so a
128-pixel image shows heads of about 7 to 14 pixels and hands of about 6 to 12. Sometimes two people stand
side by side; sometimes a person is partly outside the frame (feet or hands cut off).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from fp_core.seeds import derive_seed, seed_sequence
from fp_pipeline.synth.config import SkinToneGroup, SynthConfig
from fp_pipeline.synth.humans.body import PersonSpec
from fp_pipeline.synth.humans.clothes import COLOURS, PATTERNS
from fp_pipeline.synth.humans.config import SKIN_TONES, HumanSceneConfig
from fp_pipeline.synth.humans.skeleton import PROPORTIONS, build_skeleton, sample_pose
from fp_pipeline.synth.population import sample_identity, sample_image_spec

__all__ = ["STANDING_HEIGHT", "SceneSpec", "background_image", "face_config", "sample_scene"]

#: Crown-to-sole height of a standing person in head units.
STANDING_HEIGHT = (
    1.0 + PROPORTIONS["neck"] + PROPORTIONS["torso"] + PROPORTIONS["thigh"] + PROPORTIONS["shin"] + 0.25
)


@dataclass(frozen=True)
class SceneSpec:
    """One image: background kind and colours, the people (back to front) and the lighting."""

    index: int
    background: str
    background_rgb: tuple[tuple[float, float, float], ...]
    horizon: float  # y of the floor / ground line
    people: tuple[PersonSpec, ...]
    brightness: float


@lru_cache(maxsize=16)
def face_config(seed: int, male_fraction: float) -> SynthConfig:
    """The face renderer's settings for the heads: our skin-tone groups, no head pose (the body places it),
    rare small accessories, no blur."""
    groups = tuple(SkinToneGroup(name, tone, 1.0) for name, tone in SKIN_TONES.items())
    return SynthConfig(
        seed=derive_seed(seed, "humans-face"), skin_tone_groups=groups, male_fraction=male_fraction,
        blur_prob=0.0, max_rotation_deg=0.0, scale_range=(1.0, 1.0), max_shift=0.0, hat_prob=0.1,
        eyeglasses_prob=0.05,
    )  # fmt: skip


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _person(
    config: HumanSceneConfig, rng: np.random.Generator, index: int, slot: int, x: float, height: float
) -> PersonSpec:
    faces = face_config(config.seed, config.male_fraction)
    skin = _pick(rng, config.skin_tone_weights)
    face_index = 2 * index + slot
    identity = sample_identity(faces, face_index, list(SKIN_TONES).index(skin), 1)
    kind = _pick(rng, config.pose_weights)
    pose = sample_pose(kind, rng)
    unit = height / STANDING_HEIGHT
    feet = float(rng.uniform(0.86, 0.97))
    cut = rng.random() < config.out_of_frame_prob
    if cut:
        if rng.random() < 0.6:
            feet = float(rng.uniform(1.05, 1.3))
        else:
            x = float(np.clip(x + rng.choice([-1, 1]) * rng.uniform(0.2, 0.35), -0.05, 1.05))
    neck_y = feet - unit * (STANDING_HEIGHT - 1.0 - PROPORTIONS["neck"])
    joints = build_skeleton(pose, (0.0, 0.0), unit).joints
    reach = max(unit * 1.3, unit * PROPORTIONS["hand"] - float(joints[:, 1].min()))  # above the neck
    neck_y = max(neck_y, (unit * 1.3 if cut else reach) + 0.02)  # the head (and, uncut, the hands) in frame
    colours = list(COLOURS)
    top = colours[int(rng.integers(len(colours)))]
    pattern = "plain" if rng.random() >= config.pattern_prob else PATTERNS[1 + int(rng.integers(3))]
    contrast = "black" if top in ("white", "yellow", "pink", "orange") else "white"
    bottom = _pick(rng, {"trousers": 0.6, "shorts": 0.2, "skirt": 0.2 if not identity.male else 0.0})
    return PersonSpec(
        identity=identity,
        face_spec=sample_image_spec(faces, face_index, identity),
        skin=skin,
        pose_kind=kind,
        pose=pose,
        neck=(x, float(neck_y)),
        unit=float(unit),
        top_colour=top,
        top_pattern=pattern,
        pattern_colour=contrast,
        sleeves="short" if rng.random() < 0.5 else "long",
        bottom=bottom,
        bottom_colour=colours[int(rng.integers(len(colours)))],
        shoe_colour=("black", "brown", "white", "gray")[int(rng.integers(4))],
    )


def sample_scene(config: HumanSceneConfig, index: int) -> SceneSpec:
    """The scene of image ``index``: depends only on ``(config.seed, index)`` and the config."""
    rng = np.random.default_rng(seed_sequence(config.seed, "humans-scene", index))
    background = _pick(rng, config.background_weights)
    palette = tuple(tuple(float(v) for v in rng.uniform(0.15, 0.9, 3)) for _ in range(4))
    count = 2 if rng.random() < config.two_people_prob else 1
    xs = (
        [float(rng.uniform(0.2, 0.8))]
        if count == 1
        else [float(rng.uniform(0.15, 0.42)), float(rng.uniform(0.58, 0.85))]
    )
    shrink = 1.0 if count == 1 else 0.85
    people = [
        _person(config, rng, index, slot, x, shrink * float(rng.uniform(*config.person_height)))
        for slot, x in enumerate(xs)
    ]
    people.sort(key=lambda p: p.neck[1] + p.unit * STANDING_HEIGHT)  # further (feet higher) drawn first
    return SceneSpec(
        index=index,
        background=background,
        background_rgb=palette,
        horizon=float(rng.uniform(0.5, 0.72)),
        people=tuple(people),
        brightness=float(rng.uniform(0.94, 1.06)),
    )


def _rgb(colour: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colour)  # type: ignore[return-value]


def background_image(scene: SceneSpec, size: int, rng: np.random.Generator) -> np.ndarray:
    """``[size, size, 3]`` float32 background in [0, 1]."""
    rows = (np.arange(size, dtype=np.float32) + 0.5) / size
    a, b, c, d = (np.asarray(v, dtype=np.float32) for v in scene.background_rgb)
    if scene.background == "plain":
        return np.broadcast_to(a + (b - a) * rows[:, None, None], (size, size, 3)).astype(np.float32)
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    horizon = int(scene.horizon * size)
    if scene.background == "room":
        draw.rectangle((0, 0, size, horizon), fill=_rgb(0.6 + 0.4 * a))
        draw.rectangle((0, horizon, size, size), fill=_rgb(0.3 + 0.4 * b))
        x0 = int(rng.uniform(0.05, 0.6) * size)
        draw.rectangle((x0, int(0.12 * size), x0 + int(0.3 * size), int(0.4 * size)), fill=(170, 205, 235))
        draw.line((0, horizon, size, horizon), fill=_rgb(0.5 * b), width=max(1, size // 64))
    else:
        sky = (0.45, 0.65, 0.92) if scene.background == "park" else (0.62, 0.72, 0.85)
        draw.rectangle((0, 0, size, horizon), fill=_rgb(sky))
        ground = (0.25, 0.55, 0.2) if scene.background == "park" else (0.33, 0.33, 0.35)
        draw.rectangle((0, horizon, size, size), fill=_rgb(ground))
        for _ in range(int(rng.integers(2, 5))):
            x = rng.uniform(0, 1) * size
            if scene.background == "park":
                top, radius = horizon - rng.uniform(0.15, 0.3) * size, rng.uniform(0.06, 0.11) * size
                draw.rectangle((x - 0.015 * size, top, x + 0.015 * size, horizon + 2), fill=(90, 60, 35))
                draw.ellipse(
                    (x - radius, top - radius, x + radius, top + radius),
                    fill=_rgb(0.3 * c + (0.05, 0.35, 0.05)),
                )
            else:
                top, half = horizon - rng.uniform(0.2, 0.45) * size, rng.uniform(0.08, 0.16) * size
                draw.rectangle((x - half, top, x + half, horizon), fill=_rgb(0.3 + 0.5 * d))
    return np.asarray(image, dtype=np.float32) / 255.0
