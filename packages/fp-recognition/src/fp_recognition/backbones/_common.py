"""Shared checks for the backbones: the input side and the final feature-map side (``input_size / 16``)."""

from __future__ import annotations

__all__ = ["feature_side"]


def feature_side(input_size: int) -> int:
    """Side of the last feature map of a four-stage, stride-16 backbone: ``input_size // 16``.

    Every stage halves the side with a stride-2 3x3 convolution (padding 1), so ``input_size`` must be a
    positive multiple of 16 (112 -> 7, 48 -> 3, 32 -> 2).
    """
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 16 or input_size % 16:
        raise ValueError(
            f"input_size must be a positive multiple of 16 (e.g. 112, 48, 32), got {input_size!r}"
        )
    return input_size // 16
