"""The objectives: soft = hard on one-hot inputs, fairness gradients, empty groups, forward counts, combine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fp_parsing.losses import (
    ParsingObjectives,
    combine,
    group_shortfall_loss,
    group_variance_loss,
    one_hot_masks,
    soft_miou_loss,
    standardise_logits,
)

C = 4


def _hard_miou(pred: np.ndarray, target: np.ndarray) -> float:
    """Hard mIoU of label maps (any shape), over the classes present in the target."""
    ious = []
    for c in range(C):
        p, t = pred == c, target == c
        if t.any():
            ious.append((p & t).sum() / (p | t).sum())
    return float(np.mean(ious))


def _hard_group_stats(pred: np.ndarray, target: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Reference (variance, shortfall) losses with a Python loop over groupings, groups and images."""
    variances, shortfalls = [], []
    for a in range(groups.shape[1]):
        mious = []
        for g in sorted(set(groups[:, a].tolist()) - {-1}):
            members = groups[:, a] == g
            mious.append(_hard_miou(pred[members], target[members]))  # pixels pooled over the group's images
        if len(mious) >= 2:
            m = np.array(mious)
            variances.append(float(((m - m.mean()) ** 2).mean()))
            shortfalls.append(float((m.max() - m).mean()))
    if not variances:
        return 0.0, 0.0
    return float(np.mean(variances)), float(np.mean(shortfalls))


def _random_case(seed: int, batch: int = 6, size: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, C, (batch, size, size), generator=generator)
    pred = torch.where(
        torch.rand(target.shape, generator=generator) < 0.7,
        target,
        torch.randint(0, C, target.shape, generator=generator),
    )
    groups = torch.stack(
        [
            torch.randint(0, 2, (batch,), generator=generator),
            torch.randint(-1, 3, (batch,), generator=generator),
            torch.zeros(batch, dtype=torch.long),  # one populated group: contributes nothing
        ],
        dim=1,
    )
    return pred, target, groups


@pytest.mark.parametrize("seed", range(5))
def test_soft_losses_equal_hard_metrics_on_one_hot_inputs(seed: int) -> None:
    pred, target, groups = _random_case(seed)
    probs, onehot = one_hot_masks(pred, C), one_hot_masks(target, C)
    hard_mean_miou = np.mean([_hard_miou(p.numpy(), t.numpy()) for p, t in zip(pred, target, strict=True)])
    assert float(soft_miou_loss(probs, onehot)) == pytest.approx(-hard_mean_miou, abs=1e-6)
    variance, shortfall = _hard_group_stats(pred.numpy(), target.numpy(), groups.numpy())
    assert float(group_variance_loss(probs, onehot, groups)) == pytest.approx(variance, abs=1e-6)
    assert float(group_shortfall_loss(probs, onehot, groups)) == pytest.approx(shortfall, abs=1e-6)
    assert float(group_variance_loss(probs, onehot, groups, num_groups=[2, 3, 1])) == pytest.approx(
        variance, abs=1e-6
    )


class _Fixed(nn.Module):
    """Returns fixed logits (plus 0 x the input, so the input is used) and counts its calls."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())
        self.calls: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(images.shape[0])
        return self.logits[: images.shape[0]] + 0.0 * images.mean()


def test_objectives_match_hard_metrics_through_the_whole_path() -> None:
    pred, target, groups = _random_case(11)
    model = _Fixed(60.0 * one_hot_masks(pred, C))  # softmax of these logits is one-hot in float32
    objectives = ParsingObjectives(num_classes=C, robustness_mode="output_literal", noise_std=0.0)
    terms = objectives(model, torch.rand(6, 3, 6, 6), target, groups)
    hard_mean_miou = np.mean([_hard_miou(p.numpy(), t.numpy()) for p, t in zip(pred, target, strict=True)])
    variance, _ = _hard_group_stats(pred.numpy(), target.numpy(), groups.numpy())
    assert float(terms["robustness"].detach()) == pytest.approx(-hard_mean_miou, abs=1e-6)
    assert float(terms["fairness"].detach()) == pytest.approx(variance, abs=1e-6)
    assert terms["logits"].shape == (6, C, 6, 6)
    from segmentation_models_pytorch.losses import DiceLoss

    expected_dice = DiceLoss(mode="multiclass", from_logits=True)(model.logits.detach(), target)
    assert float(terms["accuracy"].detach()) == pytest.approx(float(expected_dice), abs=1e-6)


def _two_group_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group 0 (images 0, 1) predicted confidently right, group 1 (images 2, 3) barely right / partly wrong."""
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, C, (4, 8, 8), generator=generator)
    logits = 3.0 * one_hot_masks(target, C)
    logits[2:] = 0.4 * one_hot_masks(target[2:], C) + 0.6 * torch.rand(2, C, 8, 8, generator=generator)
    groups = torch.tensor([[0], [0], [1], [1]])
    return logits, target, groups


