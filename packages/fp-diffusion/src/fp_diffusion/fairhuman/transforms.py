"""``JointTransform``: one random flip and square crop per sample, applied to the image and every mask and
condition alike (so a face mask always lies on the face it was made from)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CropFlip", "JointTransform"]


@dataclass(frozen=True)
class CropFlip:
    """The drawn parameters: a ``side x side`` crop at ``(top, left)``, then a horizontal flip or not."""

    top: int
    left: int
    side: int
    flip: bool


@dataclass(frozen=True)
class JointTransform:
    """Random square crop (side a uniform fraction in ``crop_scale`` of the shorter image side), resize to
    ``size`` and horizontal flip with probability ``flip_prob``, drawn once per call.

    Images and conditions are resized bilinearly (antialiased); masks with ``nearest-exact`` so they stay
    0 / 1. ``crop_scale=(1, 1)`` and ``flip_prob=0`` is a deterministic centre crop and resize.
    """

    size: int
    crop_scale: tuple[float, float] = (0.8, 1.0)
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"JointTransform.size must be a positive int, got {self.size!r}")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"JointTransform.crop_scale must be (low, high) with 0 < low <= high <= 1, got {self.crop_scale!r}"
            )
        if not 0 <= self.flip_prob <= 1:
            raise ValueError(f"JointTransform.flip_prob must lie in [0, 1], got {self.flip_prob!r}")

    def draw(self, height: int, width: int, generator: torch.Generator | None = None) -> CropFlip:
        """Draw the crop and flip for an ``height x width`` sample."""
        low, high = self.crop_scale
        u = torch.rand(3, generator=generator, dtype=torch.float64)
        side = max(1, round(min(height, width) * (low + (high - low) * float(u[0]))))
        flip = bool(float(torch.rand(1, generator=generator, dtype=torch.float64)) < self.flip_prob)
        top = int(float(u[1]) * (height - side + 1))
        left = int(float(u[2]) * (width - side + 1))
        if low == high == 1.0:  # deterministic: centre crop
            top, left = (height - side) // 2, (width - side) // 2
        return CropFlip(top=min(top, height - side), left=min(left, width - side), side=side, flip=flip)

    def apply(self, tensor: torch.Tensor, params: CropFlip, *, mask: bool = False) -> torch.Tensor:
        """``[C, H, W]`` or ``[H, W]`` -> ``[C, S, S]`` or ``[S, S]`` with ``params``."""
        squeeze = tensor.dim() == 2
        x = tensor[None] if squeeze else tensor
        x = x[:, params.top : params.top + params.side, params.left : params.left + params.side]
        if params.side != self.size:
            x = x[None].to(torch.float32)
            if mask:
                x = F.interpolate(x, size=(self.size, self.size), mode="nearest-exact")
            else:
                x = F.interpolate(
                    x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
                )
            x = x[0].to(tensor.dtype)
        if params.flip:
            x = torch.flip(x, dims=(-1,))
        return x[0] if squeeze else x

    def __call__(
        self,
        image: torch.Tensor,
        masks: Mapping[str, torch.Tensor],
        conditions: Mapping[str, torch.Tensor],
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Image ``[3, H, W]``, masks ``{name: [H, W]}``, conditions ``{name: [C, H, W]}`` -> the same at
        ``size``, all with one drawn crop and flip."""
        height, width = image.shape[-2:]
        for name, tensor in [*masks.items(), *conditions.items()]:
            if tuple(tensor.shape[-2:]) != (height, width):
                raise ValueError(f"{name} is {tuple(tensor.shape[-2:])}, the image is {(height, width)}")
        params = self.draw(height, width, generator)
        return (
            self.apply(image, params),
            {k: self.apply(v, params, mask=True) for k, v in masks.items()},
            {k: self.apply(v, params) for k, v in conditions.items()},
        )
