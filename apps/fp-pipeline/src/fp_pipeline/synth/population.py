"""Who is in the synthetic dataset: identities (fixed traits), images (per-shot choices) and the splits.

Every random choice draws from ``numpy.random.default_rng([seed, stream, index])``, so one identity or image
depends only on the seed and its own index (and the dataset plan only on the seed and the config).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fp_pipeline.synth.config import HAIR_COLOURS, SynthConfig
from fp_pipeline.synth.palette import skin_rgb

__all__ = [
    "DatasetPlan",
    "Identity",
    "ImageSpec",
    "allot_groups",
    "plan_dataset",
    "rng_for",
    "sample_identity",
    "sample_image_spec",
    "split_counts",
]

RGB = tuple[float, float, float]

STREAM_PLAN, STREAM_IDENTITY, STREAM_IMAGE, STREAM_TEXTURE = 1, 2, 3, 4
#: CelebA holds 10,177 identities; ids are drawn from 1..max(that, num_identities).
CELEBA_IDENTITIES = 10_177
#: Tones at or below this count as ``Pale_Skin``.
PALE_TONE = 0.025

_HAIR_RGB: dict[str, RGB] = {
    "black": (0.075, 0.065, 0.06),
    "brown": (0.36, 0.23, 0.13),
    "blond": (0.86, 0.73, 0.46),
    "gray": (0.68, 0.68, 0.66),
    "red": (0.62, 0.27, 0.12),
}
_IRIS_RGB: dict[str, RGB] = {
    "dark": (0.16, 0.09, 0.05),
    "brown": (0.36, 0.21, 0.1),
    "blue": (0.3, 0.45, 0.66),
    "green": (0.3, 0.46, 0.3),
    "gray": (0.5, 0.53, 0.56),
}
_CLOTH_RGB: tuple[RGB, ...] = (
    (0.1, 0.1, 0.12), (0.92, 0.92, 0.9), (0.2, 0.27, 0.5), (0.55, 0.1, 0.12), (0.2, 0.42, 0.25),
    (0.5, 0.5, 0.52), (0.85, 0.65, 0.2), (0.45, 0.3, 0.55), (0.3, 0.55, 0.7), (0.75, 0.45, 0.5),
)  # fmt: skip
_METAL_RGB: tuple[RGB, ...] = ((0.86, 0.7, 0.26), (0.8, 0.8, 0.83), (0.95, 0.93, 0.88))
_LIPSTICK_RGB: tuple[RGB, ...] = ((0.72, 0.06, 0.14), (0.84, 0.32, 0.42), (0.5, 0.08, 0.2), (0.78, 0.3, 0.25))
_EYESHADOW_RGB: tuple[RGB, ...] = ((0.45, 0.3, 0.5), (0.42, 0.3, 0.22), (0.3, 0.4, 0.6), (0.55, 0.45, 0.35))
_FRAME_RGB: tuple[RGB, ...] = ((0.05, 0.05, 0.05), (0.35, 0.2, 0.1), (0.75, 0.62, 0.3), (0.6, 0.6, 0.64))


def rng_for(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    """The generator of one stream item: ``default_rng([seed, stream, index])``."""
    return np.random.default_rng([seed, stream, index])


@dataclass(frozen=True)
class Identity:
    """A person: everything that stays the same across their images (lengths in image-side units)."""

    index: int
    celeba_id: int
    group: int
    tone: float
    male: bool
    young: bool
    attractive: bool
    hair_colour: str
    hair_rgb: RGB
    hair_length: str  # "short" | "medium" | "long"
    wavy: bool
    bangs: bool
    bald: bool
    bald_fringe: bool  # a bald head with hair left at the sides
    receding: bool
    sideburns: bool
    beard: str  # "none" | "stubble" | "mustache" | "goatee" | "full"
    face_half_width: float
    face_half_height: float
    jaw: float  # chin width relative to the cheeks
    chubby: bool
    double_chin: bool
    oval: bool
    eye_half_width: float
    eye_aspect: float  # half-height / half-width
    eye_spacing: float  # eye centre offset / face half-width
    narrow_eyes: bool
    iris_rgb: RGB
    brow_thickness: float
    bushy_brows: bool
    arched_brows: bool
    brow_arch: float
    nose_length: float
    nose_half_width: float
    big_nose: bool
    pointy_nose: bool
    mouth_half_width: float
    lip_thickness: float
    big_lips: bool
    ear_half_height: float
    bags_under_eyes: bool
    natural_rosy: bool
    neck_half_width: float
    wrinkles: bool = False

    @property
    def pale(self) -> bool:
        """Tone at or below :data:`PALE_TONE`."""
        return self.tone <= PALE_TONE

    @property
    def has_hair(self) -> bool:
        """Whether any scalp hair is drawn (a bald head may keep a fringe at the sides)."""
        return not self.bald or self.bald_fringe


@dataclass(frozen=True)
class ImageSpec:
    """One shot of an identity: pose, expression, accessories, clothes, background, lighting, blur."""

    index: int
    identity: int
    rotation_deg: float
    scale: float
    shift: tuple[float, float]
    yaw: float  # sideways shift of the inner features, in face widths
    expression: str  # "closed" | "open" | "smile"
    mouth_gap: float
    smile_curve: float
    high_cheekbones: bool
    glasses: str  # "none" | "clear" | "sun"
    glasses_shape: str  # "round" | "oval" | "rect"
    frame_rgb: RGB
    hat: str  # "none" | "beanie" | "cap" | "brim"
    hat_rgb: RGB
    hat_band_rgb: RGB
    earrings: str  # "none" | "stud" | "hoop" | "drop"
    jewel_rgb: RGB
    necklace: bool
    necktie: bool
    tie_rgb: RGB
    shirt_rgb: RGB
    cloth_rgb: RGB
    collar: str  # "round" | "v" | "high"
    lipstick: bool
    lip_rgb: RGB
    heavy_makeup: bool
    eyeshadow_rgb: RGB
    rosy_cheeks: bool
    hair_tucked: bool  # medium / long hair behind the ears
    background: str  # "flat" | "gradient" | "radial" | "texture"
    background_rgb: tuple[RGB, RGB]
    background_angle: float
    brightness: float
    light_angle: float
    light_strength: float
    tint: RGB
    blur_radius: float  # in output pixels at 128 px; 0: sharp
    noise_sigma: float


@dataclass(frozen=True)
class DatasetPlan:
    """The identities, which identity each image shows, the CelebA indices and each identity's split."""

    identities: tuple[Identity, ...]
    image_identity: tuple[int, ...]  # image i -> identity index
    orig_idx: tuple[int, ...]  # image i -> distinct 0-based CelebA index
    identity_split: tuple[str, ...]  # identity index -> "train" | "val" | "test"

    def split_of_image(self, index: int) -> str:
        """The split of image ``index`` (its identity's)."""
        return self.identity_split[self.image_identity[index]]


