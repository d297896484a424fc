"""The three objectives of the multi-objective parser and their weighted sum.

* ``L_acc``: multiclass Dice loss on the logits (``smp.losses.DiceLoss``).
* ``L_rob = -mean_b softIoU_b``: minus the soft mIoU (:func:`fp_metrics.soft_miou`, mean over the images)
  of predictions under perturbation. ``"output"`` mode (the paper's Algorithm 1): Gaussian noise of std
  ``noise_std`` added to the logits of the existing forward. ``"input"`` mode: a share of the batch is
  perturbed with :func:`fp_parsing.perturbations.random_perturb` and passed through the model (one more
  forward).
* ``L_fair``: per grouping ``a`` (a column of ``groups [B, A]``), the per-group soft mIoU ``m_g``
  (:func:`fp_metrics.soft_group_miou`) over the groups ``P_a`` populated in the batch, then either the
  population variance ``(1 / |P_a|) sum_g (m_g - mean_P m)^2`` (``"variance"``) or the mean shortfall from the
  best group ``(1 / |P_a|) sum_g relu(sg[max_P m] - m_g)`` (``"shortfall"``, the alternative fairness; ``sg``
  = stop-gradient: only the groups behind are pushed up, the best group is not pulled down). Averaged over
  the groupings with ``|P_a| >= 2``; exactly 0 (with a graph) when there is none.

Total: ``alpha * L_acc + beta * L_rob + gamma * L_fair`` (:func:`combine`).

Each term's infimum (:data:`OBJECTIVE_MINIMA`): ``L_acc >= 0``, ``L_rob >= -1``, ``L_fair >= 0`` (either kind);
``L - min`` is the term's distance from perfect, which is what a log-loss (``log(L - min)``) needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fp_metrics import soft_group_miou, soft_miou
from fp_parsing.perturbations import PERTURBATIONS, random_perturb

__all__ = [
    "FAIRNESS_KINDS",
    "OBJECTIVE_MINIMA",
    "ROBUSTNESS_MODES",
    "ParsingObjectives",
    "combine",
    "group_miou_per_grouping",
    "group_shortfall_loss",
    "group_variance_loss",
    "one_hot_masks",
    "soft_miou_loss",
]

ROBUSTNESS_MODES = ("output", "input")
FAIRNESS_KINDS = ("variance", "shortfall")
# The infimum of each term: Dice loss and the fairness terms are >= 0, minus a soft mIoU is >= -1.
OBJECTIVE_MINIMA: dict[str, float] = {"accuracy": 0.0, "robustness": -1.0, "fairness": 0.0}


def one_hot_masks(masks: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``masks [B, H, W]`` int64 class ids in ``[0, num_classes)`` -> one-hot ``[B, num_classes, H, W]``."""
    if masks.dim() != 3 or masks.dtype.is_floating_point:
        raise ValueError(f"masks must be an integer tensor [B, H, W], got {tuple(masks.shape)} {masks.dtype}")
    batch, height, width = masks.shape
    target = torch.zeros((batch, num_classes, height, width), dtype=dtype, device=masks.device)
    return target.scatter_(1, masks.long().unsqueeze(1), 1.0)


def soft_miou_loss(probs: torch.Tensor, target_onehot: torch.Tensor) -> torch.Tensor:
    """``-mean_b soft_mIoU_b``: ``probs, target_onehot [B, C, H, W]`` -> scalar in [-1, 0]."""
    return -soft_miou(probs, target_onehot).mean()


def group_miou_per_grouping(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    groups: torch.Tensor,
    num_groups: Sequence[int] | None = None,
) -> list[torch.Tensor]:
    """Soft mIoU of every group, per grouping: ``groups [B, A]`` -> ``A`` tensors ``[G_a]`` (NaN = empty).

    ``num_groups[a]`` is the number of groups of grouping ``a`` (ids beyond it are an error); without it,
    ``max id + 1`` over the whole tensor.
    """
    if groups.dim() != 2 or groups.shape[0] != probs.shape[0]:
        raise ValueError(
            f"groups must be an integer tensor [B, A] with B={probs.shape[0]}, got {tuple(groups.shape)}"
        )
    if num_groups is None:
        total = int(groups.max()) + 1 if groups.numel() else 0
        num_groups = [max(total, 1)] * groups.shape[1]
    if len(num_groups) != groups.shape[1]:
        raise ValueError(f"num_groups has {len(num_groups)} entries for {groups.shape[1]} groupings")
    ids = groups.to(probs.device).long()
    return [
        soft_group_miou(probs, target_onehot, ids[:, a], int(num_groups[a])) for a in range(groups.shape[1])
    ]


