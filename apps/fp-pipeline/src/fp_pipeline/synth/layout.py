"""Names and paths of the CelebAMask-HQ release layout that the synthetic renderer writes.

Conventions: ``l_*`` parts lie on the image's left half (the viewer's left); a horizontal flip swaps them.
"""

from __future__ import annotations

from pathlib import Path

from fp_parsing.data import ATTRIBUTE_NAMES as _LOADER_ATTRIBUTE_NAMES
from fp_parsing.data import PART_NAMES

__all__ = [
    "ATTRIBUTE_FILE",
    "ATTRIBUTE_NAMES",
    "IDENTITY_FILE",
    "IMAGE_DIR",
    "MANIFEST_FILE",
    "MAPPING_FILE",
    "MAPPING_HEADER",
    "MASK_DIR",
    "MASKS_PER_FOLDER",
    "PARTITION_FILE",
    "PARTS",
    "SKIN_TONE_FILE",
    "SPLIT_CODES",
    "image_path",
    "mask_path",
    "orig_file_name",
]

#: The 18 part names in the release's own (g_mask) order (part id = position + 1, background = 0) and the 40
#: CelebA attributes in file order: the loader's definitions, so renderer and reader cannot drift apart.
PARTS: tuple[str, ...] = tuple(PART_NAMES)
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(_LOADER_ATTRIBUTE_NAMES)

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
MASKS_PER_FOLDER = 2000
ATTRIBUTE_FILE = "CelebAMask-HQ-attribute-anno.txt"
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
MAPPING_HEADER = "idx         orig_idx        orig_file"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
SKIN_TONE_FILE = "fp_skin_tone.txt"
MANIFEST_FILE = "fp_synth_manifest.json"

#: CelebA's partition codes.
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def image_path(root: Path, index: int) -> Path:
    """``root/CelebA-HQ-img/{index}.jpg``."""
    return root / IMAGE_DIR / f"{index}.jpg"


def mask_path(root: Path, index: int, part: str) -> Path:
    """``root/CelebAMask-HQ-mask-anno/{index // 2000}/{index:05d}_{part}.png``."""
    return root / MASK_DIR / str(index // MASKS_PER_FOLDER) / f"{index:05d}_{part}.png"


def orig_file_name(orig_idx: int) -> str:
    """CelebA's 1-based file name for a 0-based CelebA index: ``0 -> "000001.jpg"``."""
    return f"{orig_idx + 1:06d}.jpg"
