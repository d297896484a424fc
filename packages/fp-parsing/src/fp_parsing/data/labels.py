"""Face-part names, the three public label orders, and label map <-> part mask conversions.

A *label map* is an integer array ``[H, W]`` (or ``[..., H, W]`` where stated) holding 0 for background
and ``1 + position`` of a part in the chosen label order. Part masks are boolean arrays ``[H, W]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "BACKGROUND",
    "LABEL_ORDERS",
    "MIRRORED_PARTS",
    "PART_NAMES",
    "check_label_order",
    "flip_label_map",
    "label_map_to_part_masks",
    "label_names",
    "merge_part_masks",
    "mirror_lookup",
]

BACKGROUND = "background"

#: The 18 parts of the CelebAMask-HQ release, in the release's own (g_mask) order.
PART_NAMES: tuple[str, ...] = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip

#: Label orders in public use: part ``LABEL_ORDERS[name][j]`` has label ``j + 1`` (0 is background).
LABEL_ORDERS: dict[str, tuple[str, ...]] = {
    # face-parsing.PyTorch (zllrunning), the most common order for CelebAMask-HQ models.
    "zllrunning": (
        "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
        "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
    ),
    # The release's g_mask.py order.
    "official": PART_NAMES,
    # FaRL's CelebAMask-HQ order.
    "farl": (
        "neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye",
        "nose", "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l",
    ),
}  # fmt: skip

#: Parts that trade places under a horizontal flip ("ear_r" is the earring, not the right ear).
MIRRORED_PARTS: tuple[tuple[str, str], ...] = (("l_brow", "r_brow"), ("l_eye", "r_eye"), ("l_ear", "r_ear"))

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def check_label_order(order: str) -> tuple[str, ...]:
    """The parts of label order ``order`` (a key of :data:`LABEL_ORDERS`), or a ``ValueError`` naming them."""
    try:
        return LABEL_ORDERS[order]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown label order {order!r}; expected one of: {', '.join(LABEL_ORDERS)}"
        ) from None


def label_names(order: str = "zllrunning") -> list[str]:
    """The 19 class names of ``order``: ``"background"`` first, then the parts by label id."""
    return [BACKGROUND, *check_label_order(order)]


def mirror_lookup(order: str = "zllrunning") -> np.ndarray:
    """``lookup[label]`` is the label after a horizontal flip (left/right parts swapped), int64 ``[19]``."""
    parts = check_label_order(order)
    lookup = np.arange(len(parts) + 1, dtype=np.int64)
    for left, right in MIRRORED_PARTS:
        a, b = parts.index(left) + 1, parts.index(right) + 1
        lookup[a], lookup[b] = b, a
    return lookup


def _check_label_values(label_map: np.ndarray, order: str) -> None:
    count = len(check_label_order(order)) + 1
    if not np.issubdtype(label_map.dtype, np.integer):
        raise ValueError(f"a label map must hold integers, got dtype {label_map.dtype}")
    if label_map.size and (label_map.min() < 0 or label_map.max() >= count):
        bad = sorted({int(v) for v in np.unique(label_map) if v < 0 or v >= count})
        raise ValueError(f"label map holds values {bad} outside 0..{count - 1} of label order {order!r}")


def flip_label_map(label_map: ArrayOrTensor, order: str = "zllrunning") -> ArrayOrTensor:
    """Mirror a label map ``[..., H, W]`` left to right and swap the left/right part labels.

    Accepts a numpy array or a torch tensor and returns the same kind (a new array, same dtype).
    """
    lookup = mirror_lookup(order)
    if isinstance(label_map, torch.Tensor):
        _check_label_values(label_map.detach().cpu().numpy(), order)
        table = torch.from_numpy(lookup).to(label_map.device)
        return table[torch.flip(label_map, dims=[-1]).long()].to(label_map.dtype)
    array = np.asarray(label_map)
    _check_label_values(array, order)
    return lookup[array[..., ::-1]].astype(array.dtype)


def merge_part_masks(
    part_masks: Mapping[str, np.ndarray],
    order: str = "zllrunning",
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Merge boolean part masks ``{part: [H, W]}`` into one label map, uint8 ``[H, W]``.

    Parts are painted in ascending label id of ``order``, so where parts overlap the higher label wins;
    pixels no part covers are background (0). ``shape`` gives the size when ``part_masks`` is empty.
    """
    parts = check_label_order(order)
    unknown = sorted(set(part_masks) - set(parts))
    if unknown:
        raise ValueError(f"unknown part names {unknown}; expected some of: {', '.join(PART_NAMES)}")
    shapes = {name: np.shape(mask) for name, mask in part_masks.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"part masks differ in size: {shapes}")
    if shapes:
        size = next(iter(shapes.values()))
        if len(size) != 2:
            raise ValueError(f"part masks must be 2-D [H, W], got shape {size}")
        if shape is not None and tuple(shape) != size:
            raise ValueError(f"part masks are {size}, but shape={tuple(shape)} was asked for")
    elif shape is None:
        raise ValueError("merge_part_masks needs `shape` when no part mask is given")
    else:
        size = tuple(shape)
    label_map = np.zeros(size, dtype=np.uint8)
    for label, name in enumerate(parts, start=1):
        if name in part_masks:
            label_map[np.asarray(part_masks[name], dtype=bool)] = label
    return label_map


def label_map_to_part_masks(
    label_map: np.ndarray | torch.Tensor, order: str = "zllrunning"
) -> dict[str, np.ndarray]:
    """Split a label map ``[H, W]`` into ``{part: bool [H, W]}`` for the parts present, by label id.

    The inverse of :func:`merge_part_masks`: merging the result in the same order gives ``label_map`` back.
    """
    if isinstance(label_map, torch.Tensor):
        label_map = label_map.detach().cpu().numpy()
    array = np.asarray(label_map)
    if array.ndim != 2:
        raise ValueError(f"a label map must be 2-D [H, W], got shape {array.shape}")
    _check_label_values(array, order)
    parts = check_label_order(order)
    present = np.unique(array)
    return {parts[label - 1]: array == label for label in present.tolist() if label > 0}
