"""Latent-walk variants: least-squares directions and the 3 x 3 lattice."""

from __future__ import annotations

import pytest
import torch

from fp_qdgs.faces.variants import fit_directions, lattice, lattice_offsets


def test_fit_directions_recovers_planted_directions() -> None:
    g = torch.Generator().manual_seed(0)
    n, d = 400, 64
    d1, d2 = torch.randn(d, generator=g), torch.randn(d, generator=g)
    a = torch.randn(d, generator=g)
    yaw = torch.randn(n, generator=g)
    smile = 0.6 * yaw + torch.randn(n, generator=g)  # correlated labels: the regression holds the other fixed
    z = a + yaw[:, None] * d1 + smile[:, None] * d2 + 0.1 * torch.randn(n, d, generator=g)
    dirs = fit_directions(z, torch.stack([yaw, smile], 1))
    assert dirs.shape == (2, d)
    torch.testing.assert_close(dirs.norm(dim=1), torch.ones(2))
    assert torch.cosine_similarity(dirs[0], d1, dim=0) > 0.99
    assert torch.cosine_similarity(dirs[1], d2, dim=0) > 0.99


def test_fit_directions_wplus_shape_and_degenerate_labels() -> None:
    z = torch.randn(20, 3, 4)
    labels = torch.randn(20, 2)
    assert fit_directions(z, labels).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="vary independently"):
        fit_directions(z, torch.stack([labels[:, 0], 2 * labels[:, 0]], 1))
    with pytest.raises(ValueError, match=r"\[N=20, 2\]"):
        fit_directions(z, torch.randn(20, 3))


def test_lattice_exact_values() -> None:
    z = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    dirs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = lattice(z, dirs, steps=(0.5, 2.0))
    assert out.shape == (2, 9, 2)
    offsets = [(a, b) for a in (-0.5, 0.0, 0.5) for b in (-2.0, 0.0, 2.0)]
    expected = torch.tensor([[[zi[0] + a, zi[1] + b] for a, b in offsets] for zi in z.tolist()])
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert torch.equal(out[:, 4], z)
    assert lattice_offsets((0.5, 2.0))[4].tolist() == [0.0, 0.0]


def test_lattice_wplus_and_shape_errors() -> None:
    z = torch.randn(3, 2, 5)
    dirs = torch.randn(2, 2, 5)
    out = lattice(z, dirs, steps=(1.0, 3.0))
    torch.testing.assert_close(out[:, 0], z - dirs[0] - 3.0 * dirs[1])
    torch.testing.assert_close(out[:, 8], z + dirs[0] + 3.0 * dirs[1])
    assert torch.equal(out[:, 4], z)
    with pytest.raises(ValueError, match="directions must have shape"):
        lattice(z, torch.randn(2, 10))