def allot_groups(weights: list[float], count: int) -> list[int]:
    """Largest-remainder apportionment of ``count`` items to groups by ``weights`` (ties: earlier group).

    ``allot_groups([7, 1], 128) == [112, 16]``.
    """
    total = float(sum(weights))
    quotas = [w / total * count for w in weights]
    allotted = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda g: (-(quotas[g] - allotted[g]), g))
    for g in order[: count - sum(allotted)]:
        allotted[g] += 1
    return allotted


def split_counts(count: int, fractions: dict[str, float]) -> dict[str, int]:
    """How many of ``count`` identities go to each split: val and test rounded half up (at least one each
    when their fraction is positive and ``count >= 3``), the rest to train, which keeps at least one when
    its fraction is positive (so every group is trained on)."""
    sizes = {name: math.floor(fractions[name] * count + 0.5) for name in ("val", "test")}
    for name in ("val", "test"):
        if fractions[name] > 0 and count >= 3 and sizes[name] == 0:
            sizes[name] = 1
    keep_for_train = 1 if fractions["train"] > 0 and count >= 1 else 0
    while sizes["val"] + sizes["test"] > count - keep_for_train:
        larger = "test" if sizes["test"] >= sizes["val"] else "val"
        sizes[larger] -= 1
    return {"train": count - sizes["val"] - sizes["test"], **sizes}


