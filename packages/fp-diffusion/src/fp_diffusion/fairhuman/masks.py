"""Face / hand masks from boxes, and their latent-resolution version.

Conventions:

* A box is pixel ``[x0, y0, x1, y1]`` with exclusive ends (``x1 - x0`` is the width); pixel ``(row, col)``
  covers ``[col, col + 1) x [row, row + 1)`` and belongs to a box when its centre ``(col + 0.5, row + 0.5)``
  lies inside it. An integer box therefore covers exactly columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``.
* ``dilation`` is a fraction of the box's own size: each side moves out by ``dilation * width``
  (left, right) and ``dilation * height`` (top, bottom), so ``0.1`` grows a 20-pixel box by 2 pixels on each
  side whatever the image size, and a small far-away face grows as little as it should. The grown box is
  clipped to the image.
* Latent masks use an **any** rule (a max-pool): a latent cell is in the mask when any pixel it covers is,
  where cell ``i`` of ``h`` covers pixel rows ``floor(i * H / h)`` to ``ceil((i + 1) * H / h) - 1`` (the
  ``adaptive_max_pool2d`` windows; for ``H`` divisible by ``h`` the ``H / h`` rows of the cell). Small hands
  (a few pixels) never vanish at 8x downsampling, and no value is interpolated: a binary mask stays binary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["boxes_to_mask", "mask_to_latent"]


def boxes_to_mask(
    boxes: Sequence[Sequence[float]], height: int, width: int, dilation: float | int = 0.0
) -> torch.Tensor:
    """Union of ``boxes`` (pixel xyxy, exclusive ends) grown by ``dilation`` (fraction of each box's size)
    -> ``[height, width]`` bool mask."""
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be positive, got height={height}, width={width}")
    if not isinstance(dilation, int | float) or isinstance(dilation, bool) or not dilation >= 0:
        raise ValueError(f"dilation must be a number >= 0 (a fraction of the box size), got {dilation!r}")
    cols = torch.arange(width, dtype=torch.float64) + 0.5
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    mask = torch.zeros(height, width, dtype=torch.bool)
    for box in boxes:
        if len(box) != 4:
            raise ValueError(f"a box needs 4 numbers [x0, y0, x1, y1], got {list(box)!r}")
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"box {list(box)!r} is empty: expected x1 > x0 and y1 > y0")
        dx, dy = dilation * (x1 - x0), dilation * (y1 - y0)
        inside_x = (cols >= x0 - dx) & (cols < x1 + dx)
        inside_y = (rows >= y0 - dy) & (rows < y1 + dy)
        mask |= inside_y[:, None] & inside_x[None, :]
    return mask


def mask_to_latent(mask: torch.Tensor, latent_hw: int | tuple[int, int]) -> torch.Tensor:
    """``[..., H, W]`` mask -> ``[..., h, w]`` by the any rule (max over each cell's pixels); dtype kept."""
    h, w = (latent_hw, latent_hw) if isinstance(latent_hw, int) else tuple(latent_hw)
    if mask.dim() < 2:
        raise ValueError(f"mask must be [..., H, W], got shape {tuple(mask.shape)}")
    height, width = mask.shape[-2:]
    if not (1 <= h <= height and 1 <= w <= width):
        raise ValueError(f"latent size {(h, w)} must lie between 1 and the mask size {(height, width)}")
    lead = mask.shape[:-2]
    flat = mask.reshape(-1, 1, height, width)
    pooled = F.adaptive_max_pool2d(flat.to(torch.float32), (h, w)).reshape(*lead, h, w)
    return pooled.to(mask.dtype)
