"""The objectives on realistic softmax outputs: present classes, robustness modes, BatchNorm, Dice = smp, and
the global-batch statistics (split batches summed = the whole batch), all in one process."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fp_parsing.losses import (
    OBJECTIVE_MINIMA,
    ROBUSTNESS_MODES,
    BatchSlice,
    ParsingObjectives,
    dice_loss,
    distributed_world,
    frozen_batchnorm_stats,
    global_sum,
    group_shortfall_loss,
    group_variance_loss,
    one_hot_masks,
    soft_miou_loss,
)

C = 19


class _Fixed(nn.Module):
    """Returns fixed logits (plus 0 x the input) and counts its calls."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())
        self.calls: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(images.shape[0])
        return self.logits[: images.shape[0]] + 0.0 * images.mean()


def _few_class_masks() -> tuple[torch.Tensor, torch.Tensor]:
    """4 images of 16x16 with 2 classes each (0 and one more); groups: images 0, 1 have {0, 3} and {0, 6}
    (eyeglasses-like extra classes), images 2, 3 only {0, 12}."""
    masks = torch.zeros(4, 16, 16, dtype=torch.long)
    masks[0, 4:12, 3:9] = 3
    masks[1, 2:7, 5:14] = 6
    masks[2, 6:14, 6:12] = 12
    masks[3, 3:10, 2:12] = 12
    return masks, torch.tensor([[0], [0], [1], [1]])


def test_near_perfect_softmax_with_two_present_classes_scores_close_to_minus_one() -> None:
    masks, _ = _few_class_masks()
    probs = (10.0 * one_hot_masks(masks, C)).softmax(dim=1)
    assert float(soft_miou_loss(probs, one_hot_masks(masks, C))) < -0.99
    assert OBJECTIVE_MINIMA["robustness"] == -1.0
    exact = soft_miou_loss(one_hot_masks(masks, C), one_hot_masks(masks, C))
    assert float(exact) == -1.0  # the infimum is attained by a perfect prediction


@pytest.mark.parametrize("loss_fn", [group_variance_loss, group_shortfall_loss])
@pytest.mark.parametrize("scale", [10.0, 60.0])
def test_perfectly_predicted_groups_with_different_class_sets_are_fair(loss_fn, scale: float) -> None:
    masks, groups = _few_class_masks()
    target = one_hot_masks(masks, C)
    logits = (scale * target).requires_grad_(True)
    loss = loss_fn(logits.softmax(dim=1), target, groups, [2])
    # the variance is quadratic in the tiny gap between the groups (both ~1 - 1e-4), the shortfall linear
    bound = 1e-6 if loss_fn is group_variance_loss or scale == 60.0 else 1e-3
    assert 0.0 <= float(loss.detach()) <= bound
    (grad,) = torch.autograd.grad(loss, logits)
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().max()) < bound


def test_fairness_term_of_the_objectives_is_zero_for_perfect_groups() -> None:
    masks, groups = _few_class_masks()
    model = _Fixed(10.0 * one_hot_masks(masks, C))
    terms = ParsingObjectives(num_classes=C, num_groups=[2])(model, torch.rand(4, 3, 16, 16), masks, groups)
    assert float(terms["fairness"].detach()) <= 1e-6
    (grad,) = torch.autograd.grad(terms["fairness"], model.logits)
    assert float(grad.abs().max()) < 1e-6


