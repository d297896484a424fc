"""Part-mask PNGs on disk: find them, read them (grayscale, > 0), write a label map as them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fp_parsing.data.files import DataFormatError
from fp_parsing.data.labels import PART_NAMES, check_label_order, label_map_to_part_masks
from fp_parsing.data.layout import MASKS_PER_FOLDER, mask_folder, part_mask_path
from fp_parsing.data.problems import DatasetProblem

__all__ = ["find_part_masks", "read_part_mask", "write_part_masks"]

_MASK_NAME = re.compile(r"^(\d+)_(\w+)\.png$")


def find_part_masks(
    anno_root: str | os.PathLike[str],
    indices: Iterable[int],
    *,
    problems: list[DatasetProblem] | None = None,
) -> dict[int, tuple[str, ...]]:
    """``{index: parts with a mask file}`` for ``indices``, listing each needed folder once.

    Raises ``FileNotFoundError`` for a missing folder and :class:`DataFormatError` for a mask file with an
    unknown part name, a non-canonical name or in the wrong folder. With a ``problems`` list, each of these
    is appended to it instead: a bad file is skipped and the images of a missing folder are left out of the
    result.
    """
    anno_root = Path(anno_root)
    wanted = set(indices)
    found: dict[int, list[str]] = {index: [] for index in wanted}

    def fail(error: Exception, path: Path) -> None:
        if problems is None:
            raise error
        problems.append(DatasetProblem(path, str(error).removeprefix(f"{path}: ")))

    for folder_id in sorted({index // MASKS_PER_FOLDER for index in wanted}):
        folder = anno_root / str(folder_id)
        if not folder.is_dir():
            members = [index for index in wanted if index // MASKS_PER_FOLDER == folder_id]
            for index in members:
                del found[index]
            first, last = folder_id * MASKS_PER_FOLDER, (folder_id + 1) * MASKS_PER_FOLDER - 1
            fail(
                FileNotFoundError(
                    f"missing mask folder {folder} (holds the part masks of images {first}.jpg to {last}.jpg)"
                ),
                folder,
            )
            continue
        with os.scandir(folder) as entries:
            for entry in entries:
                match = _MASK_NAME.match(entry.name)
                if match is None:
                    continue
                index, part = int(match.group(1)), match.group(2)
                path = Path(entry.path)
                if part not in PART_NAMES:
                    message = f"{path}: unknown part {part!r}; expected one of {', '.join(PART_NAMES)}"
                    fail(DataFormatError(message, path=path), path)
                    continue
                if entry.name != f"{index:05d}_{part}.png" or index // MASKS_PER_FOLDER != folder_id:
                    expected = part_mask_path(anno_root, index, part)
                    message = f"{path}: misnamed or misplaced mask; expected it at {expected}"
                    fail(DataFormatError(message, path=path), path)
                    continue
                if index in found:
                    found[index].append(part)
    return {index: tuple(sorted(parts, key=PART_NAMES.index)) for index, parts in found.items()}


def read_part_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """A part mask PNG as bool ``[H, W]``: read as grayscale, a pixel belongs to the part when it is > 0.

    Works for 8-bit grayscale, RGB and palette PNGs alike (a palette entry is judged by its colour, not by
    its index). An unreadable file raises :class:`DataFormatError` naming it.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataFormatError(
            f"{path}: part mask does not decode as an image ({error})", path=path
        ) from error
    return gray > 0


def write_part_masks(
    label_map: np.ndarray | torch.Tensor,
    anno_root: str | os.PathLike[str],
    index: int,
    order: str = "zllrunning",
) -> list[Path]:
    """Write label map ``[H, W]`` (labels of ``order``) as the release's part masks of image ``index``.

    Each present part becomes ``<anno_root>/<index // 2000>/<index:05d>_<part>.png``, 8-bit grayscale,
    255 on 0. Absent parts get no file (a stale one from an earlier write is removed). Returns the paths
    written, by label id. Reading them back with :class:`fp_parsing.data.CelebAMaskHQ` (same ``order``)
    gives ``label_map`` again. The written masks are disjoint (a label map holds no occluded parts), so
    reading them in another order only renames the labels.
    """
    check_label_order(order)
    part_masks = label_map_to_part_masks(label_map, order)
    folder = mask_folder(anno_root, index)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for part in PART_NAMES:
        path = part_mask_path(anno_root, index, part)
        if part not in part_masks:
            path.unlink(missing_ok=True)
    for part, mask in part_masks.items():
        path = part_mask_path(anno_root, index, part)
        Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path)
        written.append(path)
    return written
