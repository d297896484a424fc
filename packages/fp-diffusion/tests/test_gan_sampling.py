"""Generation from label maps and the sample grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_diffusion.gan import (
    Pix2PixHDConfig,
    build_generator,
    colorize,
    default_palette,
    generate,
    sample_grid,
)


def test_generate_is_batched_in_range_and_restores_the_mode() -> None:
    torch.manual_seed(0)
    generator = build_generator(Pix2PixHDConfig.toy(ngf=8, n_blocks=1))
    labels = torch.randint(0, 19, (5, 16, 16))
    images = generate(generator, labels, batch_size=2)
    assert images.shape == (5, 3, 16, 16)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    whole = generate(generator, labels, batch_size=5)
    torch.testing.assert_close(images, whole)
    expected = (generator.from_labels(labels).detach() + 1) / 2
    torch.testing.assert_close(whole, expected)
    assert generator.training  # build_generator leaves it in train mode; generate restores it
    with pytest.raises(ValueError, match=r"labels must be \[B, H, W\]"):
        generate(generator, labels[0], batch_size=2)


def test_sample_grid_rows() -> None:
    palette = default_palette(19)
    assert palette.shape == (19, 3) and palette.dtype == np.uint8 and palette[0].tolist() == [0, 0, 0]
    assert len({tuple(c) for c in palette.tolist()}) == 19
    labels = torch.tensor([[[0, 1], [2, 3]], [[4, 4], [4, 4]]])
    generated = torch.zeros(2, 3, 2, 2)
    real = torch.ones(2, 3, 2, 2)
    grid = sample_grid(labels, generated, real, palette)
    assert grid.shape == (6, 4, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid[:2, :2], colorize(labels[0], palette))
    assert np.array_equal(grid[:2, 2:], colorize(labels[1], palette))
    assert (grid[2:4] == 0).all() and (grid[4:6] == 255).all()
    assert sample_grid(labels, generated, None, palette).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="no colour"):
        colorize(np.array([[19]]), palette)
