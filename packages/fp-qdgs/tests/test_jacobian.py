from __future__ import annotations

import pytest
import torch
from torch import nn

from fp_qdgs import evaluate, evaluate_with_jacobian, gaussian_mean_norm, stacked_jacobian


class _MLPGenerator(nn.Module):
    """A nonlinear float64 generator: z [B, 5] -> sigmoid(MLP(z)) [B, 3, 4, 4]; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 48)).double()
        self.calls = 0

    latent_dim = 5

    @property
    def mean_prior_norm(self) -> float:
        return gaussian_mean_norm(5)

    def sample_prior(self, n, generator=None):
        return torch.randn(n, 5, generator=generator, dtype=torch.float64)

    def forward(self, z):
        self.calls += 1
        return torch.sigmoid(self.net(z)).view(-1, 3, 4, 4)


class _ImageScorer:
    """Objective and k = 3 measures that depend nonlinearly on the images and on the latents."""

    num_measures = 3

    def __call__(self, images, latents):
        flat = images.flatten(1)
        objective = flat.square().mean(1) - 0.1 * latents.norm(dim=1)
        measures = torch.stack(
            [flat[:, :16].mean(1), torch.sin(flat[:, 16:32]).sum(1), (flat[:, 32:] * latents[:, :1]).mean(1)],
            1,
        )
        return objective, measures

    def update(self, images, accepted):
        pass


def _separate_passes(gen, scorer, z):
    rows = []
    for j in range(1 + scorer.num_measures):
        zj = z.clone().requires_grad_(True)
        obj, meas = scorer(gen(zj), zj)
        out = torch.cat([obj[:, None], meas], 1)[:, j].sum()
        (g,) = torch.autograd.grad(out, zj)
        rows.append(g)
    return torch.stack(rows, 1)  # [B, k + 1, n]


def test_batched_jacobian_equals_separate_passes_from_one_forward():
    gen, scorer = _MLPGenerator(), _ImageScorer()
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gen.calls = 0
    ev = evaluate_with_jacobian(gen, scorer, z)
    assert gen.calls == 1
    assert ev.jacobian.shape == (6, 4, 5)
    expected = _separate_passes(gen, scorer, z)
    torch.testing.assert_close(ev.jacobian, expected, atol=1e-6, rtol=1e-6)
    plain = evaluate(gen, scorer, z)
    torch.testing.assert_close(plain.objective, ev.objective)
    torch.testing.assert_close(plain.measures, ev.measures)
    assert plain.jacobian is None


def test_stacked_jacobian_fallback_matches(monkeypatch):
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    out = torch.stack([z.square().sum(1), z.sin().prod(1)], 1)
    batched = stacked_jacobian(out, z)
    real_grad = torch.autograd.grad

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    with pytest.warns(RuntimeWarning, match="falling back"):
        looped = stacked_jacobian(out, z)
    torch.testing.assert_close(batched, looped)
    torch.testing.assert_close(batched[:, 0], 2 * z.detach())