def _populated(miou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mask, values with NaN replaced by 0, count)`` for one grouping's ``[G]`` group mIoU."""
    mask = ~torch.isnan(miou)
    values = torch.where(mask, miou, torch.zeros_like(miou))  # NaN-free before any arithmetic (and backward)
    return mask, values, mask.sum()


def _mean_over_groupings(
    per_grouping: list[tuple[torch.Tensor, torch.Tensor]], anchor: torch.Tensor
) -> torch.Tensor:
    """Mean of the terms whose grouping has >= 2 populated groups; 0 (on ``anchor``'s graph) if none."""
    total = anchor.sum() * 0.0
    used = torch.zeros((), device=anchor.device)
    for term, count in per_grouping:
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

    ``probs, target_onehot [B, C, H, W]``, ``groups [B, A]`` (-1 = unknown). No Python loop over images.
    """
    terms = []
    for miou in group_miou_per_grouping(probs, target_onehot, groups, num_groups):
        mask, values, count = _populated(miou)
        n = count.clamp_min(1).to(values.dtype)
        mean = values.sum() / n
        variance = (torch.where(mask, (values - mean) ** 2, torch.zeros_like(values))).sum() / n
        terms.append((variance, count))
    return _mean_over_groupings(terms, probs)


def group_shortfall_loss(
    probs: torch.Tensor,
    target_onehot: torch.Tensor,
    groups: torch.Tensor,
    num_groups: Sequence[int] | None = None,
) -> torch.Tensor:
    """Mean over groupings of ``(1/|P|) sum_g relu(sg[max_P m] - m_g)`` (the best group detached) -> scalar.

    ``probs, target_onehot [B, C, H, W]``, ``groups [B, A]`` (-1 = unknown).
    """
    terms = []
    for miou in group_miou_per_grouping(probs, target_onehot, groups, num_groups):
        mask, values, count = _populated(miou)
        best = torch.where(mask, values, torch.full_like(values, -1.0)).max().detach()
        shortfall = torch.where(mask, F.relu(best - values), torch.zeros_like(values))
        terms.append((shortfall.sum() / count.clamp_min(1).to(values.dtype), count))
    return _mean_over_groupings(terms, probs)


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


class ParsingObjectives:
    """Computes ``L_acc``, ``L_rob`` and ``L_fair`` for one batch from one (or, in input mode, two) forwards.

    Args:
        num_classes: ``C``.
        robustness_mode: ``"output"`` (noise on the logits, no extra forward) or ``"input"`` (perturbed
            images, one extra forward on ``input_share`` of the batch).
        noise_std: std of the Gaussian noise added to the logits in output mode.
        input_share: share of the batch perturbed in input mode (at least one image).
        perturbations: kinds drawn from in input mode.
        max_severity: severities are uniform in ``[0, max_severity]`` in input mode.
        fairness: ``"variance"`` or ``"shortfall"``.
        num_groups: groups per grouping (``GroupingSpec.num_groups``); checks the ids against it and keeps
            the per-group tensors the same size every step (default: ``max id + 1`` of each batch).
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
    ) -> None:
        if robustness_mode not in ROBUSTNESS_MODES:
            raise ValueError(
                f"unknown robustness_mode {robustness_mode!r}; expected one of {list(ROBUSTNESS_MODES)}"
            )
        if fairness not in FAIRNESS_KINDS:
            raise ValueError(f"unknown fairness {fairness!r}; expected one of {list(FAIRNESS_KINDS)}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if not 0.0 < input_share <= 1.0:
            raise ValueError(f"input_share must lie in (0, 1], got {input_share}")
        if not 0.0 <= max_severity <= 1.0:
            raise ValueError(f"max_severity must lie in [0, 1], got {max_severity}")
        unknown = [k for k in perturbations if k not in PERTURBATIONS]
        if unknown or not perturbations:
            raise ValueError(
                f"perturbations must be a non-empty subset of {list(PERTURBATIONS)}, got {list(perturbations)}"
            )
        from segmentation_models_pytorch.losses import DiceLoss

        self.num_classes = num_classes
        self.robustness_mode = robustness_mode
        self.noise_std = float(noise_std)
        self.input_share = float(input_share)
        self.perturbations = tuple(perturbations)
        self.max_severity = float(max_severity)
        self.fairness = fairness
        self.num_groups = None if num_groups is None else [int(n) for n in num_groups]
        self.dice = DiceLoss(mode="multiclass", from_logits=True)

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        groups: torch.Tensor,
        generator: torch.Generator | None = None,
        need: Mapping[str, bool] | None = None,
    ) -> dict[str, torch.Tensor]:
        """The terms of one batch.

        Args:
            model: ``images [B, 3, H, W] -> logits [B, C, H, W]``.
            images: ``[B, 3, H, W]`` in [0, 1].
            masks: ``[B, H, W]`` int64 class ids.
            groups: ``[B, A]`` int64 group ids (-1 = unknown), from :func:`fp_parsing.groups.group_ids`.
            generator: the source of the logit noise / input perturbations (on the images' device ideally).
            need: ``{"robustness": bool, "fairness": bool}``; a term not needed is a constant 0 without a
                graph and costs nothing (default: both needed).

        Returns:
            ``{"accuracy", "robustness", "fairness"}`` scalar tensors (float32, one graph) and ``"logits"``
            ``[B, C, H, W]`` of the clean forward.
        """
        need = {"robustness": True, "fairness": True, **(need or {})}
        unknown = sorted(set(need) - {"robustness", "fairness"})
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in need; expected robustness and/or fairness")
        if images.dim() != 4 or masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(
                f"images must be [B, 3, H, W] and masks [B, H, W] of the same B, H, W; got "
                f"{tuple(images.shape)} and {tuple(masks.shape)}"
            )
        logits = model(images)
        if logits.shape[1] != self.num_classes:
            raise ValueError(
                f"the model gives {logits.shape[1]} classes, expected num_classes={self.num_classes}"
            )
        logits32 = logits.float()
        terms: dict[str, torch.Tensor] = {"accuracy": self.dice(logits32, masks.long()), "logits": logits}
        zero = logits32.new_zeros(())
        target = None
        if need["robustness"] or need["fairness"]:
            target = one_hot_masks(masks, self.num_classes, logits32.dtype)
        terms["robustness"] = zero
        if need["robustness"]:
            assert target is not None
            terms["robustness"] = self._robustness(model, images, logits32, target, generator)
        terms["fairness"] = zero
        if need["fairness"]:
            assert target is not None
            probs = logits32.softmax(dim=1)
            loss = group_variance_loss if self.fairness == "variance" else group_shortfall_loss
            terms["fairness"] = loss(probs, target, groups, self.num_groups)
        return terms

    def _robustness(
        self,
        model: nn.Module,
        images: torch.Tensor,
        logits: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if self.robustness_mode == "output":
            if generator is None:
                noise = torch.randn(logits.shape, device=logits.device)
            else:
                noise = torch.randn(logits.shape, generator=generator, device=generator.device).to(
                    logits.device
                )
            return soft_miou_loss((logits + self.noise_std * noise).softmax(dim=1), target)
        batch = images.shape[0]
        count = min(batch, max(1, round(self.input_share * batch)))
        if generator is None:
            order = torch.randperm(batch, device=images.device)
        else:
            order = torch.randperm(batch, generator=generator, device=generator.device).to(images.device)
        chosen = order[:count]
        perturbed = random_perturb(images[chosen], self.perturbations, self.max_severity, generator)
        perturbed_logits = model(perturbed).float()
        return soft_miou_loss(perturbed_logits.softmax(dim=1), target[chosen])
