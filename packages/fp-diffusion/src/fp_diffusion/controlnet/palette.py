"""The colours face-parsing maps are drawn in for ControlNet: one per CelebAMask-HQ class (zllrunning order).

The seg ControlNet (``lllyasviel/control_v11p_sd15_seg``) was trained on maps coloured with the ADE20K
150-class palette (:data:`ADE20K_PALETTE`), so a colour means an ADE class to it. CelebAMask-HQ's usual
colours collide with ADE colours of unrelated classes (its ``[255, 0, 0]`` is ADE's "flower"), so
:data:`FACE_PALETTE` is chosen as follows:

* ``background`` is black ``[0, 0, 0]`` (no ADE colour; the nearest, ``[80, 50, 50]``, is 106.8 away in RGB
  Euclidean distance).
* Two face classes have a semantically near ADE class and take its colour: ``skin`` -> ADE "person"
  ``[150, 5, 61]`` (ADE draws a whole person in it) and ``cloth`` -> ADE "apparel" ``[0, 112, 255]``.
* ADE has no eyes, brows, ears, nose, mouth, lips, neck, hair, hats, eyeglasses (its "glass" is a drinking
  glass), earrings or necklaces, so the other 16 classes take colours far from every ADE colour: a greedy
  farthest-point search over the RGB grid with step 5 (run once; the table below is its result, written out),
  each new colour maximising its smallest distance to the 150 ADE colours and to the colours already chosen.
  Every one of them is at least :data:`MIN_DISTANCE_FROM_ADE` (75) from every ADE colour, and every two of the
  19 face colours are at least :data:`MIN_PAIRWISE_DISTANCE` (75) apart (both checked by the tests).

What was checked: the ADE table is mmsegmentation's ``ADE20KDataset.METAINFO["palette"]`` (``mmseg/datasets/
ade.py``), which is also the ``ade_palette()`` of diffusers' ``sd-controlnet-seg`` examples; the 150 rows were
compared with that source when written here. Not checked: the exact file ControlNet 1.1's OneFormer/UniFormer
annotator ships (believed to be the same table; note it has one duplicate, ``[140, 140, 140]`` for "road" and
"skyscraper"). The pretrained ControlNet has never seen the 16 new colours; fine-tuning teaches them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ADE20K_PALETTE",
    "FACE_CLASSES",
    "FACE_PALETTE",
    "MIN_DISTANCE_FROM_ADE",
    "MIN_PAIRWISE_DISTANCE",
    "NUM_FACE_CLASSES",
    "face_palette",
]

FACE_CLASSES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)  # fmt: skip
"""The 19 CelebAMask-HQ classes in zllrunning's (face-parsing.PyTorch) label order; the index is the class id."""

NUM_FACE_CLASSES = len(FACE_CLASSES)
MIN_DISTANCE_FROM_ADE = 75.0
"""RGB Euclidean distance every face colour except ``skin`` and ``cloth`` keeps from every ADE colour."""
MIN_PAIRWISE_DISTANCE = 75.0
"""RGB Euclidean distance every two face colours keep from each other."""

# fmt: off
ADE20K_PALETTE: tuple[tuple[int, int, int], ...] = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)
# fmt: on
"""ADE20K's 150 class colours (RGB), class ``k`` of ADE's 150 (0: wall, 12: person, 92: apparel)."""

_FACE_COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0),
    "skin": ADE20K_PALETTE[12],  # ADE "person"
    "l_brow": (170, 120, 255),
    "r_brow": (0, 0, 115),
    "l_eye": (0, 120, 80),
    "r_eye": (95, 20, 150),
    "eye_g": (245, 255, 110),
    "l_ear": (60, 125, 0),
    "r_ear": (95, 90, 210),
    "ear_r": (235, 95, 195),
    "nose": (255, 165, 95),
    "mouth": (90, 205, 75),
    "u_lip": (175, 35, 175),
    "l_lip": (180, 215, 75),
    "neck": (255, 145, 255),
    "neck_l": (50, 85, 135),
    "cloth": ADE20K_PALETTE[92],  # ADE "apparel"
    "hair": (255, 85, 115),
    "hat": (155, 180, 205),
}

FACE_PALETTE: tuple[tuple[int, int, int], ...] = tuple(_FACE_COLOURS[name] for name in FACE_CLASSES)
"""The RGB colour of each face class id (module docstring)."""


def face_palette() -> np.ndarray:
    """:data:`FACE_PALETTE` as ``uint8 [19, 3]`` (a fresh array)."""
    return np.asarray(FACE_PALETTE, dtype=np.uint8)
