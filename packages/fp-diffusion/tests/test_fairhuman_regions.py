"""crop_regions: exact padded square crops (clamped to the image) on a constructed image, resizing, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fp_diffusion.fairhuman import crop_box, crop_regions


def _coded(batch: int = 2, height: int = 20, width: int = 30) -> torch.Tensor:
    """Pixel (b, c, row, col) holds 10000 b + 1000 c + 100 row + col: every crop is identifiable."""
    b, c, r, k = torch.meshgrid(
        torch.arange(batch), torch.arange(3), torch.arange(height), torch.arange(width), indexing="ij"
    )
    return (10000 * b + 1000 * c + 100 * r + k).double()


def test_crop_boxes_by_hand() -> None:
    # a 4 wide x 6 tall box at x [10, 14), y [5, 11): square side 6 centred on (12, 8) -> left 9, top 5
    assert crop_box([10, 5, 14, 11], 20, 30) == (5, 9, 6)
    # padding 0.5 of the longer side on each side: side 6 * 2 = 12, centre (12, 8) -> left 6, top 2
    assert crop_box([10, 5, 14, 11], 20, 30, padding=0.5) == (2, 6, 12)
    # near the top-left corner the square shifts inside the image, keeping its side
    assert crop_box([0, 0, 3, 2], 20, 30, padding=0.5) == (0, 0, 6)
    # at the bottom-right corner likewise
    assert crop_box([27, 18, 30, 20], 20, 30) == (17, 27, 3)
    # wider than the image is tall: the side is capped at the shorter side
    assert crop_box([0, 5, 30, 10], 20, 30) == (0, 5, 20)
    # fractional (detector) box: side ceil(2.5) = 3, centre (5.25, 3.25) -> left round(3.75) = 4, top round(1.75)
    assert crop_box([4.0, 2.0, 6.5, 4.5], 20, 30) == (2, 4, 3)


def test_crop_regions_are_the_exact_pixels_in_image_and_box_order() -> None:
    images = _coded()
    boxes = [[[10, 5, 14, 11], [0, 0, 3, 2]], [[27, 18, 30, 20]]]
    crops = crop_regions(images, boxes, 6, padding=0.0)
    assert crops.shape == (3, 3, 6, 6) and crops.dtype == torch.float64
    assert torch.equal(crops[0], images[0, :, 5:11, 9:15])
    # the second box's 3x3 square is resized 3 -> 6 bilinearly (antialias is a no-op when enlarging)
    small = images[0:1, :, 0:3, 0:3]
    want = F.interpolate(small.float(), size=(6, 6), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(crops[1:2], want.double())
    assert float(crops[2].min()) >= 10000  # from the second image
    assert torch.equal(
        crop_regions(images, boxes, 3)[2], images[1, :, 17:20, 27:30]
    )  # no resize at its own size


def test_shrinking_is_antialiased_and_empty_lists_give_no_crops() -> None:
    images = torch.zeros(1, 3, 16, 16)
    images[..., ::2] = 1.0  # one-pixel stripes: a subsample would be all 1 or all 0
    crop = crop_regions(images, [[[0, 0, 16, 16]]], 4)
    assert float((crop - 0.5).abs().max()) < 0.05  # the stripes average out (edges: within 0.04)
    nearest = F.interpolate(images, size=(4, 4), mode="nearest")
    assert float((nearest - 0.5).abs().min()) == 0.5  # a subsample sees one stripe
    assert crop_regions(images, [[]], 8).shape == (0, 3, 8, 8)


def test_bad_input() -> None:
    images = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="one box list per image: 2 images, 1 box lists"):
        crop_regions(images, [[]], 4)
    with pytest.raises(ValueError, match="lies outside the 8x8 image"):
        crop_regions(images, [[[0, 0, 9, 4]], []], 4)
    with pytest.raises(ValueError, match="malformed"):
        crop_regions(images, [[[4, 0, 4, 4]], []], 4)
    with pytest.raises(ValueError, match="4 finite numbers"):
        crop_regions(images, [[[0, 0, 4]], []], 4)
    with pytest.raises(ValueError, match="images must be"):
        crop_regions(torch.zeros(3, 8, 8), [[]], 4)
