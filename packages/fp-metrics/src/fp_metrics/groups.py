"""Per-group segmentation metrics and fairness summaries from per-image confusion matrices.

A group's mIoU sums the confusion matrices of its images first (the split-level definition, not a mean
of per-image mIoUs), then takes the NaN-mean of per-class IoU. Fairness summaries use the populated
groups only: population variance (ddof = 0; the paper's Var(mIoU_g)), max gap (best - worst) and the
worst group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from fp_metrics.segmentation import iou_from_confusion

__all__ = ["GroupFairness", "group_confusion", "group_fairness", "group_miou"]


def _check_per_image_cm(per_image_cm: torch.Tensor) -> None:
    if (
        not isinstance(per_image_cm, torch.Tensor)
        or per_image_cm.dim() != 3
        or per_image_cm.shape[1] != per_image_cm.shape[2]
    ):
        shape = (
            tuple(per_image_cm.shape)
            if isinstance(per_image_cm, torch.Tensor)
            else type(per_image_cm).__name__
        )
        raise ValueError(f"per_image_cm must be a tensor [N, C, C], got {shape}")


def group_confusion(
    per_image_cm: torch.Tensor, group_ids: torch.Tensor, num_groups: int | None = None
) -> torch.Tensor:
    """Sum per-image confusion matrices ``[N, C, C]`` within groups ``group_ids [N]`` -> ``[G, C, C]``.

    Negative ids mark images that belong to no group; they are skipped.
    """
    _check_per_image_cm(per_image_cm)
    n = per_image_cm.shape[0]
    if not isinstance(group_ids, torch.Tensor) or group_ids.shape != (n,):
        shape = tuple(group_ids.shape) if isinstance(group_ids, torch.Tensor) else type(group_ids).__name__
        raise ValueError(f"group_ids must be an integer tensor [N] with N={n}, got {shape}")
    if group_ids.dtype.is_floating_point:
        raise ValueError(f"group_ids must hold integer group ids, got dtype {group_ids.dtype}")
    group_ids = group_ids.to(per_image_cm.device).long()
    max_id = int(group_ids.max()) if n else -1
    if num_groups is None:
        num_groups = max(max_id + 1, 0)
    if num_groups < 0 or max_id >= num_groups:
        raise ValueError(f"group_ids contains {max_id}; expected ids in [0, num_groups={num_groups})")
    keep = group_ids >= 0
    c = per_image_cm.shape[1]
    out = torch.zeros(num_groups, c, c, dtype=per_image_cm.dtype, device=per_image_cm.device)
    return out.index_add(0, group_ids[keep], per_image_cm[keep])


def _miou(cm: torch.Tensor, include_background: bool) -> torch.Tensor:
    iou = iou_from_confusion(cm)
    if not include_background:
        iou = iou[..., 1:]
    return torch.nanmean(iou, dim=-1)


def group_miou(
    per_image_cm: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int | None = None,
    *,
    include_background: bool = True,
) -> torch.Tensor:
    """mIoU of each group: ``per_image_cm [N, C, C]``, ``group_ids [N]`` -> float64 ``[G]`` (NaN if empty)."""
    return _miou(group_confusion(per_image_cm, group_ids, num_groups), include_background)


@dataclass(frozen=True)
class GroupFairness:
    """Fairness summary of one attribute.

    Attributes:
        group_names: one name per group (``["absent", "present"]`` for a boolean attribute).
        miou: float64 ``[G]`` group mIoU (NaN for empty groups).
        counts: int64 ``[G]`` number of images per group.
        variance: population variance of ``miou`` over populated groups (NaN if none).
        max_gap: best minus worst populated-group mIoU.
        worst_group: name of the populated group with the lowest mIoU (None if none).
        worst_miou: that group's mIoU.
    """

    group_names: list[str]
    miou: torch.Tensor
    counts: torch.Tensor
    variance: float
    max_gap: float
    worst_group: str | None
    worst_miou: float

    def as_dict(self) -> dict[str, object]:
        """Plain-Python view for logging."""
        return {
            "group_names": list(self.group_names),
            "miou": self.miou.tolist(),
            "counts": self.counts.tolist(),
            "variance": self.variance,
            "max_gap": self.max_gap,
            "worst_group": self.worst_group,
            "worst_miou": self.worst_miou,
        }


def _summarise(group_names: list[str], miou: torch.Tensor, counts: torch.Tensor) -> GroupFairness:
    populated = (counts > 0) & ~torch.isnan(miou)
    vals = miou[populated]
    if vals.numel() == 0:
        return GroupFairness(group_names, miou, counts, float("nan"), float("nan"), None, float("nan"))
    variance = float(((vals - vals.mean()) ** 2).mean())
    idx = torch.nonzero(populated).flatten()
    worst = int(idx[torch.argmin(vals)])
    return GroupFairness(
        group_names=group_names,
        miou=miou,
        counts=counts,
        variance=variance,
        max_gap=float(vals.max() - vals.min()),
        worst_group=group_names[worst],
        worst_miou=float(miou[worst]),
    )


def group_fairness(
    per_image_cm: torch.Tensor,
    groups: torch.Tensor | Mapping[str, torch.Tensor],
    names: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    *,
    include_background: bool = True,
) -> dict[str, GroupFairness]:
    """Per-attribute group mIoU, variance across groups, max gap and worst group.

    Args:
        per_image_cm: int ``[N, C, C]`` per-image confusion matrices.
        groups: either a boolean matrix ``[N, A]`` (e.g. the 40 CelebA attributes; each attribute gives the
            groups ``absent`` / ``present``) or a mapping ``name -> LongTensor [N]`` of categorical group ids
            (negative = unknown, skipped).
        names: for a boolean matrix, the ``A`` attribute names (default ``attr_0`` ...); for a mapping,
            optionally ``name -> category names`` (default ``"0"``, ``"1"`` ...).
        include_background: whether class 0 enters each group's mIoU.

    Returns:
        ``{attribute name: GroupFairness}``.
    """
    _check_per_image_cm(per_image_cm)
    n, c, _ = per_image_cm.shape
    result: dict[str, GroupFairness] = {}
    if isinstance(groups, torch.Tensor):
        if groups.dtype != torch.bool or groups.dim() != 2 or groups.shape[0] != n:
            raise ValueError(
                f"groups must be a BoolTensor [N, A] with N={n} (or a dict of LongTensor [N]), "
                f"got dtype {groups.dtype} and shape {tuple(groups.shape)}"
            )
        a = groups.shape[1]
        if names is None:
            attr_names = [f"attr_{i}" for i in range(a)]
        else:
            if isinstance(names, Mapping) or len(names) != a:
                raise ValueError(f"names must be a sequence of {a} attribute names, got {names!r}")
            attr_names = [str(x) for x in names]
        flat = per_image_cm.reshape(n, c * c).to(torch.float64)
        g = groups.to(device=flat.device, dtype=torch.float64)
        present_cm = (g.T @ flat).reshape(a, c, c)  # exact: counts stay far below 2**53
        total_cm = flat.sum(dim=0).reshape(1, c, c)
        both = torch.stack([total_cm.expand(a, c, c) - present_cm, present_cm], dim=1)  # [A, 2, C, C]
        miou = _miou(both, include_background)
        present_counts = groups.sum(dim=0).to(torch.int64).cpu()
        for i, name in enumerate(attr_names):
            counts = torch.stack([n - present_counts[i], present_counts[i]])
            result[name] = _summarise(["absent", "present"], miou[i].cpu(), counts)
        return result
    if not isinstance(groups, Mapping):
        raise ValueError(
            f"groups must be a BoolTensor [N, A] or a dict of LongTensor [N], got {type(groups).__name__}"
        )
    for attr, ids in groups.items():
        gcm = group_confusion(per_image_cm, ids)
        g_count = gcm.shape[0]
        if names is not None and isinstance(names, Mapping) and attr in names:
            cat_names = [str(x) for x in names[attr]]
            if len(cat_names) < g_count:
                raise ValueError(f"names[{attr!r}] has {len(cat_names)} entries; group ids need {g_count}")
            if len(cat_names) > g_count:
                gcm = torch.cat([gcm, gcm.new_zeros(len(cat_names) - g_count, c, c)])
        else:
            cat_names = [str(i) for i in range(g_count)]
        ids_t = ids.to(torch.int64).cpu()
        counts = torch.bincount(ids_t[ids_t >= 0], minlength=len(cat_names))
        result[str(attr)] = _summarise(cat_names, _miou(gcm, include_background).cpu(), counts)
    return result
