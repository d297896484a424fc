"""Small input-validation helpers shared by the metric modules (private)."""

from __future__ import annotations

import torch

__all__ = ["check_int_labels", "check_num_classes", "check_same_shape"]


def check_num_classes(num_classes: int) -> int:
    """Return ``num_classes`` as an int after checking it is a positive integer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ValueError unless the two tensors have identical shapes."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_int_labels(x: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``x`` is an integer (label) tensor."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of integer labels, got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels, got dtype {x.dtype}")