def plan_dataset(config: SynthConfig) -> DatasetPlan:
    """Sample every identity, the image order, CelebA indices and the identity splits (stratified by group)."""
    rng = rng_for(config.seed, STREAM_PLAN)
    n_ids = config.num_identities
    per_group = allot_groups([g.weight for g in config.skin_tone_groups], n_ids)
    groups = np.repeat(np.arange(len(per_group)), per_group)
    rng.shuffle(groups)
    celeba_ids = rng.choice(max(CELEBA_IDENTITIES, n_ids), size=n_ids, replace=False) + 1
    identities = tuple(sample_identity(config, k, int(groups[k]), int(celeba_ids[k])) for k in range(n_ids))
    split = ["train"] * n_ids
    for g in range(len(per_group)):
        members = [k for k in range(n_ids) if groups[k] == g]  # already in shuffled group order
        sizes = split_counts(len(members), config.splits)
        for position, k in enumerate(members):
            split[k] = (
                "val"
                if position < sizes["val"]
                else "test"
                if position < sizes["val"] + sizes["test"]
                else "train"
            )
    image_identity = np.repeat(np.arange(n_ids), config.images_per_identity)
    rng.shuffle(image_identity)
    orig_idx = rng.choice(config.celeba_pool, size=config.num_images, replace=False)
    return DatasetPlan(
        identities=identities,
        image_identity=tuple(int(k) for k in image_identity),
        orig_idx=tuple(int(o) for o in orig_idx),
        identity_split=tuple(split),
    )


def _pick(rng: np.random.Generator, options: tuple | list, weights: list[float] | None = None):
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _jitter(rgb: RGB, rng: np.random.Generator, amount: float) -> RGB:
    values = np.clip(
        np.asarray(rgb) * (1.0 + rng.uniform(-amount, amount)) + rng.uniform(-amount, amount, 3) * 0.3, 0, 1
    )
    return (float(values[0]), float(values[1]), float(values[2]))