def _realistic_logits(masks: torch.Tensor, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.5 * torch.randn(masks.shape[0], C, *masks.shape[1:], generator=generator) + one_hot_masks(
        masks, C
    )


def _robustness(mode: str, logits: torch.Tensor, masks: torch.Tensor, seed: int = 1) -> torch.Tensor:
    objectives = ParsingObjectives(num_classes=C, robustness_mode=mode, noise_std=1.0)
    groups = torch.zeros(masks.shape[0], 1, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    return objectives(_Fixed(logits), torch.rand(masks.shape[0], 3, 16, 16), masks, groups, generator)[
        "robustness"
    ]


def test_default_output_mode_ignores_a_rescaling_of_the_logits_and_the_literal_mode_does_not() -> None:
    masks, _ = _few_class_masks()
    logits = _realistic_logits(masks)
    default = [float(_robustness("output", k * logits, masks).detach()) for k in (1.0, 20.0)]
    assert default[1] == pytest.approx(default[0], abs=1e-5)
    literal = [float(_robustness("output_literal", k * logits, masks).detach()) for k in (1.0, 20.0)]
    assert literal[1] < literal[0] - 0.1  # the weakness: same argmax, a much lower loss


def test_default_output_mode_scores_a_confident_right_prediction_well() -> None:
    masks, _ = _few_class_masks()
    confident = float(_robustness("output", 10.0 * one_hot_masks(masks, C), masks).detach())
    assert confident < -0.95
    assert confident < float(_robustness("output", _realistic_logits(masks), masks).detach())


@pytest.mark.parametrize("mode", ROBUSTNESS_MODES)
@pytest.mark.parametrize("scale", [0.0, 1.0, 30.0])
def test_robustness_gradients_are_finite(mode: str, scale: float) -> None:
    masks, _ = _few_class_masks()
    logits = scale * _realistic_logits(masks)  # scale 0: all logits equal (a zero-initialised head)
    model = _Fixed(logits)
    objectives = ParsingObjectives(num_classes=C, robustness_mode=mode)
    terms = objectives(model, torch.rand(4, 3, 16, 16), masks, torch.zeros(4, 1, dtype=torch.long))
    (grad,) = torch.autograd.grad(terms["robustness"], model.logits)
    assert bool(torch.isfinite(terms["robustness"])) and bool(torch.isfinite(grad).all())


def test_dice_loss_equals_smp_dice_loss() -> None:
    from segmentation_models_pytorch.losses import DiceLoss

    masks, _ = _few_class_masks()  # 15 of the 19 classes are absent from the batch
    for logits in (_realistic_logits(masks), 10.0 * one_hot_masks(masks, C), torch.zeros(4, C, 16, 16)):
        smp_dice = DiceLoss(mode="multiclass", from_logits=True)
        # smp's float32 intersection (P + T - |p - t|_1) / 2 loses ~1e-6 to cancellation; in float64 it is exact
        expected = float(smp_dice(logits.double(), masks))
        assert float(dice_loss(logits, masks)) == pytest.approx(expected, abs=1e-6)
        assert float(dice_loss(logits, masks)) == pytest.approx(float(smp_dice(logits, masks)), abs=1e-5)
    model = _Fixed(_realistic_logits(masks))
    terms = ParsingObjectives(num_classes=C)(model, torch.rand(4, 3, 16, 16), masks, torch.zeros(4, 1).long())
    expected = DiceLoss(mode="multiclass", from_logits=True)(model.logits.detach().double(), masks)
    assert float(terms["accuracy"].detach()) == pytest.approx(float(expected), abs=1e-6)


class _BNParser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, C, 1), nn.BatchNorm2d(C)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def _bn_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: buf.clone() for name, buf in model.named_buffers()}


