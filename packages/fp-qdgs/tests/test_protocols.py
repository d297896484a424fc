from __future__ import annotations

import math

import pytest
import torch

from fp_qdgs import check_images, check_scores, gaussian_mean_norm, generate
from fp_qdgs.toy import LinearSigmoidGenerator


class _BadShape(LinearSigmoidGenerator):
    def forward(self, latents):
        return super().forward(latents)[:, :1]  # one channel


class _BadRange(LinearSigmoidGenerator):
    def forward(self, latents):
        return super().forward(latents) * 2 - 0.5


def test_generate_checks_shape_and_range():
    z = torch.zeros(3, 20)
    assert generate(LinearSigmoidGenerator(), z).shape == (3, 3, 4, 4)
    with pytest.raises(ValueError, match=r"\[B=3, 3, H, W\].*got shape \(3, 1, 4, 4\)"):
        generate(_BadShape(), z)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        generate(_BadRange(), torch.randn(3, 20))
    with pytest.raises(ValueError, match="latent_dim=20"):
        generate(LinearSigmoidGenerator(), torch.zeros(3, 5))


def test_check_images_rejects_wrong_batch_and_dtype():
    with pytest.raises(ValueError, match="B=2"):
        check_images(torch.zeros(3, 3, 4, 4), 2)
    with pytest.raises(ValueError, match="floating-point"):
        check_images(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="values in"):
        check_images(torch.full((2, 3, 4, 4), float("nan")), 2)


def test_check_scores_shapes():
    check_scores(torch.zeros(4), torch.zeros(4, 2), 4, 2)
    with pytest.raises(ValueError, match=r"objective of shape \[B=4\]"):
        check_scores(torch.zeros(4, 1), torch.zeros(4, 2), 4, 2)
    with pytest.raises(ValueError, match=r"k=3"):
        check_scores(torch.zeros(4), torch.zeros(4, 2), 4, 3)


def test_gaussian_mean_norm():
    assert gaussian_mean_norm(1) == pytest.approx(math.sqrt(2 / math.pi))
    assert gaussian_mean_norm(2) == pytest.approx(math.sqrt(math.pi / 2))
    z = torch.randn(200_000, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert gaussian_mean_norm(6) == pytest.approx(float(z.norm(dim=1).mean()), rel=5e-3)
    assert gaussian_mean_norm(6) == pytest.approx(2.3499, abs=1e-4)
