"""File and folder names of the CelebAMask-HQ layout, where each comes from, and path helpers."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ATTRIBUTE_FILE",
    "IDENTITY_FILE",
    "IMAGE_DIR",
    "MAPPING_FILE",
    "MASK_DIR",
    "MASKS_PER_FOLDER",
    "PARTITION_FILE",
    "SKIN_TONE_FILE",
    "image_path",
    "mask_folder",
    "missing_file_message",
    "part_mask_path",
]

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
ATTRIBUTE_FILE = "CelebAMask-HQ-attribute-anno.txt"
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
SKIN_TONE_FILE = "fp_skin_tone.txt"

#: The release stores the part masks of images ``2000 k .. 2000 k + 1999`` in folder ``k``.
MASKS_PER_FOLDER = 2000

_ORIGINS = {
    IMAGE_DIR: "the CelebAMask-HQ release (CelebAMask-HQ/CelebA-HQ-img/) or `fp data synth`",
    MASK_DIR: "the CelebAMask-HQ release (CelebAMask-HQ/CelebAMask-HQ-mask-anno/) or `fp data synth`",
    ATTRIBUTE_FILE: "the CelebAMask-HQ release (CelebAMask-HQ/CelebAMask-HQ-attribute-anno.txt) "
    "or `fp data synth`",
    MAPPING_FILE: "the CelebAMask-HQ release (CelebAMask-HQ/CelebA-HQ-to-CelebA-mapping.txt) "
    "or `fp data synth`",
    PARTITION_FILE: "CelebA's Eval/list_eval_partition.txt (not part of the CelebAMask-HQ release): "
    "copy it into the dataset root",
    IDENTITY_FILE: "CelebA's Anno/identity_CelebA.txt (optional): copy it into the dataset root",
    SKIN_TONE_FILE: "`fp data synth` (optional side file of fp)",
}


def missing_file_message(root: str | os.PathLike[str], name: str) -> str:
    """``"missing <root>/<name>; it comes from <origin>"`` for a file or folder of the layout."""
    where = Path(root) / name
    return f"missing {where}; it comes from {_ORIGINS[name]} (see docs/data.md)"


def image_path(root: str | os.PathLike[str], index: int) -> Path:
    """``<root>/CelebA-HQ-img/<index>.jpg``."""
    return Path(root) / IMAGE_DIR / f"{index}.jpg"


def mask_folder(anno_root: str | os.PathLike[str], index: int) -> Path:
    """``<anno_root>/<index // 2000>``: the folder holding image ``index``'s part masks."""
    return Path(anno_root) / str(index // MASKS_PER_FOLDER)


def part_mask_path(anno_root: str | os.PathLike[str], index: int, part: str) -> Path:
    """``<anno_root>/<index // 2000>/<index:05d>_<part>.png`` (``anno_root`` is the mask directory)."""
    return mask_folder(anno_root, index) / f"{index:05d}_{part}.png"
