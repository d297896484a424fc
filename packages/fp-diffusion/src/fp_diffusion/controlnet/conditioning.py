"""Label maps <-> ControlNet condition images, with the face palette and nearest-neighbour resizing only.

A condition image is the label map drawn in :data:`~fp_diffusion.controlnet.palette.FACE_PALETTE`, as float
``[B, 3, R, R]`` in ``[0, 1]`` (what diffusers' ControlNet pipelines and ``train_controlnet`` feed the model).
Maps are resized as class ids with nearest neighbour, never as colours with bilinear / bicubic / lanczos
filters, which blend two classes' colours at every border into colours of no class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from fp_diffusion.controlnet.palette import FACE_CLASSES, face_palette

__all__ = [
    "ConditioningError",
    "colorize_labels",
    "condition_to_labels",
    "labels_to_condition",
    "resize_labels",
]


class ConditioningError(ValueError):
    """A label outside the face classes, a colour outside the palette, or a shape that does not fit."""


def _as_tensor(labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    tensor = labels if isinstance(labels, torch.Tensor) else torch.from_numpy(np.asarray(labels))
    if tensor.dtype.is_floating_point or tensor.dtype in (torch.bool, torch.complex64, torch.complex128):
        raise ConditioningError(f"label maps must hold integer class ids, got dtype {tensor.dtype}")
    if tensor.ndim not in (2, 3):
        raise ConditioningError(f"label maps must be [H, W] or [B, H, W], got shape {tuple(tensor.shape)}")
    return tensor.long()


def _check_labels(labels: torch.Tensor) -> None:
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= len(FACE_CLASSES):
        bad = low if low < 0 else high
        raise ConditioningError(
            f"label {bad} is not a face class id: expected ids in [0, {len(FACE_CLASSES)}) "
            f"({', '.join(FACE_CLASSES)})"
        )


def colorize_labels(labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """The face-palette colours of ``labels`` (int ``[H, W]`` or ``[B, H, W]``): uint8 ``[..., H, W, 3]``.

    Raises :class:`ConditioningError` naming a label below 0 or >= 19.
    """
    tensor = _as_tensor(labels)
    _check_labels(tensor)
    return face_palette()[tensor.cpu().numpy()]


def resize_labels(labels: torch.Tensor | np.ndarray, size: int | Sequence[int]) -> torch.Tensor:
    """``labels`` (int ``[H, W]`` or ``[B, H, W]``) resized to ``size`` (``R`` or ``(H', W')``) by nearest
    neighbour (``F.interpolate(mode="nearest-exact")``: pixel centres, no new ids); int64, same rank."""
    tensor = _as_tensor(labels)
    target = (int(size), int(size)) if isinstance(size, int | np.integer) else tuple(int(s) for s in size)
    if len(target) != 2 or min(target) < 1:
        raise ConditioningError(f"size must be a positive int or (height, width), got {size!r}")
    if tuple(tensor.shape[-2:]) == target:
        return tensor.clone()
    batched = tensor if tensor.ndim == 3 else tensor[None]
    # float32 holds every id below 2**24 exactly, so the round trip through interpolate is lossless
    resized = F.interpolate(batched[:, None].float(), size=target, mode="nearest-exact")[:, 0].round().long()
    return resized if tensor.ndim == 3 else resized[0]


def labels_to_condition(labels: torch.Tensor | np.ndarray, resolution: int) -> torch.Tensor:
    """The ControlNet input of ``labels`` (int ``[H, W]`` or ``[B, H, W]``): float ``[B, 3, R, R]`` in
    ``[0, 1]`` (``R = resolution``), the nearest-neighbour resized map in face-palette colours / 255."""
    tensor = _as_tensor(labels)
    _check_labels(tensor)
    batched = tensor if tensor.ndim == 3 else tensor[None]
    resized = resize_labels(batched, resolution)
    palette = torch.from_numpy(face_palette()).float() / 255.0
    return palette[resized].permute(0, 3, 1, 2).contiguous()


def condition_to_labels(rgb: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The class ids of a condition image: float ``[B, 3, H, W]`` / ``[3, H, W]`` in ``[0, 1]`` or uint8
    ``[..., H, W, 3]`` -> int64 ``[B, H, W]`` / ``[H, W]``.

    Raises :class:`ConditioningError` naming the first pixel whose colour is not a palette colour.
    """
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8:
        if rgb.ndim not in (3, 4) or rgb.shape[-1] != 3:
            raise ConditioningError(f"a uint8 condition must be [..., H, W, 3], got shape {rgb.shape}")
        pixels = torch.from_numpy(rgb.astype(np.int64))
    else:
        tensor = rgb if isinstance(rgb, torch.Tensor) else torch.from_numpy(np.asarray(rgb))
        if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
            raise ConditioningError(
                f"a float condition must be [B, 3, H, W] or [3, H, W], got {tuple(tensor.shape)}"
            )
        pixels = (tensor.detach().cpu().float() * 255.0).round().long().movedim(-3, -1)
    palette = torch.from_numpy(face_palette().astype(np.int64))
    codes = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    match = codes[..., None] == palette_codes
    found = match.any(-1)
    if not bool(found.all()):
        where = tuple(int(i) for i in torch.nonzero(~found)[0])
        colour = pixels[where].tolist()
        raise ConditioningError(
            f"pixel {where} has colour {colour}, which is not a face-palette colour; the condition must be drawn "
            f"with FACE_PALETTE and resized with nearest neighbour only"
        )
    return match.long().argmax(-1)
