"""The face palette: 19 distinct colours, the documented ADE choices and distances."""

from __future__ import annotations

import numpy as np

from fp_diffusion.controlnet.palette import (
    ADE20K_PALETTE,
    FACE_CLASSES,
    FACE_PALETTE,
    MIN_DISTANCE_FROM_ADE,
    MIN_PAIRWISE_DISTANCE,
    face_palette,
)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None].astype(float) - b[None].astype(float)) ** 2).sum(-1))


def test_nineteen_distinct_colours_in_zllrunning_order() -> None:
    palette = face_palette()
    assert palette.shape == (19, 3) and palette.dtype == np.uint8
    assert len({tuple(c) for c in FACE_PALETTE}) == 19
    assert FACE_CLASSES[:3] == ("background", "skin", "l_brow") and FACE_CLASSES[-3:] == (
        "cloth",
        "hair",
        "hat",
    )
    assert FACE_CLASSES.index("nose") == 10 and FACE_CLASSES.index("neck_l") == 15


def test_ade_table_has_150_colours_with_the_known_rows() -> None:
    assert len(ADE20K_PALETTE) == 150
    assert ADE20K_PALETTE[0] == (120, 120, 120)  # wall
    assert ADE20K_PALETTE[12] == (150, 5, 61)  # person
    assert ADE20K_PALETTE[66] == (255, 0, 0)  # flower: CelebAMask-HQ's usual red would mean this
    assert ADE20K_PALETTE[149] == (92, 0, 255)


def test_semantic_classes_take_the_ade_colour_and_the_rest_keep_their_distance() -> None:
    palette, ade = face_palette(), np.asarray(ADE20K_PALETTE)
    assert tuple(palette[FACE_CLASSES.index("skin")]) == ADE20K_PALETTE[12]
    assert tuple(palette[FACE_CLASSES.index("cloth")]) == ADE20K_PALETTE[92]
    assert tuple(palette[0]) == (0, 0, 0)
    to_ade = _distances(palette, ade).min(axis=1)
    others = [i for i, name in enumerate(FACE_CLASSES) if name not in ("skin", "cloth")]
    assert to_ade[others].min() >= MIN_DISTANCE_FROM_ADE
    pairwise = _distances(palette, palette) + np.eye(19) * 1e9
    assert pairwise.min() >= MIN_PAIRWISE_DISTANCE


def test_face_palette_is_a_fresh_copy() -> None:
    palette = face_palette()
    palette[0] = 255
    assert tuple(face_palette()[0]) == (0, 0, 0)
