"""The FairHuman weightings by name: each builds and gives three logged weights; DWA's epochs; Nash-MTL's rule."""

from __future__ import annotations

import pytest
import torch

from fp_diffusion.fairhuman import (
    ALL_WEIGHTINGS,
    FAIRHUMAN_WEIGHTINGS,
    FairHumanStep,
    build_fairhuman_weighting,
    fairhuman_losses,
)
from fp_gradagg import DWA, DegenerateGramianWarning, NashMTL, reset_degenerate_warnings


def _denoiser_batch(seed: int = 0):
    """A 1-layer conv 'denoiser' [2, 4, 8, 8] -> [2, 4, 8, 8], a noise target and face / hand masks."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = torch.nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    noise = torch.randn(2, 4, 8, 8, generator=gen)
    face = torch.zeros(2, 1, 8, 8)
    face[:, :, 1:4, 2:6] = 1.0
    hand = torch.zeros(2, 1, 8, 8)
    hand[:, :, 5:7, 1:3] = 1.0
    return net, x, noise, face, hand


def test_names() -> None:
    assert FAIRHUMAN_WEIGHTINGS == ("global_only", "ls", "dwa", "uw", "rlw", "si", "nash_mtl", "mpd")
    assert ALL_WEIGHTINGS == (*FAIRHUMAN_WEIGHTINGS, "mpd_output")
    with pytest.raises(ValueError, match="valid names: global_only, ls"):
        build_fairhuman_weighting("fairgrad3")
    with pytest.raises(ValueError, match="unknown option"):
        build_fairhuman_weighting("dwa", temprature=2.0)


@pytest.mark.parametrize("name", ALL_WEIGHTINGS)
def test_every_name_builds_and_logs_three_weights(name: str) -> None:
    net, x, noise, face, hand = _denoiser_batch()
    logged: list[tuple[dict, int]] = []
    weighting = build_fairhuman_weighting(name, **({"seed": 0} if name == "rlw" else {}))
    step = FairHumanStep(weighting, net.parameters(), log=lambda m, s: logged.append((dict(m), s)))
    output = net(x)
    result = step(fairhuman_losses(output, noise, face, hand), output=output, step=7)
    assert result.weights.shape == (3,)
    assert bool(torch.isfinite(result.weights).all())
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in step.params)
    ((metrics, at),) = logged
    assert at == 7
    for i, key in enumerate(("global", "face", "hand")):
        assert metrics[f"fairhuman/w_{key}"] == pytest.approx(float(result.weights[i]))
        assert metrics[f"fairhuman/loss_{key}"] > 0
    expected = {
        "global_only": [1.0, 0.0, 0.0],
        "ls": [1.0, 1.0, 1.0],
        "dwa": [1.0, 1.0, 1.0],  # first epoch
        "uw": [1.0, 1.0, 1.0],  # exp(-0) at the start
    }
    if name in expected:
        assert result.weights.tolist() == pytest.approx(expected[name])
    if name == "si":
        losses = result.losses.double()
        assert result.weights.double().tolist() == pytest.approx((1 / losses).tolist(), rel=1e-6)
    if name in ("mpd", "nash_mtl", "mpd_output"):
        assert result.backward.residual < 1e-8 and bool((result.weights > 0).all())


def test_dwa_is_epoch_averaged_and_checkpointed() -> None:
    weighting = build_fairhuman_weighting("dwa")
    assert isinstance(weighting.method, DWA) and weighting.method.mode == "epoch"
    net, x, noise, face, hand = _denoiser_batch()
    step = FairHumanStep(weighting, list(net.parameters()))
    scales = {0: torch.tensor([1.0, 1.0, 1.0]), 1: torch.tensor([0.5, 1.0, 2.0])}
    history = []
    for epoch in range(3):
        for _ in range(2):
            output = net(x)
            losses = fairhuman_losses(output, noise, face, hand)
            factor = scales.get(epoch, torch.ones(3))
            scaled = {k: v * f for (k, v), f in zip(losses.items(), factor)}
            history.append(step(scaled).weights.double())
        weighting.end_epoch()
    assert history[0].tolist() == pytest.approx([1, 1, 1]) and history[3].tolist() == pytest.approx([1, 1, 1])
    # epoch 2: ratios of epoch-1 means over epoch-0 means (the loss values barely move at lr 0)
    assert history[4][2] > history[4][0]  # the hand loss rose (x2) and gets the most weight
    assert float(history[4].sum()) == pytest.approx(3.0)
    state = weighting.state_dict()
    fresh = build_fairhuman_weighting("dwa")
    fresh.load_state_dict(state)
    assert fresh.method.current_weights(3).tolist() == pytest.approx(
        weighting.method.current_weights(3).tolist()
    )
    with pytest.raises(ValueError, match="is for 'dwa'"):
        build_fairhuman_weighting("mpd").load_state_dict(state)


def test_nash_mtl_follows_the_degenerate_rule_never_silent_ones() -> None:
    weighting = build_fairhuman_weighting("nash_mtl")
    assert isinstance(weighting.method, NashMTL)
    # a batch without hands: the hand objective's gradient is zero -> weight 0, reported, warned
    g = torch.tensor([[1.0, 0.2, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    reset_degenerate_warnings()
    with pytest.warns(DegenerateGramianWarning, match="zero"):
        solution = weighting.method.solve(g @ g.T)
    assert solution.dropped == (2,) and solution.weights[2].item() == 0.0
    assert solution.weights[:2].tolist() != pytest.approx([1.0, 1.0])
    # opposite gradients (no common descent direction): bounded ridge, not [1, 1, 1]
    g = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    reset_degenerate_warnings()
    with pytest.warns(DegenerateGramianWarning, match="no common descent direction"):
        solution = weighting.method.solve(g @ g.T)
    assert solution.ridge > 0 and bool(torch.isfinite(solution.weights).all())
    assert solution.weights.tolist() != pytest.approx([1.0, 1.0, 1.0])
    # the fixed point of the kept objectives holds: (A w) = 1 / w (Nash bargaining, alpha = 1)
    g = torch.tensor([[1.0, 0.5], [0.2, 2.0], [0.7, 0.7]], dtype=torch.float64)
    a = g @ g.T
    w = weighting.method.solve(a).weights
    assert (a @ w).tolist() == pytest.approx((1 / w).tolist(), rel=1e-8)
