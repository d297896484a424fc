"""The three objectives of the multi-objective parser, their weighted sum, and their global-batch semantics.

Notation: logits ``z [B, C, H, W]``, ``p = softmax(z)``, one-hot target ``y``; soft intersection
``I = sum p y`` and union ``U = sum (p + y - p y)`` over pixels (and over the images of a set). A class
counts in a soft mIoU where the TARGET has it (in the image, resp. in the group's images); see
:mod:`fp_metrics.soft`.

* ``L_acc``: multiclass soft Dice, the formula of ``smp.losses.DiceLoss(mode="multiclass",
  from_logits=True)`` (smooth 0, eps 1e-7): per class ``c`` over the batch and the pixels,
  ``d_c = I_c / max((P_c + T_c) / 2, eps)`` with ``P_c = sum p``, ``T_c = sum y``, and
  ``L_acc = (1 / C) sum_c [T_c > 0] (1 - d_c)`` (a class absent from the batch's target adds 0 but still
  counts in ``1 / C``). Our own implementation (:func:`dice_loss`) so that ``(I, P, T)`` can be summed over
  ranks; equal to smp's value (tested).
* ``L_rob = -(1 / |S|) sum_{b in S} softmIoU_b(p~, y)`` over the perturbed images ``S``:

  - ``"output"`` (default): every pixel's logit vector is standardised over the classes,
    ``z^ = (z - mean_c z) / sqrt(var_c z + eps^2)`` (population variance, ``eps = 1e-3``, in the graph),
    then ``p~ = softmax((z^ + noise_std * e) / temperature)``, ``e ~ N(0, 1)`` per logit. ``z^`` does not
    change when ``z`` is multiplied by a positive number (up to the ``eps`` floor), so the model cannot
    lower the loss by inflating its logits: only the margins in units of the pixel's logit spread count.
  - ``"output_literal"``: the paper's Algorithm 1 as written, ``p~ = softmax(z + noise_std * e)``.
    Weakness: the noise has a fixed scale while the logits do not, so multiplying the logits by ``k``
    shrinks the noise by ``k`` in effect; a model lowers this loss by inflating its logits without
    changing a single prediction (tested: x20 on a fixed model, same argmax, takes the loss from -0.11 to
    -0.55 while the default mode's moves by < 1e-5).
  - ``"input"``: a subset ``S`` of the images is perturbed with
    :func:`fp_parsing.perturbations.random_perturb` and passed through the model once more, with the
    BatchNorm running statistics frozen (:func:`frozen_batchnorm_stats`): the extra forward normalises
    with its own batch statistics, as train mode does, but leaves the running mean / var and
    ``num_batches_tracked`` exactly as the clean forward left them, so the statistics used at evaluation
    only ever see clean training images (a concatenated clean + perturbed forward would mix perturbed
    images into both the running statistics and the clean forward's normalisation).

* ``L_fair``: per grouping ``a`` (a column of ``groups [B, A]``), the soft mIoU of every group
  ``m_g = mean_{c: T_gc > 0} I_gc / max(U_gc, 1e-6)`` from the group's summed ``I, U, T``, over the
  groups ``P_a`` that have images; then the population variance ``(1 / |P_a|) sum_g (m_g - mean_P m)^2``
  (``"variance"``) or the mean shortfall from the best group ``(1 / |P_a|) sum_g relu(sg[max_P m] - m_g)``
  (``"shortfall"``, ``sg`` = stop-gradient). Averaged over the groupings with ``|P_a| >= 2``; exactly 0
  (with a graph) when there is none.

Total: ``alpha * L_acc + beta * L_rob + gamma * L_fair`` (:func:`combine`).

Global batch under ``torch.distributed``: every term is a function of sums over images (``I, P, T`` per class
for Dice; the sum of per-image soft mIoU and the image count for robustness; ``I, U, T`` per group and class
for fairness), so :class:`ParsingObjectives` sums this rank's statistics over the ranks with one
differentiable ``all_reduce`` per call and every rank gets the value of the global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fp_metrics import soft_intersection_union, soft_miou
from fp_parsing.distributed import BatchSlice, distributed_world, frozen_batchnorm_stats, global_sum
from fp_parsing.perturbations import PERTURBATIONS, random_perturb

__all__ = [
    "FAIRNESS_KINDS",
    "OBJECTIVE_MINIMA",
    "ROBUSTNESS_MODES",
    "ParsingObjectives",
    "combine",
    "dice_loss",
    "group_miou_per_grouping",
    "group_shortfall_loss",
    "group_variance_loss",
    "one_hot_masks",
    "soft_miou_loss",
    "standardise_logits",
]

ROBUSTNESS_MODES = ("output", "output_literal", "input")
FAIRNESS_KINDS = ("variance", "shortfall")
OBJECTIVE_MINIMA: dict[str, float] = {"accuracy": 0.0, "robustness": -1.0, "fairness": 0.0}
"""The infimum of each term, for ``log(L - min)`` losses: ``L_acc >= 0`` (0 at a perfect prediction),
``L_fair >= 0`` (either kind; 0 when all groups score the same), ``L_rob >= -1``.

