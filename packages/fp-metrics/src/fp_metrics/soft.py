"""Differentiable (soft) IoU and Dice from class probabilities, per image and per group.

With ``p`` the probabilities and ``t`` the one-hot target of one class in one image (summed over pixels):
``inter = sum(p * t)``, ``union = sum(p + t - p * t)``, ``IoU = inter / union``,
``Dice = 2 inter / (sum p + sum t)``. On exact one-hot predictions these are the hard per-image IoU / Dice
(the denominators are clamped at ``eps`` only, so the values are equal, not approximately equal).
A class with no target pixels and no predicted mass scores 0 here (the hard metric says NaN).

Present classes: :func:`soft_miou` and :func:`soft_group_miou` average over the classes the TARGET contains
(in the image, resp. in the group's images). Counting classes by predicted mass would count all of them for
softmax outputs (every class has mass > 0), so the mean would run over all ``C`` classes and a perfect
prediction of an image with 2 of 19 classes would score 2/19. A false positive is still penalised under
the target rule: mass on an absent class is mass missing from the true class's intersection. The optional
``min_mass`` (off by default) also counts classes whose predicted mass exceeds ``min_mass`` pixels, which
mirrors the hard mIoU (target or prediction) on exact one-hot inputs with ``min_mass=0``.
"""

from __future__ import annotations

import torch

__all__ = [
    "soft_dice",
    "soft_group_miou",
    "soft_intersection_union",
    "soft_iou",
    "soft_miou",
]


def _check_probs(probs: torch.Tensor, target_onehot: torch.Tensor) -> None:
    for name, x in (("probs", probs), ("target_onehot", target_onehot)):
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a tensor [B, C, H, W] (any spatial dims), got {shape}")
    if probs.shape != target_onehot.shape:
        raise ValueError(
            f"probs and target_onehot must have the same shape [B, C, H, W], got {tuple(probs.shape)} "
            f"and {tuple(target_onehot.shape)}"
        )


def soft_intersection_union(
    probs: torch.Tensor, target_onehot: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft intersection and union per image and class: ``[B, C, H, W]`` x2 -> ``([B, C], [B, C])``."""
    _check_probs(probs, target_onehot)
    target = target_onehot.to(probs.dtype) if probs.dtype.is_floating_point else target_onehot.float()
    probs = probs if probs.dtype.is_floating_point else probs.float()
    dims = tuple(range(2, probs.dim()))
    inter = (probs * target).sum(dim=dims) if dims else probs * target
    total = (probs + target).sum(dim=dims) if dims else probs + target
    return inter, total - inter


def soft_iou(probs: torch.Tensor, target_onehot: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft IoU ``inter / max(union, eps)`` per image and class: ``[B, C, H, W]`` -> ``[B, C]``."""
    inter, union = soft_intersection_union(probs, target_onehot)
    return inter / union.clamp_min(eps)


def soft_dice(probs: torch.Tensor, target_onehot: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft Dice ``2 inter / max(sum p + sum t, eps)`` per image and class: ``[B, C, H, W]`` -> ``[B, C]``."""
    inter, union = soft_intersection_union(probs, target_onehot)
    return 2 * inter / (union + inter).clamp_min(eps)


def _present(target_mass: torch.Tensor, pred_mass: torch.Tensor, min_mass: float | None) -> torch.Tensor:
    """Classes counted in a mean: target mass > 0, or (with ``min_mass`` only) predicted mass > it."""
    present = target_mass > 0
    if min_mass is not None:
        present = present | (pred_mass.detach() > float(min_mass))
    return present


def _masses(probs: torch.Tensor, target_onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Target and (detached) predicted mass per image and class: ``[B, C, ...]`` x2 -> ``[B, C]`` x2."""
    dims = tuple(range(2, probs.dim()))
    target_mass = target_onehot.sum(dim=dims) if dims else target_onehot
    pred_mass = probs.detach().sum(dim=dims) if dims else probs.detach()
    return target_mass, pred_mass


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(values.dtype)
    count = weights.sum(dim=-1)
    mean = (values * weights).sum(dim=-1) / count.clamp_min(1)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan")))


def soft_miou(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    *,
    present_only: bool = True,
    min_mass: float | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Differentiable per-image mIoU: ``[B, C, H, W]`` x2 -> ``[B]``.

    With ``present_only`` the mean runs over the classes present in the target image; with ``min_mass``
    (default ``None``: off) also over those whose predicted mass exceeds ``min_mass`` pixels (``0`` on exact
    one-hot inputs: the classes the hard mIoU counts). Without ``present_only``: over all ``C`` classes.
    An image with no present class gives NaN.
    """
    iou = soft_iou(probs, target_onehot, eps)
    if not present_only:
        return iou.mean(dim=-1)
    return _masked_mean(iou, _present(*_masses(probs, target_onehot), min_mass))


def soft_group_miou(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int | None = None,
    *,
    min_mass: float | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Differentiable per-group mIoU: soft intersections and unions are summed over the images of a group,
    then IoU per class and the mean over the classes present in the target of that group's images (with
    ``min_mass``, default ``None`` = off: also those whose predicted mass in the group exceeds it).

    ``probs, target_onehot [B, C, H, W]``, ``group_ids`` int ``[B]`` (negative = in no group) -> ``[G]``;
    NaN for groups with no image.
    """
    inter, union = soft_intersection_union(probs, target_onehot)
    if not isinstance(group_ids, torch.Tensor) or group_ids.shape != (inter.shape[0],):
        shape = tuple(group_ids.shape) if isinstance(group_ids, torch.Tensor) else type(group_ids).__name__
        raise ValueError(f"group_ids must be an integer tensor [B] with B={inter.shape[0]}, got {shape}")
    if group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must hold integer group ids, got dtype {group_ids.dtype}")
    group_ids = group_ids.to(inter.device).long()
    if num_groups is None:
        num_groups = max(int(group_ids.max()) + 1, 0) if group_ids.numel() else 0
    if group_ids.numel() and int(group_ids.max()) >= num_groups:
        raise ValueError(f"group_ids contains {int(group_ids.max())}; expected ids < num_groups={num_groups}")
    keep = group_ids >= 0
    target_mass, pred_mass = _masses(probs, target_onehot)
    target_mass = target_mass.to(inter.dtype)
    shape = (num_groups, inter.shape[1])
    g_inter = inter.new_zeros(shape).index_add(0, group_ids[keep], inter[keep])
    g_union = union.new_zeros(shape).index_add(0, group_ids[keep], union[keep])
    g_pred = pred_mass.new_zeros(shape).index_add(0, group_ids[keep], pred_mass[keep])
    g_target = target_mass.new_zeros(shape).index_add(0, group_ids[keep], target_mass[keep])
    iou = g_inter / g_union.clamp_min(eps)
    return _masked_mean(iou, _present(g_target, g_pred, min_mass))
