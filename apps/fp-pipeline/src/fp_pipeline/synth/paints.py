"""Paints: the drawable layers of a face, each with its own colour and exactly one part label."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from fp_pipeline.synth.layout import PARTS

__all__ = ["PAINT_PART", "SKIN_UNDERLAY_PARTS", "Paint", "paint_to_part_matrix"]


class Paint(IntEnum):
    """Paint ids of the supersampled paint map (0 = background). Several paints may share one part."""

    BACKGROUND = 0
    HAIR_BACK = 1
    NECK = 2
    CLOTH = 3
    SHIRT = 4
    TIE = 5
    NECKLACE = 6
    EAR_L = 7
    EAR_R = 8
    FACE = 9
    CHIN_FOLD = 10
    STUBBLE = 11
    BEARD = 12
    CHEEKBONE = 13
    CHEEK = 14
    EYE_BAG = 15
    EYESHADOW = 16
    NOSE = 17
    EYE_L = 18
    EYE_R = 19
    IRIS_L = 20
    IRIS_R = 21
    MOUTH = 22
    TEETH = 23
    LIP_U = 24
    LIP_L = 25
    EARRING = 26
    GLASS_LENS = 27
    GLASS_FRAME = 28
    BROW_L = 29
    BROW_R = 30
    HAIR_FRONT = 31
    HAT = 32
    HAT_BAND = 33
    WRINKLE = 34


#: Part name of every paint (``None``: background). Facial hair and make-up are skin, as in the release.
PAINT_PART: dict[Paint, str | None] = {
    Paint.BACKGROUND: None,
    Paint.HAIR_BACK: "hair",
    Paint.NECK: "neck",
    Paint.CLOTH: "cloth",
    Paint.SHIRT: "cloth",
    Paint.TIE: "cloth",
    Paint.NECKLACE: "neck_l",
    Paint.EAR_L: "l_ear",
    Paint.EAR_R: "r_ear",
    Paint.FACE: "skin",
    Paint.CHIN_FOLD: "skin",
    Paint.STUBBLE: "skin",
    Paint.BEARD: "skin",
    Paint.CHEEKBONE: "skin",
    Paint.CHEEK: "skin",
    Paint.EYE_BAG: "skin",
    Paint.WRINKLE: "skin",
    Paint.EYESHADOW: "skin",
    Paint.NOSE: "nose",
    Paint.EYE_L: "l_eye",
    Paint.EYE_R: "r_eye",
    Paint.IRIS_L: "l_eye",
    Paint.IRIS_R: "r_eye",
    Paint.MOUTH: "mouth",
    Paint.TEETH: "mouth",
    Paint.LIP_U: "u_lip",
    Paint.LIP_L: "l_lip",
    Paint.EARRING: "ear_r",
    Paint.GLASS_LENS: "eye_g",
    Paint.GLASS_FRAME: "eye_g",
    Paint.BROW_L: "l_brow",
    Paint.BROW_R: "r_brow",
    Paint.HAIR_FRONT: "hair",
    Paint.HAT: "hat",
    Paint.HAT_BAND: "hat",
}

#: Parts under which the skin mask continues inside the face outline, as in the release's annotations.
#: Every public label order (official, zllrunning, farl) merges skin before all of them, so the overlap
#: never changes a merged label map.
SKIN_UNDERLAY_PARTS: tuple[str, ...] = (
    "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip",
)  # fmt: skip


def paint_to_part_matrix() -> np.ndarray:
    """``[num_paints, 19]`` one-hot matrix: paint -> part id (0 background, ``PARTS.index(p) + 1``)."""
    matrix = np.zeros((len(Paint), len(PARTS) + 1), dtype=np.float32)
    for paint, part in PAINT_PART.items():
        matrix[int(paint), 0 if part is None else PARTS.index(part) + 1] = 1.0
    return matrix