With the present-class rule (only classes in the target count) ``-1`` is the true infimum of ``L_rob``, and
it is attained: a prediction with all mass on the true classes scores soft mIoU exactly 1 (softmax outputs
approach it as their margins grow, in ``"input"`` and ``"output_literal"`` mode; before, with every class
counted, ``L_rob`` could not go below ``-(present classes) / C``). In the default ``"output"`` mode with
``noise_std > 0`` the standardised margin is bounded (at most ``C / sqrt(C - 1)``, 4.47 for 19 classes), so
the attainable value stays a little above -1 (about -0.966 for a one-hot-shaped prediction with 19 classes,
``noise_std = 1``, ``temperature = 0.25``); ``L - min`` then has a small positive floor, which a log-loss
tolerates (it never reaches ``log 0``).
"""

DICE_EPS = 1e-7  # smp DiceLoss's eps (its smooth is 0)
IOU_EPS = 1e-6  # fp_metrics.soft's eps
STD_EPS = 1e-3  # the floor of the per-pixel logit std in "output" mode


# -------------------------------------------------------------------------------------------------- building
def one_hot_masks(masks: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``masks [B, H, W]`` int64 class ids in ``[0, num_classes)`` -> one-hot ``[B, num_classes, H, W]``."""
    if masks.dim() != 3 or masks.dtype.is_floating_point:
        raise ValueError(f"masks must be an integer tensor [B, H, W], got {tuple(masks.shape)} {masks.dtype}")
    batch, height, width = masks.shape
    target = torch.zeros((batch, num_classes, height, width), dtype=dtype, device=masks.device)
    return target.scatter_(1, masks.long().unsqueeze(1), 1.0)


def standardise_logits(logits: torch.Tensor, eps: float = STD_EPS) -> torch.Tensor:
    """Per pixel over the classes ``(z - mean z) / sqrt(var z + eps^2)``: ``[B, C, H, W]`` -> same.

    Invariant to ``z -> k z + b`` (``k > 0``, ``b`` per pixel) wherever the std is well above ``eps``. Kept in
    the graph on purpose: the standardised value is then a function of the direction of the centred logit
    vector only, and its gradient is orthogonal to that vector, so no loss built on it can reward inflating
    the logits (with the std detached the value would still be invariant but the gradient would push the
    scale up for nothing). The price: gradients scale as ``1 / std`` (bounded by ``1 / eps``).
    """
    centred = logits - logits.mean(dim=1, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(dim=1, keepdim=True) + eps * eps)