def sample_identity(config: SynthConfig, index: int, group: int, celeba_id: int) -> Identity:
    """Sample the fixed traits of identity ``index`` in skin-tone group ``group``."""
    rng = rng_for(config.seed, STREAM_IDENTITY, index)
    tone_group = config.skin_tone_groups[group]
    tone = float(rng.uniform(*tone_group.tone))
    male = bool(rng.random() < config.male_fraction)
    young = bool(rng.random() < config.young_fraction)
    old = not young

    if old and rng.random() < config.gray_hair_old_prob:
        hair_colour = "gray"
    else:
        hair_colour = _pick(rng, HAIR_COLOURS, [tone_group.hair_colours[c] for c in HAIR_COLOURS])
    hair_rgb = _jitter(_HAIR_RGB[hair_colour], rng, 0.12)
    bald_p = config.bald_prob * (1.0 if old else 0.2) if male else 0.0
    bald = bool(rng.random() < bald_p)
    bald_fringe = bool(bald and rng.random() < 0.7)
    hair_length = (
        _pick(rng, ("short", "medium", "long"), [0.8, 0.17, 0.03] if male else [0.08, 0.3, 0.62])
        if not bald
        else "short"
    )
    wavy = bool(rng.random() < (0.3 if male else 0.42))
    bangs = bool(not bald and rng.random() < min(1.0, config.bangs_prob * (0.6 if male else 1.3)))
    receding = bool(not bald and not bangs and rng.random() < ((0.3 if old else 0.05) if male else 0.02))
    beard = "none"
    if male and rng.random() < config.beard_prob:
        beard = _pick(rng, ("stubble", "mustache", "goatee", "full"), [0.35, 0.15, 0.25, 0.25])
    sideburns = bool(male and hair_length != "long" and not bald and (beard == "full" or rng.random() < 0.08))

    chubby = bool(rng.random() < 0.06 * (2.5 if old else 1.0) * (1.5 if male else 1.0))
    double_chin = bool(rng.random() < (0.6 if chubby else 0.02 if old else 0.0))
    oval = bool(not chubby and rng.random() < 0.3)
    face_half_width = float(rng.uniform(0.185, 0.215)) + (0.008 if male else 0.0) + (0.024 if chubby else 0.0)
    aspect = (
        float(rng.uniform(1.36, 1.46))
        if oval
        else float(rng.uniform(1.18, 1.3))
        if chubby
        else float(rng.uniform(1.22, 1.34))
    )
    face_half_height = face_half_width * aspect
    jaw = (
        float(rng.uniform(0.66, 0.74))
        if oval
        else float(rng.uniform(0.86, 0.94))
        if chubby
        else float(rng.uniform(0.76, 0.86) if male else rng.uniform(0.7, 0.8))
    )

    narrow_eyes = bool(rng.random() < 0.12)
    eye_half_width = float(rng.uniform(0.04, 0.05))
    eye_aspect = float(rng.uniform(0.42, 0.52)) * (0.6 if narrow_eyes else 1.0)
    eye_spacing = float(rng.uniform(0.42, 0.5))
    if tone > 0.55:
        iris = _pick(rng, ("dark", "brown"), [0.7, 0.3])
    else:
        iris = _pick(rng, ("dark", "brown", "blue", "green", "gray"), [0.2, 0.4, 0.22, 0.1, 0.08])
    bushy_brows = bool(rng.random() < (0.25 if male else 0.08))
    arched_brows = bool(rng.random() < (0.1 if male else 0.45))
    brow_thickness = float(rng.uniform(0.019, 0.024) if bushy_brows else rng.uniform(0.011, 0.015)) + (
        0.002 if male else 0.0
    )
    brow_arch = float(rng.uniform(0.016, 0.022) if arched_brows else rng.uniform(0.003, 0.008))

    big_nose = bool(rng.random() < (0.33 if male else 0.15))
    pointy_nose = bool(not big_nose and rng.random() < 0.32)
    nose_length = float(rng.uniform(0.1, 0.115) if big_nose else rng.uniform(0.082, 0.095))
    nose_half_width = float(rng.uniform(0.036, 0.042) if big_nose else rng.uniform(0.026, 0.032))

    big_lips = bool(rng.random() < (0.16 if male else 0.3))
    mouth_half_width = float(rng.uniform(0.058, 0.07))
    lip_thickness = float(rng.uniform(0.017, 0.021) if big_lips else rng.uniform(0.01, 0.0135))

    attractive_p = (0.72 if young else 0.3) if not male else (0.42 if young else 0.12)
    attractive = bool(rng.random() < attractive_p * (0.4 if chubby else 1.0))
    return Identity(
        index=index,
        celeba_id=celeba_id,
        group=group,
        tone=tone,
        male=male,
        young=young,
        attractive=attractive,
        hair_colour=hair_colour,
        hair_rgb=hair_rgb,
        hair_length=hair_length,
        wavy=wavy,
        bangs=bangs,
        bald=bald,
        bald_fringe=bald_fringe,
        receding=receding,
        sideburns=sideburns,
        beard=beard,
        face_half_width=face_half_width,
        face_half_height=face_half_height,
        jaw=jaw,
        chubby=chubby,
        double_chin=double_chin,
        oval=oval,
        eye_half_width=eye_half_width,
        eye_aspect=eye_aspect,
        eye_spacing=eye_spacing,
        narrow_eyes=narrow_eyes,
        iris_rgb=_jitter(_IRIS_RGB[iris], rng, 0.1),
        brow_thickness=brow_thickness,
        bushy_brows=bushy_brows,
        arched_brows=arched_brows,
        brow_arch=brow_arch,
        nose_length=nose_length,
        nose_half_width=nose_half_width,
        big_nose=big_nose,
        pointy_nose=pointy_nose,
        mouth_half_width=mouth_half_width,
        lip_thickness=lip_thickness,
        big_lips=big_lips,
        ear_half_height=float(rng.uniform(0.055, 0.068)),
        bags_under_eyes=bool(rng.random() < (0.4 if old else 0.12)),
        natural_rosy=bool(rng.random() < 0.05),
        neck_half_width=face_half_width * float(rng.uniform(0.58, 0.66) if male else rng.uniform(0.5, 0.58)),
        # drawn last, so adding it left every other trait of every identity as it was
        wrinkles=bool(old and rng.random() < config.wrinkles_old_prob),
    )


