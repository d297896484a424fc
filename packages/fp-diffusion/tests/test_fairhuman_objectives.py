"""FairHuman's masked objectives on constructed cases with hand-computed values."""

from __future__ import annotations

import pytest
import torch

from fp_diffusion.fairhuman import fairhuman_losses, masked_mse, masked_mse_with_area


def _case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B = 2, C = 2, 2 x 2: errors e = pred - target chosen per cell; a mask of 3 cells (2 in image 0)."""
    target = torch.zeros(2, 2, 2, 2)
    pred = torch.zeros(2, 2, 2, 2)
    pred[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # squared: 1 4 9 16
    pred[0, 1] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # squared: 1 1 1 1
    pred[1, 0] = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # squared: 4 0 0 0
    pred[1, 1] = torch.tensor([[0.0, 0.0], [0.0, 3.0]])  # squared: 0 0 0 9
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = 1.0  # image 0: cells (0,0) and (1,1)
    mask[1, 0, 0, 0] = 1.0  # image 1: cell (0,0)
    return pred, target, mask


def test_global_is_the_plain_mean() -> None:
    pred, target, _ = _case()
    total = (1 + 4 + 9 + 16) + 4 + 4 + 9
    assert masked_mse(pred, target).item() == pytest.approx(total / 16)
    assert masked_mse(pred, target).item() == pytest.approx(torch.nn.functional.mse_loss(pred, target).item())


def test_mask_normalisation_hand_computed() -> None:
    pred, target, mask = _case()
    # masked squared errors: image 0 cell (0,0): 1 + 1, cell (1,1): 16 + 1; image 1 cell (0,0): 4 + 0
    masked_sum = 2 + 17 + 4
    loss, area = masked_mse_with_area(pred, target, mask, normalise="mask")
    assert area.item() == 3
    assert loss.item() == pytest.approx(masked_sum / (3 * 2))  # / (mask area x channels)
    assert loss.dtype == torch.float32 and loss.dim() == 0


def test_all_normalisation_is_the_public_formula() -> None:
    pred, target, mask = _case()
    loss = masked_mse(pred, target, mask, normalise="all")
    assert loss.item() == pytest.approx(23 / 16)
    public = torch.nn.functional.mse_loss(pred * mask, target * mask)
    assert loss.item() == pytest.approx(public.item())


def test_an_image_with_an_empty_mask_contributes_nothing() -> None:
    pred, target, mask = _case()
    mask[1] = 0.0
    alone = masked_mse(pred[:1], target[:1], mask[:1])
    both = masked_mse(pred, target, mask)
    assert both.item() == pytest.approx(alone.item()) == pytest.approx(19 / 4)
    pred2 = pred.clone()
    pred2[1] += 100.0  # what image 1 predicts does not matter
    assert masked_mse(pred2, target, mask).item() == pytest.approx(both.item())


def test_a_batch_without_mask_pixels_gives_zero_with_the_area_flag_and_a_zero_gradient() -> None:
    pred, target, mask = _case()
    pred.requires_grad_(True)
    loss, area = masked_mse_with_area(pred, target, torch.zeros_like(mask))
    assert area.item() == 0 and loss.item() == 0.0
    loss.backward()
    assert pred.grad is not None and bool((pred.grad == 0).all())
    assert masked_mse(pred, target, torch.zeros_like(mask), normalise="all").item() == 0.0


def test_soft_masks_are_weights_and_out_of_range_masks_are_rejected() -> None:
    pred, target, mask = _case()
    soft = mask * 0.5
    soft[0, 0, 0, 1] = 0.25  # cell (0,1) of image 0: squared errors 4 + 1
    expected = (0.5 * (2 + 17 + 4) + 0.25 * 5) / (2 * (0.5 * 3 + 0.25))
    assert masked_mse(pred, target, soft).item() == pytest.approx(expected)
    # a constant scale of a soft mask does not change the "mask" normalisation
    assert masked_mse(pred, target, mask * 0.5).item() == pytest.approx(masked_mse(pred, target, mask).item())
    with pytest.raises(ValueError, match=r"face_mask values must be finite and in \[0, 1\]"):
        fairhuman_losses(pred, target, mask * 2, mask)
    with pytest.raises(ValueError, match=r"\[B, 1, h, w\]"):
        masked_mse(pred, target, mask[:, :, :1])
    with pytest.raises(ValueError, match="hand_mask is None"):
        fairhuman_losses(pred, target, mask, None)


def test_fairhuman_losses_bool_masks_and_half_precision() -> None:
    pred, target, mask = _case()
    hand = torch.zeros_like(mask, dtype=torch.bool)
    hand[1, 0, 1, 1] = True  # image 1 cell (1,1): squared 0 + 9
    losses = fairhuman_losses(pred.half(), target.half(), mask, hand)
    assert set(losses) == {"global", "face", "hand"}
    assert all(v.dtype == torch.float32 for v in losses.values())  # squared errors in fp32
    assert losses["global"].item() == pytest.approx(47 / 16)
    assert losses["face"].item() == pytest.approx(23 / 6)
    assert losses["hand"].item() == pytest.approx(9 / 2)
    all_norm = fairhuman_losses(pred, target, mask, hand, normalise="all")
    assert all_norm["hand"].item() == pytest.approx(9 / 16)
    with pytest.raises(ValueError, match="normalise"):
        masked_mse(pred, target, mask, normalise="mean")  # type: ignore[arg-type]