def _dice_statistics(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``[3, C]``: ``I_c, P_c, T_c`` summed over the images and pixels of ``probs, target [B, C, H, W]``."""
    dims = (0, *range(2, probs.dim()))
    return torch.stack([(probs * target).sum(dims), probs.sum(dims), target.sum(dims)])


def _dice_from_statistics(stats: torch.Tensor, eps: float = DICE_EPS) -> torch.Tensor:
    """smp's multiclass Dice loss from ``[3, C]`` (``I, P, T``) -> scalar."""
    inter, pred, target = stats
    score = inter / (0.5 * (pred + target)).clamp_min(eps)
    return ((1.0 - score) * (target > 0).to(score.dtype)).mean()


def dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``smp.losses.DiceLoss(mode="multiclass", from_logits=True)(logits, masks)`` by its formula (this
    process's batch only): ``logits [B, C, H, W]``, ``masks [B, H, W]`` int -> scalar in ``[0, 1]``."""
    probs = logits.float().softmax(dim=1)
    return _dice_from_statistics(_dice_statistics(probs, one_hot_masks(masks, logits.shape[1], probs.dtype)))


def soft_miou_loss(probs: torch.Tensor, target_onehot: torch.Tensor) -> torch.Tensor:
    """``-mean_b soft_mIoU_b`` (classes present in each target image): ``[B, C, H, W]`` x2 -> scalar in
    ``[-1, 0]``."""
    return -soft_miou(probs, target_onehot).mean()


def _check_groups(groups: torch.Tensor, batch: int, num_groups: Sequence[int] | None) -> list[int]:
    if groups.dim() != 2 or groups.shape[0] != batch:
        raise ValueError(f"groups must be an integer tensor [B, A] with B={batch}, got {tuple(groups.shape)}")
    if groups.dtype.is_floating_point or groups.dtype == torch.bool:
        raise ValueError(f"groups must hold integer group ids, got dtype {groups.dtype}")
    if num_groups is None:
        total = int(groups.max()) + 1 if groups.numel() else 0
        return [max(total, 1)] * groups.shape[1]
    if len(num_groups) != groups.shape[1]:
        raise ValueError(f"num_groups has {len(num_groups)} entries for {groups.shape[1]} groupings")
    for a, n in enumerate(num_groups):
        if groups.shape[0] and int(groups[:, a].max()) >= int(n):
            raise ValueError(
                f"groups[:, {a}] contains {int(groups[:, a].max())}; expected ids < num_groups={int(n)}"
            )
    return [int(n) for n in num_groups]


def _group_statistics(
    probs: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, num_groups: Sequence[int]
) -> torch.Tensor:
    """``[sum_a G_a, 3, C]``: ``I, U, T`` summed over each group's images, the groupings stacked in order."""
    inter, union = soft_intersection_union(probs, target)
    mass = target.sum(dim=tuple(range(2, target.dim()))).to(inter.dtype)
    per_image = torch.stack([inter, union, mass], dim=1)  # [B, 3, C]
    ids = groups.to(probs.device).long()
    parts = []
    for a, n in enumerate(num_groups):
        keep = ids[:, a] >= 0
        parts.append(
            per_image.new_zeros((n, *per_image.shape[1:])).index_add(0, ids[keep, a], per_image[keep])
        )
    if not parts:
        return per_image.new_zeros((0, *per_image.shape[1:]))
    return torch.cat(parts)


def _group_miou_from_statistics(stats: torch.Tensor, eps: float = IOU_EPS) -> torch.Tensor:
    """``[G, 3, C]`` (``I, U, T``) -> soft mIoU ``[G]`` over each group's target classes; NaN if none."""
    inter, union, mass = stats.unbind(1)
    present = (mass > 0).to(inter.dtype)
    count = present.sum(dim=-1)
    mean = (inter / union.clamp_min(eps) * present).sum(dim=-1) / count.clamp_min(1.0)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan")))


def group_miou_per_grouping(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    groups: torch.Tensor,
    num_groups: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Soft mIoU of every group, per grouping: ``groups [B, A]`` -> ``A`` tensors ``[G_a]`` (NaN = empty).

    A group's mean runs over the classes its images' targets contain. ``num_groups[a]`` is the number of
    groups of grouping ``a`` (ids beyond it are an error); without it, ``max id + 1`` over the whole tensor.
    """
    sizes = _check_groups(groups, probs.shape[0], num_groups)
    miou = _group_miou_from_statistics(_group_statistics(probs, target_onehot, groups, sizes))
    return list(miou.split(sizes)) if sizes else []


# ------------------------------------------------------------------------------------------------ fairness
def _populated(miou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mask, values with NaN replaced by 0, count)`` for one grouping's ``[G]`` group mIoU."""
    mask = ~torch.isnan(miou)
    values = torch.where(mask, miou, torch.zeros_like(miou))  # NaN-free before any arithmetic (and backward)
    return mask, values, mask.sum()


def _variance_term(miou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask, values, count = _populated(miou)
    n = count.clamp_min(1).to(values.dtype)
    mean = values.sum() / n
    return torch.where(mask, (values - mean) ** 2, torch.zeros_like(values)).sum() / n, count


def _shortfall_term(miou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask, values, count = _populated(miou)
    best = torch.where(mask, values, torch.full_like(values, -1.0)).max().detach()
    shortfall = torch.where(mask, F.relu(best - values), torch.zeros_like(values))
    return shortfall.sum() / count.clamp_min(1).to(values.dtype), count


_FAIRNESS_TERMS: dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] = {
    "variance": _variance_term,
    "shortfall": _shortfall_term,
}


def _fairness_from_group_miou(mious: Sequence[torch.Tensor], kind: str, anchor: torch.Tensor) -> torch.Tensor:
    """Mean of the groupings' terms over those with >= 2 populated groups; 0 (on ``anchor``'s graph) if
    none."""
    total = anchor.sum() * 0.0
    used = torch.zeros((), device=anchor.device)
    for miou in mious:
        term, count = _FAIRNESS_TERMS[kind](miou)
        contributes = count >= 2
        total = total + torch.where(contributes, term, torch.zeros_like(term))
        used = used + contributes.to(used.dtype)
    return total / used.clamp_min(1.0)


def group_variance_loss(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    groups: torch.Tensor,
    num_groups: Sequence[int] | None = None,
) -> torch.Tensor:
    """Mean over groupings of the population variance of the populated groups' soft mIoU -> scalar >= 0.

    ``probs, target_onehot [B, C, H, W]``, ``groups [B, A]`` (-1 = unknown). This process's batch only.
    """
    mious = group_miou_per_grouping(probs, target_onehot, groups, num_groups)
    return _fairness_from_group_miou(mious, "variance", probs)


def group_shortfall_loss(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    groups: torch.Tensor,
    num_groups: Sequence[int] | None = None,
) -> torch.Tensor:
    """Mean over groupings of ``(1/|P|) sum_g relu(sg[max_P m] - m_g)`` (the best group detached) -> scalar.

    ``probs, target_onehot [B, C, H, W]``, ``groups [B, A]`` (-1 = unknown). This process's batch only.
    """
    mious = group_miou_per_grouping(probs, target_onehot, groups, num_groups)
    return _fairness_from_group_miou(mious, "shortfall", probs)


def combine(terms: Mapping[str, torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """``alpha * L_acc + beta * L_rob + gamma * L_fair`` from :class:`ParsingObjectives`' terms."""
    if len(weights) != 3:
        raise ValueError(f"weights must be (alpha, beta, gamma), got {weights!r}")
    alpha, beta, gamma = (float(w) for w in weights)
    total = alpha * terms["accuracy"]
    if beta != 0.0:
        total = total + beta * terms["robustness"]
    if gamma != 0.0:
        total = total + gamma * terms["fairness"]
    return total


# ---------------------------------------------------------------------------------------------- objectives
@dataclass
class _Local:
    """One call's local statistics: the flat tensor to sum over ranks and how to cut it up."""

    flat: torch.Tensor
    sizes: list[int]
    group_sizes: list[int]
    need: dict[str, bool]
    logits: torch.Tensor


class ParsingObjectives:
    """Computes ``L_acc``, ``L_rob`` and ``L_fair`` of the global batch from one (or, in input mode, two)
    forwards of this rank's images.

    Args:
        num_classes: ``C``.
        robustness_mode: ``"output"`` (standardised logits + noise, no extra forward; the default),
            ``"output_literal"`` (the paper's raw-logit noise, beaten by inflating the logits) or ``"input"``
            (perturbed images, one extra forward on ``input_share`` of the batch, BatchNorm stats frozen).
        noise_std: std of the Gaussian noise on the (standardised, resp. raw) logits in the output modes.
        input_share: share of every block of images perturbed in input mode (at least one image per block).
        perturbations: kinds drawn from in input mode.
        max_severity: severities are uniform in ``[0, max_severity]`` in input mode.
        fairness: ``"variance"`` or ``"shortfall"``.
        num_groups: groups per grouping (``GroupingSpec.num_groups``); checks the ids and keeps the per-group
            tensors the same size every step (default: ``max id + 1`` of each batch). Required when the
            terms are summed over ranks (the ranks' statistics must have the same shape).
        temperature: ``T`` of ``"output"`` mode, ``softmax((z^ + noise_std e) / T)``.
        distributed: sum the statistics over the ranks of the default process group (``None``: whenever
            ``torch.distributed`` is initialised with world size > 1; ``False``: this process's batch only).

    Distributed semantics: rank ``r`` passes its own images; the statistics every term is made of are summed
    over the ranks by :func:`global_sum` (one ``all_reduce`` of ``3C + 2 + 3C sum_a G_a`` floats per call), so
    the returned terms are those of the concatenated global batch, the same on every rank. Backward through
    the all-reduce gives each rank ``W`` times its local share of the global gradient; DDP's averaging of the
    ranks' gradients then yields exactly the global-batch gradient (see :func:`global_sum`). Code that
    combines per-objective gradients itself must likewise average them over the ranks before using them.
    """

    def __init__(
        self,
        num_classes: int = 19,
        robustness_mode: str = "output",
        noise_std: float = 1.0,
        input_share: float = 0.25,
        perturbations: Sequence[str] = PERTURBATIONS,
        max_severity: float = 0.8,
        fairness: str = "variance",
        num_groups: Sequence[int] | None = None,
        *,
        temperature: float = 0.25,
        distributed: bool | None = None,
    ) -> None:
        if robustness_mode not in ROBUSTNESS_MODES:
            raise ValueError(
                f"unknown robustness_mode {robustness_mode!r}; expected one of {list(ROBUSTNESS_MODES)}"
            )
        if fairness not in FAIRNESS_KINDS:
            raise ValueError(f"unknown fairness {fairness!r}; expected one of {list(FAIRNESS_KINDS)}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 < input_share <= 1.0:
            raise ValueError(f"input_share must lie in (0, 1], got {input_share}")
        if not 0.0 <= max_severity <= 1.0:
            raise ValueError(f"max_severity must lie in [0, 1], got {max_severity}")
        unknown = [k for k in perturbations if k not in PERTURBATIONS]
        if unknown or not perturbations:
            raise ValueError(
                f"perturbations must be a non-empty subset of {list(PERTURBATIONS)}, got {list(perturbations)}"
            )
        self.num_classes = num_classes
        self.robustness_mode = robustness_mode
        self.noise_std = float(noise_std)
        self.input_share = float(input_share)
        self.perturbations = tuple(perturbations)
        self.max_severity = float(max_severity)
        self.fairness = fairness
        self.num_groups = None if num_groups is None else [int(n) for n in num_groups]
        self.temperature = float(temperature)
        self.distributed = distributed

    def _world(self) -> tuple[int, int]:
        return (0, 1) if self.distributed is False else distributed_world()

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        groups: torch.Tensor,
        generator: torch.Generator | None = None,
        need: Mapping[str, bool] | None = None,
        *,
        batch_slice: BatchSlice | None = None,
    ) -> dict[str, torch.Tensor]:
        """The terms of the global batch.

        Args:
            model: ``images [B, 3, H, W] -> logits [B, C, H, W]`` (the DDP-wrapped model is fine).
            images: ``[B, 3, H, W]`` in [0, 1], this rank's share of the global batch.
            masks: ``[B, H, W]`` int64 class ids.
            groups: ``[B, A]`` int64 group ids (-1 = unknown), from :func:`fp_parsing.groups.group_ids`.
            generator: the source of the random draws, seeded the same on every rank (on the images' device
                ideally). It draws one seed per image of the GLOBAL batch (and one selection key per image in
                input mode) and each image's noise / perturbation comes from a generator seeded with its
                own seed, so the ranks together draw exactly what one process would on the whole batch.
            need: ``{"robustness": bool, "fairness": bool}``; a term not needed is a constant 0 without a
                graph and costs nothing (default: both needed). Must be the same on every rank.
            batch_slice: where these images sit in the global batch (default: ``BatchSlice(rank * B,
                world * B, B)``, i.e. equal shards in rank order; ``BatchSlice(0, B, B)`` on one process).

        Returns:
            ``{"accuracy", "robustness", "fairness"}`` scalar tensors (float32, one graph, global-batch
            values) and ``"logits"`` ``[B, C, H, W]`` of this rank's clean forward.
        """
        local = self._local_statistics(model, images, masks, groups, generator, need, batch_slice)
        world = self._world()[1]
        flat = global_sum(local.flat) if world > 1 else local.flat
        return self._terms(flat, local)

    # The two halves of __call__ (summing the flat statistics of several calls = one call on their union).
    def _local_statistics(
        self,
        model: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        groups: torch.Tensor,
        generator: torch.Generator | None,
        need: Mapping[str, bool] | None,
        batch_slice: BatchSlice | None,
    ) -> _Local:
        need = {"robustness": True, "fairness": True, **(need or {})}
        unknown = sorted(set(need) - {"robustness", "fairness"})
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in need; expected robustness and/or fairness")
        if images.dim() != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(
                f"images must be [B, 3, H, W] and masks [B, H, W] of the same B, H, W; got "
                f"{tuple(images.shape)} and {tuple(masks.shape)}"
            )
        batch = images.shape[0]
        rank, world = self._world()
        if world > 1 and self.num_groups is None and need["fairness"]:
            raise ValueError("num_groups is required when the objectives are summed over ranks")
        where = batch_slice if batch_slice is not None else BatchSlice(rank * batch, world * batch, batch)
        where.check(batch)
        logits = model(images)
        if logits.shape[1] != self.num_classes:
            raise ValueError(
                f"the model gives {logits.shape[1]} classes, expected num_classes={self.num_classes}"
            )
        logits32 = logits.float()
        probs = logits32.softmax(dim=1)
        target = one_hot_masks(masks, self.num_classes, logits32.dtype)
        parts = [_dice_statistics(probs, target).flatten()]
        if need["robustness"]:
            parts.append(self._robustness_statistics(model, images, logits32, target, generator, where))
        group_sizes: list[int] = []
        if need["fairness"]:
            group_sizes = _check_groups(groups, batch, self.num_groups)
            parts.append(_group_statistics(probs, target, groups, group_sizes).flatten())
        sizes = [part.numel() for part in parts]
        return _Local(torch.cat(parts), sizes, group_sizes, need, logits)

    def _terms(self, flat: torch.Tensor, local: _Local) -> dict[str, torch.Tensor]:
        pieces = list(flat.split(local.sizes))
        dice = pieces.pop(0).view(3, self.num_classes)
        terms: dict[str, torch.Tensor] = {"accuracy": _dice_from_statistics(dice), "logits": local.logits}
        zero = flat.new_zeros(()).detach()
        terms["robustness"] = zero
        if local.need["robustness"]:
            total, count = pieces.pop(0).unbind()
            terms["robustness"] = -total / count.clamp_min(1.0)
        terms["fairness"] = zero
        if local.need["fairness"]:
            stats = pieces.pop(0).view(-1, 3, self.num_classes)
            mious = _group_miou_from_statistics(stats).split(local.group_sizes) if local.group_sizes else []
            terms["fairness"] = _fairness_from_group_miou(mious, self.fairness, flat)
        return terms

    def _robustness_statistics(
        self,
        model: nn.Module,
        images: torch.Tensor,
        logits: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator | None,
        where: BatchSlice,
    ) -> torch.Tensor:
        """``[2]``: the sum of the perturbed images' soft mIoU and their number."""
        batch = images.shape[0]
        rows = 2 if self.robustness_mode == "input" else 1
        if generator is None:
            draws = torch.randint(0, 2**62, (rows, where.global_size))
        else:
            draws = torch.randint(
                0, 2**62, (rows, where.global_size), generator=generator, device=generator.device
            )
        draws = draws.cpu()  # one small host copy: the per-image seeds are Python ints
        device = generator.device if generator is not None else images.device
        seeds = draws[0, where.offset : where.offset + batch].tolist()
        if self.robustness_mode == "input":
            blocks = draws[1].view(-1, where.block)[where.offset // where.block :][: batch // where.block]
            count = min(where.block, max(1, round(self.input_share * where.block)))
            chosen = (
                blocks.argsort(dim=1)[:, :count] + torch.arange(blocks.shape[0]).unsqueeze(1) * where.block
            )
            chosen = chosen.flatten().sort().values.tolist()
            perturbed = torch.cat(
                [
                    random_perturb(
                        images[i : i + 1],
                        self.perturbations,
                        self.max_severity,
                        torch.Generator(device=device).manual_seed(seeds[i]),
                    )
                    for i in chosen
                ]
            )
            with frozen_batchnorm_stats(model):
                perturbed_logits = model(perturbed).float()
            miou = soft_miou(perturbed_logits.softmax(dim=1), target[chosen])
        else:
            shape = logits.shape[1:]
            noise = torch.stack(
                [
                    torch.randn(shape, generator=torch.Generator(device=device).manual_seed(s), device=device)
                    for s in seeds
                ]
            ).to(logits.device)
            if self.robustness_mode == "output":
                noisy = (standardise_logits(logits) + self.noise_std * noise) / self.temperature
            else:
                noisy = logits + self.noise_std * noise
            miou = soft_miou(noisy.softmax(dim=1), target)
        valid = ~torch.isnan(miou)
        total = torch.where(valid, miou, torch.zeros_like(miou)).sum()
        return torch.stack([total, valid.sum().to(total.dtype)])
