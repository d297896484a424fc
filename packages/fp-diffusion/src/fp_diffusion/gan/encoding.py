"""The generator's input: one-hot label maps, the optional instance-edge channel, and their checks.

Upstream pix2pixHD scatters the label ids into ``label_nc`` channels on the GPU and dies in a CUDA assert
when an id is out of range; here an out-of-range id is a :class:`LabelRangeError` naming the value (and the
file, when the caller knows it) before anything is scattered.
"""

from __future__ import annotations

import torch

__all__ = ["LabelRangeError", "check_labels", "edge_map", "encode_input", "one_hot"]


class LabelRangeError(ValueError):
    """A label map holding a class id outside ``0 .. label_nc - 1``."""


def check_labels(labels: torch.Tensor, label_nc: int, where: str = "label map") -> None:
    """Raise :class:`LabelRangeError` unless every id of ``labels`` is in ``0 .. label_nc - 1``.

    ``where`` names the source in the message (a file name, a batch).
    """
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"{where}: label maps must hold integer class ids, got dtype {labels.dtype}")
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= label_nc:
        bad = high if high >= label_nc else low
        raise LabelRangeError(
            f"{where}: class id {bad} is outside 0..{label_nc - 1} (label_nc={label_nc}); the maps must "
            f"come from a parser with at most {label_nc} classes, or set label_nc to cover them"
        )


def one_hot(labels: torch.Tensor, label_nc: int, where: str = "label map") -> torch.Tensor:
    """``labels [B, H, W]`` int -> float ``[B, label_nc, H, W]`` with a 1 in channel ``labels[b, y, x]``."""
    if labels.dim() != 3:
        raise ValueError(f"{where}: expected label maps [B, H, W], got shape {tuple(labels.shape)}")
    check_labels(labels, label_nc, where)
    out = torch.zeros(labels.shape[0], label_nc, *labels.shape[1:], device=labels.device, dtype=torch.float32)
    return out.scatter_(1, labels.long().unsqueeze(1), 1.0)


def edge_map(ids: torch.Tensor) -> torch.Tensor:
    """``ids [B, H, W]`` (instance or label ids) -> float ``[B, 1, H, W]``: 1 where a pixel's id differs
    from any of its 4 neighbours' (both pixels of a differing pair are edges, as upstream), else 0."""
    if ids.dim() != 3:
        raise ValueError(f"expected id maps [B, H, W], got shape {tuple(ids.shape)}")
    edge = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
    horizontal = ids[:, :, 1:] != ids[:, :, :-1]
    vertical = ids[:, 1:, :] != ids[:, :-1, :]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    return edge.unsqueeze(1).float()


def encode_input(
    labels: torch.Tensor,
    label_nc: int,
    *,
    edge_channel: bool = False,
    instances: torch.Tensor | None = None,
    where: str = "label map",
) -> torch.Tensor:
    """The generator input ``[B, label_nc (+1), H, W]``: one-hot labels, then (with ``edge_channel``) the
    edges of ``instances [B, H, W]``, or of ``labels`` when no instance maps are given."""
    encoded = one_hot(labels, label_nc, where)
    if not edge_channel:
        return encoded
    source = labels if instances is None else instances
    if source.shape != labels.shape:
        raise ValueError(
            f"{where}: instance maps {tuple(source.shape)} do not match the label maps {tuple(labels.shape)}"
        )
    return torch.cat([encoded, edge_map(source)], dim=1)
