"""Configuration of the synthetic face renderer: the ``synth`` section of params.yaml."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["HAIR_COLOURS", "SkinToneGroup", "SynthConfig", "SynthConfigError"]

#: Hair colours the renderer can draw; the first four are CelebA attributes, ``red`` sets none of them.
HAIR_COLOURS: tuple[str, ...] = ("black", "brown", "blond", "gray", "red")


class SynthConfigError(ValueError):
    """A ``synth`` setting that is unknown, of the wrong type or out of range (the message names it)."""


def _default_light_hair() -> dict[str, float]:
    return {"black": 0.30, "brown": 0.36, "blond": 0.26, "gray": 0.03, "red": 0.05}


def _default_dark_hair() -> dict[str, float]:
    return {"black": 0.82, "brown": 0.16, "blond": 0.0, "gray": 0.02, "red": 0.0}


@dataclass(frozen=True)
class SkinToneGroup:
    """One skin-tone group: its name, tone interval, share of identities and hair colours.

    Attributes:
        name: the group's name (written to ``fp_skin_tone.txt``; its id is its position in the list).
        tone: ``[low, high]`` within [0, 1] (0 the lightest skin, 1 the darkest); each identity of the group
            gets a tone drawn uniformly from it.
        weight: relative share of identities (``7`` and ``1`` give 7:1); identities are allotted to groups
            by largest remainder, so the mix is exact up to rounding.
        hair_colours: relative weights of ``black``, ``brown``, ``blond``, ``gray``, ``red`` hair for the
            group's young identities (missing colours weigh 0; older ones also turn gray, see
            ``gray_hair_old_prob``).
    """

    name: str
    tone: tuple[float, float]
    weight: float
    hair_colours: dict[str, float] = field(default_factory=_default_light_hair)

    def __post_init__(self) -> None:
        where = f"synth.skin_tone_groups[{self.name!r}]"
        if not isinstance(self.name, str) or not self.name or any(c.isspace() for c in self.name):
            raise SynthConfigError(
                f"{where}.name: expected a non-empty name without spaces, got {self.name!r}"
            )
        if (
            not isinstance(self.tone, tuple | list)
            or len(self.tone) != 2
            or not all(_is_number(t) and 0.0 <= t <= 1.0 for t in self.tone)
            or self.tone[0] > self.tone[1]
        ):
            raise SynthConfigError(
                f"{where}.tone: expected [low, high] with 0 <= low <= high <= 1, got {self.tone!r}"
            )
        object.__setattr__(self, "tone", (float(self.tone[0]), float(self.tone[1])))
        if not _is_number(self.weight) or not self.weight > 0 or not math.isfinite(self.weight):
            raise SynthConfigError(f"{where}.weight: expected a positive number, got {self.weight!r}")
        object.__setattr__(self, "weight", float(self.weight))
        if not isinstance(self.hair_colours, Mapping):
            raise SynthConfigError(f"{where}.hair_colours: expected a mapping colour -> weight")
        unknown = sorted(set(self.hair_colours) - set(HAIR_COLOURS))
        if unknown:
            raise SynthConfigError(
                f"{where}.hair_colours: unknown colour {unknown[0]!r} (known: {', '.join(HAIR_COLOURS)})"
            )
        for colour, weight in self.hair_colours.items():
            if not _is_number(weight) or weight < 0 or not math.isfinite(weight):
                raise SynthConfigError(
                    f"{where}.hair_colours.{colour}: expected a weight >= 0, got {weight!r}"
                )
        if sum(self.hair_colours.values()) <= 0:
            raise SynthConfigError(f"{where}.hair_colours: at least one colour needs a positive weight")
        object.__setattr__(
            self, "hair_colours", {c: float(self.hair_colours.get(c, 0.0)) for c in HAIR_COLOURS}
        )

    @classmethod
    def from_dict(cls, data: Any, position: int) -> SkinToneGroup:
        """Build a group from ``{"name": ..., "tone": [lo, hi], "weight": ..., "hair_colours": {...}}``."""
        where = f"synth.skin_tone_groups[{position}]"
        if not isinstance(data, Mapping):
            raise SynthConfigError(f"{where}: expected a mapping with name, tone, weight, got {data!r}")
        known = {"name", "tone", "weight", "hair_colours"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SynthConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        missing = sorted({"name", "tone", "weight"} - set(data))
        if missing:
            raise SynthConfigError(f"{where}: missing key {missing[0]!r}")
        kwargs = dict(data)
        if isinstance(kwargs.get("tone"), list):
            kwargs["tone"] = tuple(kwargs["tone"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML/JSON form (lists, floats)."""
        return {
            "name": self.name,
            "tone": list(self.tone),
            "weight": self.weight,
            "hair_colours": dict(self.hair_colours),
        }


