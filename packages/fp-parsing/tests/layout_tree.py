"""Writes a tiny CelebAMask-HQ tree in the real layout for the loader tests (no conftest needed).

Six images, indices 0, 1, 2, 3, 2000, 2001 (so masks live in folders 0 and 1), drawn on a 16 x 16 grid of
overlapping rectangles. Some mask files are written in awkward but valid encodings (value 225, RGB, a
palette whose index 0 is white) to check that masks are read as grayscale > 0.

The mapping file and CelebA partition are built so that joining on anything but ``orig_file`` gives
different splits: ``orig_idx`` formatted as a 1-based name (``f"{orig_idx:06d}.jpg"``) always lands on a
file of another split, and image 2001's ``orig_file`` is not ``orig_idx + 1`` at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fp_parsing.data import ATTRIBUTE_NAMES, PART_NAMES

__all__ = [
    "BOXES",
    "EXPECTED_SPLITS",
    "GRID",
    "IDENTITIES",
    "INDICES",
    "ODD_MASKS",
    "ORIG",
    "SKIN_TONES",
    "attribute_bits",
    "parts_of",
    "part_masks",
    "reference_label_map",
    "write_mask_png",
    "write_tree",
]

GRID = 16
INDICES = (0, 1, 2, 3, 2000, 2001)
#: image index -> (orig_idx, orig_file) of the mapping file; 2001's file is deliberately not orig_idx + 1
ORIG = {
    0: (10, "000011.jpg"),
    1: (20, "000021.jpg"),
    2: (30, "000031.jpg"),
    3: (40, "000041.jpg"),
    2000: (50, "000051.jpg"),
    2001: (60, "000099.jpg"),
}
#: CelebA partition of the files the mapping names (the right join) ...
_PARTITION_RIGHT = {11: 0, 21: 0, 31: 1, 41: 2, 51: 0, 99: 2}
#: ... and of the files a wrong join would hit (orig_idx as a 1-based name, or orig_idx + 1 for 2001).
_PARTITION_DECOYS = {10: 1, 20: 2, 30: 2, 40: 0, 50: 1, 60: 1, 61: 0}
EXPECTED_SPLITS = {"train": [0, 1, 2000], "val": [2], "test": [3, 2001]}
#: identity by image (2000 has no row in identity_CelebA.txt)
IDENTITIES = {0: 7, 1: 7, 2: 3, 3: 9, 2000: -1, 2001: 12}
#: skin-tone group by image (2001 has no row in fp_skin_tone.txt)
SKIN_TONES = {0: 0, 1: 1, 2: 0, 3: 0, 2000: 1, 2001: -1}

#: part -> (row0, row1, col0, col1) on the 16 x 16 grid, half-open
BOXES: dict[str, tuple[int, int, int, int]] = {
    "hair": (0, 4, 0, 16),
    "hat": (0, 2, 4, 12),
    "skin": (2, 14, 2, 14),
    "l_brow": (3, 4, 3, 6),
    "r_brow": (3, 4, 10, 13),
    "eye_g": (4, 7, 3, 13),
    "l_eye": (5, 6, 3, 6),
    "r_eye": (5, 6, 11, 13),
    "l_ear": (6, 9, 1, 2),
    "r_ear": (6, 9, 14, 15),
    "ear_r": (8, 10, 1, 2),
    "nose": (6, 10, 6, 10),
    "mouth": (10, 13, 5, 11),
    "u_lip": (10, 11, 5, 11),
    "l_lip": (12, 13, 5, 11),
    "neck": (14, 16, 5, 11),
    "neck_l": (14, 15, 6, 10),
    "cloth": (15, 16, 0, 16),
}
#: (image, part) -> encoding of that mask file other than the plain 0/255 grayscale PNG
ODD_MASKS = {(1, "skin"): "gray225", (2, "hair"): "rgb", (3, "nose"): "palette"}


def parts_of(index: int) -> list[str]:
    """The parts image ``index`` has (image 0 has all 18)."""
    position = INDICES.index(index)
    absent = set()
    if position % 2:
        absent.add("hat")
    if position not in (0, 3, 4):
        absent.add("eye_g")
    if position not in (0, 1):
        absent.add("ear_r")
    if position == 5:
        absent.add("cloth")
    return [part for part in PART_NAMES if part not in absent]


def part_masks(index: int, size: int = GRID) -> dict[str, np.ndarray]:
    """``{part: bool [size, size]}`` of image ``index``; ``size`` a multiple of 16 (boxes scale)."""
    scale = size // GRID
    shift = INDICES.index(index) % 2  # the nose moves one column on odd positions
    masks = {}
    for part in parts_of(index):
        r0, r1, c0, c1 = BOXES[part]
        if part == "nose":
            c0, c1 = c0 + shift, c1 + shift
        mask = np.zeros((size, size), dtype=bool)
        mask[r0 * scale : r1 * scale, c0 * scale : c1 * scale] = True
        masks[part] = mask
    return masks


def reference_label_map(index: int, order: tuple[str, ...], size: int = GRID) -> np.ndarray:
    """Slow per-pixel reference: the label of the highest-id part covering each pixel (0 if none)."""
    masks = part_masks(index, size)
    out = np.zeros((size, size), dtype=np.int64)
    for y in range(size):
        for x in range(size):
            for label, part in enumerate(order, start=1):
                if part in masks and masks[part][y, x]:
                    out[y, x] = label
    return out


def attribute_bits(index: int) -> list[int]:
    """The 40 attribute values of image ``index`` as written in the file (-1/1)."""
    position = INDICES.index(index)
    return [1 if (position + j) % 3 == 0 else -1 for j in range(len(ATTRIBUTE_NAMES))]


def write_mask_png(path: Path, mask: np.ndarray, style: str = "gray255") -> None:
    """Write bool ``mask`` as a PNG: ``gray255`` / ``gray225`` (8-bit L with that value), ``rgb`` (white on
    black RGB) or ``palette`` (P mode whose index 0 is white and index 1 black)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if style in ("gray255", "gray225"):
        value = 255 if style == "gray255" else 225
        Image.fromarray(np.where(mask, value, 0).astype(np.uint8)).save(path)
    elif style == "rgb":
        Image.fromarray(np.repeat(np.where(mask, 255, 0).astype(np.uint8)[..., None], 3, axis=2)).save(path)
    elif style == "palette":
        indices = np.where(mask, 0, 1).astype(np.uint8)
        image = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.tobytes())
        image.putpalette([255, 255, 255, 0, 0, 0] + [0, 0, 0] * 254)
        image.save(path)
    else:
        raise ValueError(f"unknown mask style {style!r}")


