"""Configuration of the human-scene renderer: the ``fairhuman_data`` section of params.yaml."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["BACKGROUNDS", "POSES", "SKIN_TONES", "HumanSceneConfig", "HumanSceneConfigError"]

#: Poses the skeleton module can build (see :mod:`fp_pipeline.synth.humans.skeleton`).
POSES: tuple[str, ...] = (
    "standing", "walking", "arms_raised", "waving", "hands_on_hips", "sitting", "hands_behind_back",
)  # fmt: skip
#: Scene backgrounds (see :mod:`fp_pipeline.synth.humans.scene`).
BACKGROUNDS: tuple[str, ...] = ("plain", "room", "park", "street")
#: Skin-tone groups and their tone intervals on the face renderer's light-to-dark ramp.
SKIN_TONES: dict[str, tuple[float, float]] = {
    "light": (0.0, 0.33),
    "medium": (0.33, 0.66),
    "dark": (0.66, 1.0),
}


class HumanSceneConfigError(ValueError):
    """A human-scene setting that is unknown, of the wrong type or out of range (the message names it)."""


def _uniform(names: tuple[str, ...]) -> dict[str, float]:
    return dict.fromkeys(names, 1.0)


@dataclass(frozen=True)
class HumanSceneConfig:
    """Everything that decides the human-scene dataset; the same config renders byte-identical files.

    Attributes:
        seed: root seed; image ``i`` depends only on ``(seed, i)``.
        num_images: number of images.
        image_size: side of the square images in pixels (>= 64; 128 by default, larger at real scale).
        supersample: shapes are drawn at ``image_size * supersample`` and averaged down (1..8).
        two_people_prob: probability that an image shows two people.
        person_height: ``[low, high]`` height of a standing person as a fraction of the image side (people
            are small, so faces and hands are small, as in "human in the scene" photos).
        skin_tone_weights: relative weights of ``light``, ``medium`` and ``dark`` skin.
        pose_weights: relative weights of the poses in :data:`POSES` (missing poses weigh 0).
        background_weights: relative weights of the backgrounds in :data:`BACKGROUNDS`.
        male_fraction: share of men.
        pattern_prob: probability that a top is striped, checked or dotted rather than plain.
        out_of_frame_prob: probability that a person is placed partly outside the frame (feet, hands).
        min_box_pixels: a face or hand gets a box only when it covers at least this many pixels (summed
            coverage); smaller (hidden, occluded or cut-off) ones get none.
        noise_sigma: standard deviation of the sensor noise added to the image (in [0, 1] units).
    """

    seed: int = 0
    num_images: int = 1000
    image_size: int = 128
    supersample: int = 3
    two_people_prob: float = 0.25
    person_height: tuple[float, float] = (0.45, 0.85)
    skin_tone_weights: dict[str, float] = field(default_factory=lambda: _uniform(tuple(SKIN_TONES)))
    pose_weights: dict[str, float] = field(default_factory=lambda: _uniform(POSES))
    background_weights: dict[str, float] = field(default_factory=lambda: _uniform(BACKGROUNDS))
    male_fraction: float = 0.5
    pattern_prob: float = 0.4
    out_of_frame_prob: float = 0.15
    min_box_pixels: float = 3.0
    noise_sigma: float = 0.01

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("num_images", self.num_images, 1, 10**7)
        _check_int("image_size", self.image_size, 64, 4096)
        _check_int("supersample", self.supersample, 1, 8)
        for name in ("two_people_prob", "male_fraction", "pattern_prob", "out_of_frame_prob"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        _check_float("min_box_pixels", self.min_box_pixels, 0.0, 1e6)
        _check_float("noise_sigma", self.noise_sigma, 0.0, 0.2)
        for name in ("two_people_prob", "male_fraction", "pattern_prob", "out_of_frame_prob",
                     "min_box_pixels", "noise_sigma"):  # fmt: skip
            object.__setattr__(self, name, float(getattr(self, name)))
        height = self.person_height
        if (
            not isinstance(height, tuple | list)
            or len(height) != 2
            or not all(_is_number(h) and 0.1 <= h <= 1.0 for h in height)
            or height[0] > height[1]
        ):
            raise HumanSceneConfigError(
                f"fairhuman_data.person_height: expected [low, high] with 0.1 <= low <= high <= 1, got {height!r}"
            )
        object.__setattr__(self, "person_height", (float(height[0]), float(height[1])))
        for name, known in (
            ("skin_tone_weights", tuple(SKIN_TONES)),
            ("pose_weights", POSES),
            ("background_weights", BACKGROUNDS),
        ):
            object.__setattr__(self, name, _check_weights(name, getattr(self, name), known))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> HumanSceneConfig:
        """Build from a params.yaml section: missing keys take defaults, unknown keys fail naming the key."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise HumanSceneConfigError(
                f"fairhuman_data: expected a mapping of settings, got {type(data).__name__}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise HumanSceneConfigError(
                f"fairhuman_data: unknown key {unknown[0]!r} (known keys: {', '.join(known)})"
            )
        kwargs = dict(data)
        if isinstance(kwargs.get("person_height"), list):
            kwargs["person_height"] = tuple(kwargs["person_height"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML form; ``HumanSceneConfig.from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = (
                list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, dict) else value
            )
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HumanSceneConfigError(
            f"fairhuman_data.{name}: expected an integer in [{low}, {high}], got {value!r}"
        )


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        raise HumanSceneConfigError(
            f"fairhuman_data.{name}: expected a number in [{low:g}, {high:g}], got {value!r}"
        )


def _check_weights(name: str, value: Any, known: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise HumanSceneConfigError(
            f"fairhuman_data.{name}: expected a mapping name -> weight, got {value!r}"
        )
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise HumanSceneConfigError(
            f"fairhuman_data.{name}: unknown name {unknown[0]!r} (known: {', '.join(known)})"
        )
    for key, weight in value.items():
        if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
            raise HumanSceneConfigError(
                f"fairhuman_data.{name}.{key}: expected a weight >= 0, got {weight!r}"
            )
    if sum(value.values()) <= 0:
        raise HumanSceneConfigError(f"fairhuman_data.{name}: at least one weight must be positive")
    return {key: float(value.get(key, 0.0)) for key in known}
