"""Generation from label maps and the sample grid (label colours | generated | real) shown during training."""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from torch import nn

__all__ = ["colorize", "default_palette", "generate", "sample_grid", "to_uint8"]


def default_palette(num_classes: int) -> np.ndarray:
    """``uint8 [num_classes, 3]``: black for class 0, then evenly spaced hues (use the export's palette when
    there is one)."""
    colours = [(0, 0, 0)]
    for k in range(1, num_classes):
        r, g, b = colorsys.hsv_to_rgb((k - 1) / max(num_classes - 1, 1), 0.8, 0.9 if k % 2 else 0.6)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return np.asarray(colours[:num_classes], dtype=np.uint8)


def colorize(labels: np.ndarray | torch.Tensor, palette: np.ndarray) -> np.ndarray:
    """Class ids ``[..., H, W]`` -> RGB ``uint8 [..., H, W, 3]`` through ``palette [num_classes, 3]``."""
    ids = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    palette = np.asarray(palette, dtype=np.uint8)
    if ids.size and (ids.min() < 0 or ids.max() >= len(palette)):
        raise ValueError(f"class id {int(ids.max())} has no colour in a palette of {len(palette)} entries")
    return palette[ids]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images ``[B, 3, H, W]`` in [0, 1] -> ``uint8 [B, H, W, 3]`` (clamped, rounded)."""
    return (
        images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    )


@torch.no_grad()
def generate(
    generator: nn.Module,
    labels: torch.Tensor,
    batch_size: int = 16,
    *,
    instances: torch.Tensor | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Images ``[B, 3, H, W]`` in [0, 1] (on the CPU) from label maps ``labels [B, H, W]``.

    ``generator`` is a :class:`~fp_diffusion.gan.networks.Pix2PixHDGenerator` (it encodes and checks the
    maps); it runs in eval mode on ``device`` (default: where its parameters are) ``batch_size`` maps at a
    time, and its previous train/eval mode is restored.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if labels.dim() != 3:
        raise ValueError(f"labels must be [B, H, W], got shape {tuple(labels.shape)}")
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    outputs = []
    try:
        for start in range(0, labels.shape[0], batch_size):
            chunk = labels[start : start + batch_size].to(device)
            inst = None if instances is None else instances[start : start + batch_size].to(device)
            outputs.append(((generator.from_labels(chunk, inst).float() + 1) / 2).clamp(0, 1).cpu())
    finally:
        generator.train(was_training)
    if not outputs:
        return torch.zeros(0, 3, *labels.shape[1:])
    return torch.cat(outputs)


def sample_grid(
    labels: torch.Tensor | np.ndarray,
    generated: torch.Tensor,
    real: torch.Tensor | None = None,
    palette: np.ndarray | None = None,
) -> np.ndarray:
    """A ``uint8 [rows * H, N * W, 3]`` grid: row 1 the label maps ``[N, H, W]`` coloured with ``palette``
    (default :func:`default_palette`), row 2 ``generated [N, 3, H, W]``, row 3 ``real [N, 3, H, W]`` when
    given; images in [0, 1]."""
    ids = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if palette is None:
        palette = default_palette(max(int(ids.max()) + 1 if ids.size else 1, 2))
    rows = [colorize(ids, palette), to_uint8(generated)]
    if real is not None:
        rows.append(to_uint8(real))
    shapes = {row.shape for row in rows}
    if len(shapes) != 1:
        raise ValueError(f"labels, generated and real disagree in shape: {sorted(shapes)}")
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