def _image_pixels(index: int, height: int, width: int) -> np.ndarray:
    position = INDICES.index(index)
    yy, xx = np.mgrid[0:height, 0:width]
    red = (xx * 240 // max(width - 1, 1) + 5 * position) % 256
    green = yy * 240 // max(height - 1, 1)
    blue = np.full_like(xx, 100 + 20 * position)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def write_tree(
    root: Path,
    *,
    image_size: int = GRID,
    mask_size: int | None = None,
    with_partition: bool = True,
    with_identity: bool = True,
    with_skin_tone: bool = True,
) -> Path:
    """Write the tree under ``root`` (images ``image_size²``, masks ``mask_size²``, default the image size)."""
    root.mkdir(parents=True, exist_ok=True)
    mask_size = mask_size or image_size
    (root / "CelebA-HQ-img").mkdir(exist_ok=True)
    anno = root / "CelebAMask-HQ-mask-anno"
    for index in INDICES:
        pixels = _image_pixels(index, image_size, image_size)
        Image.fromarray(pixels).save(root / "CelebA-HQ-img" / f"{index}.jpg", quality=95)
        for part, mask in part_masks(index, mask_size).items():
            path = anno / str(index // 2000) / f"{index:05d}_{part}.png"
            write_mask_png(path, mask, ODD_MASKS.get((index, part), "gray255"))

    # rows deliberately not sorted by index
    order = (2001, 0, 3, 1, 2000, 2)
    rows = [f"{index}.jpg  " + " ".join(str(v) for v in attribute_bits(index)) for index in order]
    attribute_text = [str(len(order)), " ".join(ATTRIBUTE_NAMES), *rows]
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text("\n".join(attribute_text) + "\n")

    mapping = ["idx orig_idx orig_file"] + [f"{i} {ORIG[i][0]} {ORIG[i][1]}" for i in order]
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(mapping) + "\n")

    if with_partition:
        partition = {n: 0 for n in range(1, 101)} | _PARTITION_DECOYS | _PARTITION_RIGHT
        text = "".join(f"{n:06d}.jpg {value}\n" for n, value in sorted(partition.items()))
        (root / "list_eval_partition.txt").write_text(text)
    if with_identity:
        lines = [f"{ORIG[i][1]} {identity}" for i, identity in IDENTITIES.items() if identity >= 0]
        lines += ["000061.jpg 99", "000010.jpg 98"]  # decoys a wrong join would pick up
        (root / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    if with_skin_tone:
        tone_rows = [f"{i}.jpg {0.2 + 0.1 * g:.3f} {g}" for i, g in SKIN_TONES.items() if g >= 0]
        text = "# groups: 0=light 1=dark\nimage tone group\n" + "\n".join(tone_rows) + "\n"
        (root / "fp_skin_tone.txt").write_text(text)
    return root