def _default_groups() -> tuple[SkinToneGroup, ...]:
    return (
        SkinToneGroup("light", (0.0, 0.45), 7.0, _default_light_hair()),
        SkinToneGroup("dark", (0.6, 1.0), 1.0, _default_dark_hair()),
    )


def _default_splits() -> dict[str, float]:
    return {"train": 0.8, "val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the synthetic dataset; the same config renders byte-identical files.

    Size and format:
        seed: seed of every random choice.
        num_identities: number of people; each has fixed geometry, skin tone, hair colour and sex.
        images_per_identity: images per person (pose, lighting, expression, accessories and background
            change between them); the dataset holds ``num_identities * images_per_identity`` images.
        image_size: side of the square images and masks in pixels (>= 32).
        supersample: the label map is drawn at ``image_size * supersample`` and each output pixel takes the
            part covering most of its ``supersample**2`` sub-pixels (1..8).
        jpeg_quality: JPEG quality of the images (50..100).
        celeba_pool: images get distinct CelebA indices drawn from ``range(celeba_pool)`` (CelebA: 202599).
        splits: ``{"train": f, "val": f, "test": f}`` fractions of identities per split (sum 1); the split is
            by identity and stratified by skin-tone group.

    Demographics (identity level):
        skin_tone_groups: list of ``{name, tone: [low, high], weight, hair_colours: {colour: weight}}``
            (see :class:`SkinToneGroup`); default light [0, 0.45] and dark [0.6, 1] at 7:1.
        male_fraction: share of men.
        young_fraction: share of young people (older ones may turn gray, bald, get bags under the eyes).
        gray_hair_old_prob: probability that an older person's hair is gray, whatever the group's colours.
        wrinkles_old_prob: probability that an older person has forehead lines and nasolabial folds (the
            clearest age cue a small image keeps; young people never do).
        bald_prob: probability that an older man is bald (young men: a fifth of it; women: never).
        beard_prob: probability that a man has facial hair (stubble, mustache, goatee or full beard).
        bangs_prob: probability of bangs (for people with hair).

    Per image:
        eyeglasses_prob: probability of glasses; ``sunglasses_fraction`` of them are sunglasses that hide
            the eyes.
        hat_prob: probability of a hat.
        earrings_prob: probability of earrings for women (men: a tenth of it).
        necklace_prob: probability of a necklace for women (men: a tenth of it).
        necktie_prob: probability of a necktie for men (women: never).
        lipstick_prob: probability of lipstick for women (men: never).
        heavy_makeup_prob: probability of eye shadow and blush for women (men: never).
        smiling_prob: probability of an open smile (mouth region between the lips).
        mouth_open_prob: probability that a non-smiling mouth is slightly open.
        blur_prob: probability of a Gaussian blur (sets ``Blurry``).
        max_rotation_deg: in-plane rotation is uniform in ``[-max, max]`` degrees.
        scale_range: ``[low, high]`` zoom of the whole head.
        max_shift: horizontal and vertical shift up to this fraction of the image side.
        max_yaw: the inner features (eyes, brows, nose, mouth, glasses) shift sideways by up to this fraction
            of the face width, and the far ear hides behind the face.
    """

    seed: int = 0
    num_identities: int = 128
    images_per_identity: int = 4
    image_size: int = 128
    supersample: int = 4
    jpeg_quality: int = 95
    celeba_pool: int = 202_599
    splits: dict[str, float] = field(default_factory=_default_splits)
    skin_tone_groups: tuple[SkinToneGroup, ...] = field(default_factory=_default_groups)
    male_fraction: float = 0.42
    young_fraction: float = 0.78
    gray_hair_old_prob: float = 0.35
    wrinkles_old_prob: float = 0.85
    bald_prob: float = 0.25
    beard_prob: float = 0.35
    bangs_prob: float = 0.18
    eyeglasses_prob: float = 0.08
    sunglasses_fraction: float = 0.25
    hat_prob: float = 0.06
    earrings_prob: float = 0.3
    necklace_prob: float = 0.2
    necktie_prob: float = 0.15
    lipstick_prob: float = 0.7
    heavy_makeup_prob: float = 0.5
    smiling_prob: float = 0.48
    mouth_open_prob: float = 0.1
    blur_prob: float = 0.06
    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.95, 1.15)
    max_shift: float = 0.05
    max_yaw: float = 0.08

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("num_identities", self.num_identities, 1, 10**6)
        _check_int("images_per_identity", self.images_per_identity, 1, 10**4)
        _check_int("image_size", self.image_size, 32, 4096)
        _check_int("supersample", self.supersample, 1, 8)
        _check_int("jpeg_quality", self.jpeg_quality, 50, 100)
        _check_int("celeba_pool", self.celeba_pool, 1, 10**9)
        if self.celeba_pool < self.num_images:
            raise SynthConfigError(
                f"synth.celeba_pool: {self.celeba_pool} is smaller than the {self.num_images} images to index"
            )
        self._check_splits()
        self._check_groups()
        for name in (
            "male_fraction", "young_fraction", "gray_hair_old_prob", "wrinkles_old_prob", "bald_prob", "beard_prob", "bangs_prob",
            "eyeglasses_prob", "sunglasses_fraction", "hat_prob", "earrings_prob", "necklace_prob",
            "necktie_prob", "lipstick_prob", "heavy_makeup_prob", "smiling_prob", "mouth_open_prob",
            "blur_prob",
        ):  # fmt: skip
            _check_float(name, getattr(self, name), 0.0, 1.0)
            object.__setattr__(self, name, float(getattr(self, name)))
        _check_float("max_rotation_deg", self.max_rotation_deg, 0.0, 45.0)
        _check_float("max_shift", self.max_shift, 0.0, 0.2)
        _check_float("max_yaw", self.max_yaw, 0.0, 0.3)
        scale = self.scale_range
        if (
            not isinstance(scale, tuple | list)
            or len(scale) != 2
            or not all(_is_number(s) and 0.5 <= s <= 1.5 for s in scale)
            or scale[0] > scale[1]
        ):
            raise SynthConfigError(
                f"synth.scale_range: expected [low, high] with 0.5 <= low <= high <= 1.5, got {scale!r}"
            )
        object.__setattr__(self, "scale_range", (float(scale[0]), float(scale[1])))
        for name in ("max_rotation_deg", "max_shift", "max_yaw"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def _check_splits(self) -> None:
        if not isinstance(self.splits, Mapping) or set(self.splits) != {"train", "val", "test"}:
            got = sorted(self.splits) if isinstance(self.splits, Mapping) else self.splits
            raise SynthConfigError(f"synth.splits: expected exactly the keys train, val, test, got {got!r}")
        for name, fraction in self.splits.items():
            _check_float(f"splits.{name}", fraction, 0.0, 1.0)
        total = sum(self.splits.values())
        if abs(total - 1.0) > 1e-6:
            raise SynthConfigError(f"synth.splits: the fractions must sum to 1, they sum to {total:g}")
        object.__setattr__(self, "splits", {k: float(self.splits[k]) for k in ("train", "val", "test")})

    def _check_groups(self) -> None:
        groups = self.skin_tone_groups
        if not isinstance(groups, tuple | list) or not groups:
            raise SynthConfigError("synth.skin_tone_groups: expected a non-empty list of groups")
        if not all(isinstance(g, SkinToneGroup) for g in groups):
            raise SynthConfigError("synth.skin_tone_groups: every entry must be a SkinToneGroup")
        names = [g.name for g in groups]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise SynthConfigError(f"synth.skin_tone_groups: the name {duplicated[0]!r} is used twice")
        object.__setattr__(self, "skin_tone_groups", tuple(groups))

    @property
    def num_images(self) -> int:
        """``num_identities * images_per_identity``."""
        return self.num_identities * self.images_per_identity

    @property
    def group_names(self) -> list[str]:
        """Skin-tone group names; a group's id is its position."""
        return [group.name for group in self.skin_tone_groups]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SynthConfig:
        """Build from the ``synth`` section of params.yaml: missing keys take defaults, unknown keys fail."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise SynthConfigError(f"synth: expected a mapping of settings, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SynthConfigError(f"synth: unknown key {unknown[0]!r} (known keys: {', '.join(known)})")
        kwargs = dict(data)
        if "skin_tone_groups" in kwargs:
            groups = kwargs["skin_tone_groups"]
            if not isinstance(groups, list | tuple) or not groups:
                raise SynthConfigError(
                    f"synth.skin_tone_groups: expected a non-empty list of {{name, tone, weight}}, got {groups!r}"
                )
            kwargs["skin_tone_groups"] = tuple(SkinToneGroup.from_dict(g, i) for i, g in enumerate(groups))
        if isinstance(kwargs.get("scale_range"), list):
            kwargs["scale_range"] = tuple(kwargs["scale_range"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML/JSON form; ``SynthConfig.from_dict(c.to_dict()) == c``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "skin_tone_groups":
                value = [group.to_dict() for group in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SynthConfigError(f"synth.{name}: expected an integer in [{low}, {high}], got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float) -> None:
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        raise SynthConfigError(f"synth.{name}: expected a number in [{low:g}, {high:g}], got {value!r}")
