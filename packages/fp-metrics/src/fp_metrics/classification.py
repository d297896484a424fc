"""Classification fairness: per-group accuracy, mean of group accuracies, disparate impact, mean ± s.e."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "MeanStderr",
    "disparate_impact_ratio",
    "group_accuracy",
    "mean_group_accuracy",
    "mean_stderr",
]


def _as_1d(x: torch.Tensor | np.ndarray | Sequence, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional [N], got shape {tuple(t.shape)}")
    return t.detach().cpu()


def group_accuracy(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    group_ids: torch.Tensor | np.ndarray,
    num_groups: int | None = None,
) -> torch.Tensor:
    """Accuracy within each group: ``pred, target, group_ids [N]`` -> float64 ``[G]`` (NaN for empty groups).

    Negative group ids mark samples that belong to no group.
    """
    pred, target, ids = _as_1d(pred, "pred"), _as_1d(target, "target"), _as_1d(group_ids, "group_ids")
    if not pred.shape == target.shape == ids.shape:
        raise ValueError(
            f"pred, target and group_ids must have the same length, got {pred.numel()}, {target.numel()}, "
            f"{ids.numel()}"
        )
    if ids.dtype.is_floating_point:
        raise ValueError(f"group_ids must hold integer group ids, got dtype {ids.dtype}")
    ids = ids.long()
    max_id = int(ids.max()) if ids.numel() else -1
    if num_groups is None:
        num_groups = max(max_id + 1, 0)
    if max_id >= num_groups:
        raise ValueError(f"group_ids contains {max_id}; expected ids in [0, num_groups={num_groups})")
    keep = ids >= 0
    correct = (pred == target)[keep].to(torch.float64)
    hits = torch.zeros(num_groups, dtype=torch.float64).index_add(0, ids[keep], correct)
    counts = torch.bincount(ids[keep], minlength=num_groups).to(torch.float64)
    return torch.where(counts > 0, hits / counts.clamp_min(1), torch.full_like(hits, float("nan")))


def mean_group_accuracy(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    group_ids: torch.Tensor | np.ndarray,
    num_groups: int | None = None,
) -> float:
    """Unweighted mean of the populated groups' accuracies (each group counts equally): ``[N]`` -> float.

    Different from the overall accuracy when groups differ in size; NaN when no group is populated.
    """
    acc = group_accuracy(pred, target, group_ids, num_groups)
    return float(torch.nanmean(acc))


def disparate_impact_ratio(
    values: torch.Tensor | np.ndarray | Sequence[float],
    minority: int | None = None,
    majority: int | None = None,
) -> float:
    """Disparate impact ratio of per-group scores ``values [G]`` (accuracy, selection rate ...).

    With ``minority`` and ``majority`` group indices: ``values[minority] / values[majority]``.
    Without them: worst / best over the non-NaN groups (``min / max``), 1.0 meaning perfect parity.
    """
    v = _as_1d(values, "values").to(torch.float64)
    if (minority is None) != (majority is None):
        raise ValueError("give both minority and majority group indices, or neither")
    if minority is not None and majority is not None:
        for label, idx in (("minority", minority), ("majority", majority)):
            if not -v.numel() <= idx < v.numel():
                raise ValueError(f"{label}={idx} is out of range for {v.numel()} groups")
        num, den = float(v[minority]), float(v[majority])
        if math.isnan(num) or math.isnan(den):
            raise ValueError(f"group score is NaN (empty group?): minority={num}, majority={den}")
    else:
        finite = v[~torch.isnan(v)]
        if finite.numel() == 0:
            raise ValueError("values has no non-NaN group score")
        num, den = float(finite.min()), float(finite.max())
    if num < 0 or den < 0:
        raise ValueError(f"group scores must be non-negative, got {num} and {den}")
    if den == 0:
        raise ValueError("the reference (majority / best) group score is 0; the ratio is undefined")
    return num / den


class MeanStderr(NamedTuple):
    """Mean and standard error of the mean (``std(ddof=1) / sqrt(n)``) over ``n`` repeated trials."""

    mean: float
    stderr: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.stderr:.4f} (n={self.n})"


def mean_stderr(values: torch.Tensor | np.ndarray | Sequence[float]) -> MeanStderr:
    """Mean ± standard error over repeated trials ``values [T]``; the error is NaN when ``T == 1``."""
    v = _as_1d(values, "values").to(torch.float64)
    n = v.numel()
    if n == 0:
        raise ValueError("values is empty; expected at least one trial")
    if torch.isnan(v).any():
        raise ValueError("values contains NaN; drop failed trials before aggregating")
    mean = float(v.mean())
    if n == 1:
        return MeanStderr(mean, float("nan"), 1)
    return MeanStderr(mean, float(v.std(correction=1)) / math.sqrt(n), n)