def test_input_mode_leaves_batchnorm_running_stats_as_a_clean_forward_would() -> None:
    masks, groups = _few_class_masks()
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    model, reference = _BNParser().train(), _BNParser().train()
    objectives = ParsingObjectives(num_classes=C, robustness_mode="input", input_share=0.5, num_groups=[2])
    terms = objectives(model, images, masks, groups, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean_logits = reference(images)
    after, expected = _bn_buffers(model), _bn_buffers(reference)
    assert set(after) == set(expected) and any("num_batches_tracked" in k for k in after)
    for name in expected:
        assert torch.equal(after[name], expected[name]), name
    torch.testing.assert_close(terms["logits"].detach(), clean_logits)  # the clean forward is clean-only
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    combine_grad = torch.autograd.grad(terms["robustness"], list(model.parameters()))
    assert all(bool(torch.isfinite(g).all()) for g in combine_grad)


def test_frozen_batchnorm_stats_uses_batch_statistics_and_restores_the_flag() -> None:
    model = _BNParser().train()
    images = torch.rand(2, 3, 8, 8)
    before = _bn_buffers(model)
    with frozen_batchnorm_stats(model):
        frozen = model(images)
    assert all(torch.equal(before[k], v) for k, v in _bn_buffers(model).items())
    torch.testing.assert_close(frozen, model(images))  # train-mode normalisation, same batch statistics
    assert int(model.net[1].num_batches_tracked) == 1


def _split_case(mode: str, fairness: str):
    masks, _ = _few_class_masks()
    masks = torch.cat([masks, masks.flip(-1)])  # 8 images
    groups = torch.tensor([[0, 1], [0, -1], [1, 2], [1, 0], [0, 2], [1, 1], [1, -1], [0, 0]])
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    images[:, 0] = 0.3 + 0.4 * (masks > 0)  # the parser can see the foreground
    objectives = ParsingObjectives(
        num_classes=C, robustness_mode=mode, fairness=fairness, num_groups=[2, 3], input_share=0.5
    )
    return objectives, images, masks, groups


def _conv_parser() -> nn.Module:
    torch.manual_seed(4)
    return nn.Conv2d(3, C, 1)


@pytest.mark.parametrize(
    ("mode", "fairness"), [("output", "variance"), ("output_literal", "shortfall"), ("input", "variance")]
)
def test_statistics_of_two_shards_sum_to_those_of_the_whole_batch(mode: str, fairness: str) -> None:
    """What global_sum does across ranks, done in one process: shard statistics added = whole batch."""
    objectives, images, masks, groups = _split_case(mode, fairness)
    whole_model = _conv_parser()
    whole = objectives(
        whole_model, images, masks, groups, torch.Generator().manual_seed(9), batch_slice=BatchSlice(0, 8, 4)
    )
    shard_model = _conv_parser()
    shards = []
    for rank in range(2):
        part = slice(4 * rank, 4 * rank + 4)
        shards.append(
            objectives._local_statistics(
                shard_model,
                images[part],
                masks[part],
                groups[part],
                torch.Generator().manual_seed(9),
                None,
                BatchSlice(4 * rank, 8, 4),
            )
        )
    summed = objectives._terms(shards[0].flat + shards[1].flat, shards[0])
    for name in ("accuracy", "robustness", "fairness"):
        assert float(summed[name].detach()) == pytest.approx(float(whole[name].detach()), abs=1e-6), name
        expected = torch.autograd.grad(whole[name], list(whole_model.parameters()), retain_graph=True)
        got = torch.autograd.grad(summed[name], list(shard_model.parameters()), retain_graph=True)
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-5)


def test_input_mode_perturbs_the_same_images_in_shards_and_whole() -> None:
    objectives, images, masks, groups = _split_case("input", "variance")
    logits = torch.randn(8, C, 16, 16)
    whole = _Fixed(logits)
    objectives(
        whole, images, masks, groups, torch.Generator().manual_seed(9), batch_slice=BatchSlice(0, 8, 4)
    )
    assert whole.calls == [8, 4]  # 2 of every block of 4
    shard = _Fixed(logits[4:])
    objectives(
        shard,
        images[4:],
        masks[4:],
        groups[4:],
        torch.Generator().manual_seed(9),
        batch_slice=BatchSlice(4, 8, 4),
    )
    assert shard.calls == [4, 2]


def test_one_process_reductions_are_the_identity() -> None:
    assert distributed_world() == (0, 1)
    x = torch.randn(3, 5, requires_grad=True)
    assert global_sum(x) is x


def test_batch_slice_is_checked() -> None:
    with pytest.raises(ValueError, match="multiples of block"):
        BatchSlice(2, 8, 4).check(4)
    with pytest.raises(ValueError, match="does not hold"):
        BatchSlice(4, 6, 2).check(4)
    BatchSlice(4, 8, 2).check(4)
