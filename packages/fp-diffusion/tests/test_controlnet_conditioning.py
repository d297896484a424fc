"""Label maps <-> condition images: palette colours only at every size, round trips, bad labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_diffusion.controlnet.conditioning import (
    ConditioningError,
    colorize_labels,
    condition_to_labels,
    labels_to_condition,
    resize_labels,
)
from fp_diffusion.controlnet.palette import face_palette


def _random_labels(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 19, shape, generator=torch.Generator().manual_seed(seed))


def test_colorize_hand_case() -> None:
    labels = np.array([[0, 1], [16, 18]])
    colours = colorize_labels(labels)
    assert colours.dtype == np.uint8 and colours.shape == (2, 2, 3)
    assert colours[0, 0].tolist() == [0, 0, 0]
    assert colours[0, 1].tolist() == [150, 5, 61]
    assert colours[1, 0].tolist() == [0, 112, 255]
    assert colours[1, 1].tolist() == face_palette()[18].tolist()


@pytest.mark.parametrize("size", [1, 5, 17, 32, 63, 64, 127])
def test_condition_has_only_palette_colours_at_every_size(size: int) -> None:
    labels = _random_labels(2, 31, 31, seed=size)
    condition = labels_to_condition(labels, size)
    assert condition.shape == (2, 3, size, size) and condition.dtype == torch.float32
    assert 0 <= float(condition.min()) and float(condition.max()) <= 1
    colours = {tuple(c) for c in (condition * 255).round().long().permute(0, 2, 3, 1).reshape(-1, 3).tolist()}
    assert colours <= {tuple(c) for c in face_palette().tolist()}
    back = condition_to_labels(condition)
    assert torch.equal(back, resize_labels(labels, size))


def test_round_trip_at_the_same_size_and_uint8() -> None:
    labels = _random_labels(3, 16, 16)
    assert torch.equal(condition_to_labels(labels_to_condition(labels, 16)), labels)
    assert torch.equal(condition_to_labels(colorize_labels(labels)), labels)
    single = labels[0]
    assert labels_to_condition(single, 16).shape == (1, 3, 16, 16)
    assert torch.equal(condition_to_labels(labels_to_condition(single, 16)[0]), single)


def test_resize_is_nearest_neighbour_on_hand_case() -> None:
    labels = torch.tensor([[1, 2], [3, 4]])
    assert resize_labels(labels, 4).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    big = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    assert resize_labels(big, 2).tolist() == [[1, 2], [3, 4]]
    assert resize_labels(big, (4, 2)).shape == (4, 2)
    # only ids present in the input appear in the output, also for odd sizes
    odd = _random_labels(13, 7)
    assert set(resize_labels(odd, (29, 3)).unique().tolist()) <= set(odd.unique().tolist())


@pytest.mark.parametrize("bad", [19, 255, -1])
def test_bad_labels_raise_naming_the_value(bad: int) -> None:
    labels = torch.zeros(4, 4, dtype=torch.long)
    labels[1, 2] = bad
    with pytest.raises(ConditioningError, match=rf"label {bad} "):
        labels_to_condition(labels, 8)
    with pytest.raises(ConditioningError, match=rf"label {bad} "):
        colorize_labels(labels)


def test_non_palette_colour_raises_naming_pixel_and_colour() -> None:
    condition = labels_to_condition(torch.zeros(1, 4, 4, dtype=torch.long), 4)
    condition[0, :, 2, 3] = torch.tensor([10, 20, 30]) / 255  # e.g. a bilinear blend at a border
    with pytest.raises(ConditioningError, match=r"pixel \(0, 2, 3\) has colour \[10, 20, 30\]"):
        condition_to_labels(condition)


def test_float_labels_and_bad_shapes_raise() -> None:
    with pytest.raises(ConditioningError, match="integer class ids"):
        labels_to_condition(torch.zeros(4, 4), 4)
    with pytest.raises(ConditioningError, match="shape"):
        labels_to_condition(torch.zeros(4, dtype=torch.long), 4)
    with pytest.raises(ConditioningError, match="size"):
        resize_labels(torch.zeros(4, 4, dtype=torch.long), 0)
