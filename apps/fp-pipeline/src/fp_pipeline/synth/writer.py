"""Writers of the release's files: images, part masks and the text side files (exact formats)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fp_pipeline.synth.layout import (
    ATTRIBUTE_FILE,
    ATTRIBUTE_NAMES,
    IDENTITY_FILE,
    MAPPING_FILE,
    MAPPING_HEADER,
    PARTITION_FILE,
    PARTS,
    SKIN_TONE_FILE,
    SPLIT_CODES,
    image_path,
    mask_path,
    orig_file_name,
)

__all__ = [
    "write_attribute_file",
    "write_identity_file",
    "write_image",
    "write_mapping_file",
    "write_masks",
    "write_partition_file",
    "write_skin_tone_file",
]


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def write_image(root: Path, index: int, image: Image.Image, quality: int) -> None:
    """``CelebA-HQ-img/{index}.jpg`` (RGB JPEG, no chroma subsampling so colours stay on their parts)."""
    path = image_path(root, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, format="JPEG", quality=quality, subsampling=0)


def write_masks(root: Path, index: int, masks: dict[str, np.ndarray]) -> None:
    """One 8-bit grayscale PNG per part present (255 on the part, 0 elsewhere); absent parts get no file."""
    unknown = sorted(set(masks) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part {unknown[0]!r} for image {index} (known: {', '.join(PARTS)})")
    for part in PARTS:
        mask = masks.get(part)
        if mask is None or not mask.any():
            continue
        path = mask_path(root, index, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, format="PNG")


def write_attribute_file(root: Path, rows: Sequence[Sequence[int]]) -> None:
    """Count line, the 40 names, then ``{i}.jpg  v1 ... v40`` per image (values -1 / 1)."""
    lines = [str(len(rows)), " ".join(ATTRIBUTE_NAMES)]
    for index, values in enumerate(rows):
        if len(values) != len(ATTRIBUTE_NAMES) or any(v not in (-1, 1) for v in values):
            raise ValueError(
                f"image {index}: expected {len(ATTRIBUTE_NAMES)} values of -1 / 1, got {values!r}"
            )
        lines.append(f"{index}.jpg  " + " ".join(str(v) for v in values))
    _write_lines(root / ATTRIBUTE_FILE, lines)


def write_mapping_file(root: Path, orig_idx: Sequence[int]) -> None:
    """``CelebA-HQ-to-CelebA-mapping.txt``: header, then ``{i} {orig_idx} {orig_file}`` per image."""
    lines = [MAPPING_HEADER] + [f"{i} {o} {orig_file_name(o)}" for i, o in enumerate(orig_idx)]
    _write_lines(root / MAPPING_FILE, lines)


def write_partition_file(root: Path, orig_idx: Sequence[int], splits: Sequence[str]) -> None:
    """``list_eval_partition.txt``: ``{orig_file} {0|1|2}`` for every image, sorted by file name."""
    rows = sorted((orig_file_name(o), SPLIT_CODES[s]) for o, s in zip(orig_idx, splits, strict=True))
    _write_lines(root / PARTITION_FILE, [f"{name} {code}" for name, code in rows])


def write_identity_file(root: Path, orig_idx: Sequence[int], identities: Sequence[int]) -> None:
    """``identity_CelebA.txt``: ``{orig_file} {identity}`` for every image, sorted by file name."""
    rows = sorted((orig_file_name(o), k) for o, k in zip(orig_idx, identities, strict=True))
    _write_lines(root / IDENTITY_FILE, [f"{name} {k}" for name, k in rows])


def write_skin_tone_file(
    root: Path, tones: Sequence[float], groups: Sequence[int], group_names: Sequence[str]
) -> None:
    """``fp_skin_tone.txt``: ``# groups: 0=light 1=dark``, ``image tone group``, then ``{i}.jpg {tone} {group}``."""
    lines = ["# groups: " + " ".join(f"{k}={name}" for k, name in enumerate(group_names)), "image tone group"]
    lines += [
        f"{i}.jpg {tone:.4f} {group}" for i, (tone, group) in enumerate(zip(tones, groups, strict=True))
    ]
    _write_lines(root / SKIN_TONE_FILE, lines)
