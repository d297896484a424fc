"""Validation of ``(cos, labels)`` and the indices of the target logits (label -1: not in this shard)."""

from __future__ import annotations

import torch

__all__ = ["replace_targets", "target_index"]


def target_index(cos: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of the target cosines: ``cos [B, C], labels [B]`` -> ``(rows [T], cols [T])``.

    Rows whose label is -1 (their class lives on another shard of a model-parallel classifier) are left
    out. Any other label outside ``[0, C)`` is an error.
    """
    if cos.dim() != 2:
        raise ValueError(f"cos must have shape [B, C], got {tuple(cos.shape)}")
    if labels.shape != (cos.shape[0],):
        raise ValueError(f"labels must have shape [B] with B={cos.shape[0]}, got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    bad = (labels < -1) | (labels >= cos.shape[1])
    if bool(bad.any()):
        raise ValueError(f"labels must be -1 or in [0, {cos.shape[1]}), got {labels[bad].unique().tolist()}")
    rows = torch.nonzero(labels != -1, as_tuple=True)[0]
    return rows, labels[rows].long()


def replace_targets(
    cos: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    """``cos [B, C]`` with ``cos[rows, cols] = values [T]``, out of place (the gradient reaches both)."""
    return cos.index_put((rows, cols), values.to(cos.dtype))
