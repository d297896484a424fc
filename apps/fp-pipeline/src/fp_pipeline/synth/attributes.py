"""The 40 CelebA attributes of a rendered image, set from what was drawn and from the final masks."""

from __future__ import annotations

from collections.abc import Collection

from fp_pipeline.synth.layout import ATTRIBUTE_NAMES
from fp_pipeline.synth.population import Identity, ImageSpec

__all__ = ["attribute_values"]

_HAIR_ATTRIBUTE = {"black": "Black_Hair", "blond": "Blond_Hair", "brown": "Brown_Hair", "gray": "Gray_Hair"}


def attribute_values(
    identity: Identity, spec: ImageSpec, present_parts: Collection[str], tie_visible: bool
) -> list[int]:
    """``[40]`` values of -1 / 1 in :data:`ATTRIBUTE_NAMES` order.

    Accessories and the mouth follow the masks that were written (``Eyeglasses`` iff an ``eye_g`` mask,
    ``Wearing_Hat`` iff ``hat``, ``Wearing_Earrings`` iff ``ear_r``, ``Wearing_Necklace`` iff ``neck_l``,
    ``Mouth_Slightly_Open`` iff ``mouth``, ``Smiling`` only with ``mouth``); face, hair and make-up
    attributes follow what was drawn; ``Attractive`` is the only attribute sampled without drawing.
    """
    present = set(present_parts)
    hair_seen = "hair" in present
    eyes_seen = "l_eye" in present or "r_eye" in present
    lips_seen = "u_lip" in present or "l_lip" in present
    textured = hair_seen and not identity.bald and identity.hair_length != "short"
    on = {
        "5_o_Clock_Shadow": identity.beard == "stubble",
        "Arched_Eyebrows": identity.arched_brows,
        "Attractive": identity.attractive,
        "Bags_Under_Eyes": identity.bags_under_eyes,
        "Bald": identity.bald,
        "Bangs": identity.bangs and hair_seen,
        "Big_Lips": identity.big_lips and lips_seen,
        "Big_Nose": identity.big_nose,
        "Blurry": spec.blur_radius > 0,
        "Bushy_Eyebrows": identity.bushy_brows,
        "Chubby": identity.chubby,
        "Double_Chin": identity.double_chin,
        "Eyeglasses": "eye_g" in present,
        "Goatee": identity.beard == "goatee",
        "Heavy_Makeup": spec.heavy_makeup,
        "High_Cheekbones": spec.high_cheekbones,
        "Male": identity.male,
        "Mouth_Slightly_Open": "mouth" in present,
        "Mustache": identity.beard in ("mustache", "goatee", "full"),
        "Narrow_Eyes": identity.narrow_eyes and eyes_seen,
        "No_Beard": identity.beard in ("none", "stubble"),
        "Oval_Face": identity.oval,
        "Pale_Skin": identity.pale,
        "Pointy_Nose": identity.pointy_nose,
        "Receding_Hairline": identity.receding and hair_seen and "hat" not in present,
        "Rosy_Cheeks": spec.rosy_cheeks,
        "Sideburns": identity.sideburns and hair_seen,
        "Smiling": spec.expression == "smile" and "mouth" in present,
        "Straight_Hair": textured and not identity.wavy,
        "Wavy_Hair": textured and identity.wavy,
        "Wearing_Earrings": "ear_r" in present,
        "Wearing_Hat": "hat" in present,
        "Wearing_Lipstick": spec.lipstick and lips_seen,
        "Wearing_Necklace": "neck_l" in present,
        "Wearing_Necktie": tie_visible,
        "Young": identity.young,
    }
    colour = _HAIR_ATTRIBUTE.get(identity.hair_colour)
    for name in _HAIR_ATTRIBUTE.values():
        on[name] = hair_seen and name == colour
    missing = set(ATTRIBUTE_NAMES) ^ set(on)
    if missing:  # a programming error: every attribute must be decided above
        raise RuntimeError(f"attribute table out of step with ATTRIBUTE_NAMES: {sorted(missing)}")
    return [1 if on[name] else -1 for name in ATTRIBUTE_NAMES]