def _group_soft_miou(logits: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    from fp_metrics import soft_group_miou

    miou = soft_group_miou(logits.softmax(dim=1), one_hot_masks(target, C), torch.tensor([0, 0, 1, 1]), 2)
    return float(miou[0]), float(miou[1])


@pytest.mark.parametrize("loss_fn", [group_variance_loss, group_shortfall_loss])
def test_a_fairness_step_lifts_the_worst_group_and_narrows_the_gap(loss_fn) -> None:
    logits, target, groups = _two_group_case()
    logits.requires_grad_(True)
    best_before, worst_before = _group_soft_miou(logits.detach(), target)
    assert worst_before < best_before
    loss = loss_fn(logits.softmax(dim=1), one_hot_masks(target, C), groups)
    loss.backward()
    assert logits.grad is not None and float(logits.grad[2:].abs().sum()) > 0
    with torch.no_grad():
        stepped = logits - 0.5 * logits.grad / logits.grad.abs().max()  # a small step along -grad
    best_after, worst_after = _group_soft_miou(stepped, target)
    assert worst_after > worst_before
    assert (best_after - worst_after) ** 2 < (best_before - worst_before) ** 2
    after = loss_fn(stepped.softmax(dim=1), one_hot_masks(target, C), groups)
    assert float(after) < float(loss.detach())


def test_shortfall_never_pulls_the_best_group_down() -> None:
    logits, target, groups = _two_group_case()
    logits.requires_grad_(True)
    group_shortfall_loss(logits.softmax(dim=1), one_hot_masks(target, C), groups).backward()
    assert logits.grad is not None
    assert float(logits.grad[:2].abs().max()) == 0.0  # the best group's images get no gradient
    assert float(logits.grad[2:].abs().max()) > 0.0


@pytest.mark.parametrize("loss_fn", [group_variance_loss, group_shortfall_loss])
def test_fewer_than_two_populated_groups_gives_exactly_zero_and_finite_grads(loss_fn) -> None:
    logits, target, _ = _two_group_case()
    logits.requires_grad_(True)
    probs, onehot = logits.softmax(dim=1), one_hot_masks(target, C)
    for groups in (
        torch.tensor([[0, -1], [0, -1], [0, 2], [0, -1]]),  # one group each
        torch.full((4, 2), -1),  # all unknown
        torch.empty((4, 0), dtype=torch.long),  # no groupings at all
    ):
        loss = loss_fn(probs, onehot, groups, num_groups=[3] * groups.shape[1])
        assert float(loss.detach()) == 0.0
        (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
        assert bool(torch.isfinite(grad).all()) and float(grad.abs().max()) == 0.0


def test_groupings_without_two_groups_do_not_dilute_the_others() -> None:
    logits, target, groups = _two_group_case()
    probs, onehot = logits.softmax(dim=1), one_hot_masks(target, C)
    alone = group_variance_loss(probs, onehot, groups)
    with_single = group_variance_loss(probs, onehot, torch.cat([groups, torch.zeros_like(groups)], dim=1))
    assert float(alone) > 0 and float(with_single) == pytest.approx(float(alone), rel=1e-6)


def test_output_mode_does_no_extra_forward_and_input_mode_exactly_one() -> None:
    logits, target, groups = _two_group_case()
    images = torch.rand(4, 3, 8, 8)
    model = _Fixed(logits)
    terms = ParsingObjectives(num_classes=C, robustness_mode="output")(model, images, target, groups)
    assert model.calls == [4]
    combine(terms, (0.4, 0.3, 0.3)).backward()
    assert model.logits.grad is not None and bool(torch.isfinite(model.logits.grad).all())

    model = _Fixed(logits)
    objectives = ParsingObjectives(num_classes=C, robustness_mode="input", input_share=0.5)
    terms = objectives(model, images, target, groups, generator=torch.Generator().manual_seed(0))
    assert model.calls == [4, 2]  # the clean batch, then half of it perturbed
    assert all(terms[k].dim() == 0 for k in ("accuracy", "robustness", "fairness"))

    model = _Fixed(logits)
    ParsingObjectives(num_classes=C, robustness_mode="input", input_share=0.01)(model, images, target, groups)
    assert model.calls == [4, 1]  # at least one image


def test_unneeded_terms_are_skipped() -> None:
    logits, target, groups = _two_group_case()
    model = _Fixed(logits)
    objectives = ParsingObjectives(num_classes=C, robustness_mode="input")
    terms = objectives(
        model, torch.rand(4, 3, 8, 8), target, groups, need={"robustness": False, "fairness": False}
    )
    assert model.calls == [4]
    assert float(terms["robustness"]) == 0.0 and float(terms["fairness"]) == 0.0
    assert not terms["robustness"].requires_grad and terms["accuracy"].requires_grad
    assert combine(terms, (1.0, 0.0, 0.0)) is not None
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['robustnes'\]"):
        objectives(model, torch.rand(4, 3, 8, 8), target, groups, need={"robustnes": False})


def test_output_noise_is_seeded_and_scaled() -> None:
    logits, target, groups = _two_group_case()
    model = _Fixed(logits)
    images = torch.rand(4, 3, 8, 8)
    objectives = ParsingObjectives(num_classes=C, noise_std=2.0)
    first = objectives(model, images, target, groups, generator=torch.Generator().manual_seed(1))[
        "robustness"
    ]
    again = objectives(model, images, target, groups, generator=torch.Generator().manual_seed(1))[
        "robustness"
    ]
    other = objectives(model, images, target, groups, generator=torch.Generator().manual_seed(2))[
        "robustness"
    ]
    assert float(first.detach()) == float(again.detach()) and float(first.detach()) != float(other.detach())
    literal = ParsingObjectives(num_classes=C, robustness_mode="output_literal", noise_std=0.0)
    assert float(literal(model, images, target, groups)["robustness"].detach()) == pytest.approx(
        float(soft_miou_loss(logits.softmax(dim=1), one_hot_masks(target, C)).detach())
    )
    clean = ParsingObjectives(num_classes=C, noise_std=0.0)(model, images, target, groups)["robustness"]
    standardised = standardise_logits(logits) / 0.25  # the default temperature
    assert float(clean.detach()) == pytest.approx(
        float(soft_miou_loss(standardised.softmax(dim=1), one_hot_masks(target, C)).detach()), abs=1e-6
    )
    assert float(first.detach()) > float(
        clean.detach()
    )  # noise lowers the soft mIoU, so the loss (-mIoU) rises


def test_combine_is_the_weighted_sum() -> None:
    terms = {"accuracy": torch.tensor(0.5), "robustness": torch.tensor(-0.8), "fairness": torch.tensor(0.02)}
    assert float(combine(terms, (0.4, 0.3, 0.3))) == pytest.approx(0.4 * 0.5 - 0.3 * 0.8 + 0.3 * 0.02)
    assert float(combine(terms, (1.0, 0.0, 0.0))) == 0.5
    with pytest.raises(ValueError, match="alpha, beta, gamma"):
        combine(terms, (1.0, 0.0))


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="unknown robustness_mode 'both'"):
        ParsingObjectives(robustness_mode="both")
    with pytest.raises(ValueError, match="unknown fairness 'gap'"):
        ParsingObjectives(fairness="gap")
    with pytest.raises(ValueError, match=r"input_share must lie in \(0, 1\]"):
        ParsingObjectives(input_share=0.0)
    with pytest.raises(ValueError, match="perturbations must be a non-empty subset"):
        ParsingObjectives(perturbations=("fog",))
    logits, target, groups = _two_group_case()
    with pytest.raises(ValueError, match="expected num_classes=19"):
        ParsingObjectives(num_classes=19)(_Fixed(logits), torch.rand(4, 3, 8, 8), target, groups)


def test_one_hot_masks() -> None:
    masks = torch.randint(0, C, (2, 5, 7), generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.one_hot(masks, C).permute(0, 3, 1, 2).float()
    assert torch.equal(one_hot_masks(masks, C), expected)
    with pytest.raises(ValueError, match=r"integer tensor \[B, H, W\]"):
        one_hot_masks(masks.float(), C)
