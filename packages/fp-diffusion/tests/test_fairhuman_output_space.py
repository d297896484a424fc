"""Output-space MPD: the Gramian of the losses' gradients w.r.t. eps_hat, its MPD weights, one backward."""

from __future__ import annotations

import pytest
import torch

from fp_diffusion.fairhuman import (
    OutputSpaceMPD,
    build_fairhuman_weighting,
    fairhuman_losses,
    output_gramian,
    output_space_backward,
)
from fp_gradagg import MPD, backward
from fp_gradagg.gradients import stack_losses


def _case(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 4, 6, 6, generator=gen)
    noise = torch.randn(2, 4, 6, 6, generator=gen)
    face = torch.zeros(2, 1, 6, 6)
    face[:, :, 1:3, 1:4] = 1.0
    hand = torch.zeros(2, 1, 6, 6)
    hand[:, :, 4:6, 3:6] = 1.0
    return net, x, noise, face, hand


def test_output_gramian_equals_explicit_inner_products() -> None:
    net, x, noise, face, hand = _case()
    pred = net(x)
    losses = fairhuman_losses(pred, noise, face, hand)
    stacked = stack_losses(list(losses.values()))
    gramian = output_gramian(stacked, pred)
    z = [torch.autograd.grad(v, pred, retain_graph=True)[0].double().flatten() for v in losses.values()]
    expected = torch.stack([torch.stack([a @ b for b in z]) for a in z])
    torch.testing.assert_close(gramian, expected, rtol=1e-10, atol=0)
    # hand-checkable: d l_global / d pred = 2 (pred - noise) / N, so A_00 = 4 ||pred - noise||² / N²
    error = (pred - noise).detach().double()
    assert gramian[0, 0].item() == pytest.approx(4 * float(error.square().sum()) / error.numel() ** 2)
    assert gramian[1, 2].item() == pytest.approx(0.0, abs=1e-15)  # disjoint face and hand boxes


def test_weights_are_mpd_on_that_gramian_and_one_weighted_backward_is_written() -> None:
    net, x, noise, face, hand = _case()
    params = list(net.parameters())
    pred = net(x)
    losses = fairhuman_losses(pred, noise, face, hand)
    gramian = output_gramian(stack_losses(list(losses.values())), pred)
    expected_w = MPD().solve(gramian).weights
    result = output_space_backward(list(losses.values()), pred, params, OutputSpaceMPD())
    torch.testing.assert_close(result.weights.double(), expected_w, rtol=1e-6, atol=0)
    w = result.weights.double().numpy()
    g = result.gramian.numpy()
    assert (g @ w) == pytest.approx(w**-0.5, rel=1e-6)  # (A w) = w^(-1/2)
    assert result.path == "output" and result.residual < 1e-8
    pred = net(x)
    losses = fairhuman_losses(pred, noise, face, hand)
    total = sum(float(result.weights[i]) * v for i, v in enumerate(losses.values()))
    reference = torch.autograd.grad(total, params)
    for p, want in zip(params, reference):
        torch.testing.assert_close(p.grad, want, rtol=1e-5, atol=1e-9)


def test_with_an_identity_jacobian_it_is_exact_mpd() -> None:
    """When the trained tensor IS the output (J = I), output-space MPD and parameter-space MPD coincide."""
    _, _, noise, face, hand = _case()
    pred = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(4)).requires_grad_(True)
    exact = backward(list(fairhuman_losses(pred, noise, face, hand).values()), [pred], MPD())
    exact_grad, pred.grad = pred.grad.clone(), None
    approx = output_space_backward(
        list(fairhuman_losses(pred, noise, face, hand).values()), pred, [pred], OutputSpaceMPD()
    )
    torch.testing.assert_close(approx.weights.double(), exact.weights.double(), rtol=1e-6, atol=0)
    torch.testing.assert_close(pred.grad, exact_grad, rtol=1e-5, atol=1e-10)


def test_it_approximates_parameter_space_mpd_on_a_real_network() -> None:
    """On a network the Jacobian is not the identity: different weights, but a direction of descent for all."""
    net, x, noise, face, hand = _case()
    params = list(net.parameters())
    exact = backward(list(fairhuman_losses(net(x), noise, face, hand).values()), params, MPD())
    exact_dir = torch.cat([p.grad.flatten() for p in params])
    for p in params:
        p.grad = None
    pred = net(x)
    approx = output_space_backward(
        list(fairhuman_losses(pred, noise, face, hand).values()), pred, params, OutputSpaceMPD()
    )
    approx_dir = torch.cat([p.grad.flatten() for p in params])
    ratio = approx.weights.double() / approx.weights.double().sum()
    exact_ratio = exact.weights.double() / exact.weights.double().sum()
    assert (ratio - exact_ratio).abs().max() > 1e-3  # not the same weights
    cosine = torch.nn.functional.cosine_similarity(approx_dir, exact_dir, dim=0)
    assert 0.0 < float(cosine) <= 1.0
    # every objective still decreases to first order along the approximate direction
    gradients = [
        torch.autograd.grad(v, params, retain_graph=True)
        for v in fairhuman_losses(net(x), noise, face, hand).values()
    ]
    for g in gradients:
        assert float(torch.cat([t.flatten() for t in g]) @ approx_dir) > 0


def test_bad_inputs_and_the_factory() -> None:
    net, x, noise, face, hand = _case()
    pred = net(x)
    losses = list(fairhuman_losses(pred, noise, face, hand).values())
    with pytest.raises(ValueError, match="eps_hat"):
        output_space_backward(losses, pred.detach(), list(net.parameters()), OutputSpaceMPD())
    with pytest.raises(ValueError, match="OutputSpaceMPD"):
        output_space_backward(losses, pred, list(net.parameters()), MPD())  # type: ignore[arg-type]
    weighting = build_fairhuman_weighting("mpd_output", stationary_tol=1e-4)
    assert weighting.needs_output and weighting.method.solver.stationary_tol == 1e-4
    assert weighting.state_dict() == {"name": "mpd_output", "method": {}}