def sample_image_spec(config: SynthConfig, index: int, identity: Identity) -> ImageSpec:
    """Sample the per-shot choices of image ``index`` of ``identity``."""
    rng = rng_for(config.seed, STREAM_IMAGE, index)
    male = identity.male
    smile = rng.random() < config.smiling_prob
    expression = "smile" if smile else "open" if rng.random() < config.mouth_open_prob else "closed"
    mouth_gap = float(
        rng.uniform(0.024, 0.034) if smile else rng.uniform(0.014, 0.019) if expression == "open" else 0.0
    )

    glasses = "none"
    if rng.random() < config.eyeglasses_prob:
        glasses = "sun" if rng.random() < config.sunglasses_fraction else "clear"
    hat = _pick(rng, ("beanie", "cap", "brim")) if rng.random() < config.hat_prob else "none"
    earrings_p = config.earrings_prob * (0.1 if male else 1.0)
    earrings = _pick(rng, ("stud", "hoop", "drop")) if rng.random() < earrings_p else "none"
    necklace = bool(rng.random() < config.necklace_prob * (0.1 if male else 1.0))
    necktie = bool(male and rng.random() < config.necktie_prob)
    lipstick = bool(not male and rng.random() < config.lipstick_prob)
    heavy_makeup = bool(not male and rng.random() < config.heavy_makeup_prob)
    natural_lip = np.asarray(_skin_like_lip(identity.tone))
    lip_rgb = _pick(rng, _LIPSTICK_RGB) if lipstick else tuple(float(v) for v in natural_lip)
    cloth_rgb = _jitter(_pick(rng, _CLOTH_RGB), rng, 0.1)
    collar = "v" if necktie else _pick(rng, ("round", "v", "high"), [0.55, 0.3, 0.15])
    background = _pick(rng, ("flat", "gradient", "radial", "texture"), [0.25, 0.3, 0.2, 0.25])
    bg_a = tuple(float(v) for v in rng.uniform(0.05, 0.95, 3))
    bg_b = tuple(float(v) for v in np.clip(np.asarray(bg_a) + rng.uniform(-0.35, 0.35, 3), 0, 1))
    blurry = rng.random() < config.blur_prob
    return ImageSpec(
        index=index,
        identity=identity.index,
        rotation_deg=float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg)),
        scale=float(rng.uniform(*config.scale_range)),
        shift=(
            float(rng.uniform(-config.max_shift, config.max_shift)),
            float(rng.uniform(-config.max_shift, config.max_shift)),
        ),
        yaw=float(rng.uniform(-config.max_yaw, config.max_yaw)),
        expression=expression,
        mouth_gap=mouth_gap,
        smile_curve=float(rng.uniform(0.012, 0.02) if smile else rng.uniform(-0.003, 0.003)),
        high_cheekbones=bool(rng.random() < (0.75 if smile else 0.15)),
        glasses=glasses,
        glasses_shape=_pick(rng, ("round", "oval", "rect")),
        frame_rgb=_pick(rng, _FRAME_RGB),
        hat=hat,
        hat_rgb=_jitter(_pick(rng, _CLOTH_RGB), rng, 0.1),
        hat_band_rgb=_jitter(_pick(rng, _CLOTH_RGB), rng, 0.1),
        earrings=earrings,
        jewel_rgb=_pick(rng, _METAL_RGB),
        necklace=necklace,
        necktie=necktie,
        tie_rgb=_jitter(_pick(rng, _CLOTH_RGB), rng, 0.1),
        shirt_rgb=_jitter((0.93, 0.93, 0.95), rng, 0.05),
        cloth_rgb=cloth_rgb,
        collar=collar,
        lipstick=lipstick,
        lip_rgb=lip_rgb,
        heavy_makeup=heavy_makeup,
        eyeshadow_rgb=_pick(rng, _EYESHADOW_RGB),
        rosy_cheeks=bool(identity.natural_rosy or (heavy_makeup and rng.random() < 0.25)),
        hair_tucked=bool(rng.random() < 0.4),
        background=background,
        background_rgb=(bg_a, bg_b),
        background_angle=float(rng.uniform(0, 2 * math.pi)),
        brightness=float(rng.uniform(0.8, 1.12)),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.45)),
        tint=tuple(float(v) for v in rng.uniform(0.94, 1.06, 3)),
        blur_radius=float(rng.uniform(1.2, 2.2)) if blurry else 0.0,
        noise_sigma=float(rng.uniform(0.005, 0.02)),
    )


def _skin_like_lip(tone: float) -> RGB:
    """Natural lip colour: the skin colour pulled towards red, darker for darker skin."""
    skin = np.asarray(skin_rgb(tone))
    lip = 0.55 * skin * np.array([0.95, 0.62, 0.62]) + 0.45 * np.array([0.7, 0.3, 0.3]) * (1.0 - 0.5 * tone)
    return (float(lip[0]), float(lip[1]), float(lip[2]))
