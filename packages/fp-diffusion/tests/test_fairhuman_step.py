"""The FairHuman micro-step on a tiny UNet: explicit (ControlNet-like) parameters, accumulation, loss scale."""

from __future__ import annotations

import pytest
import torch

from fp_diffusion.fairhuman import (
    FairHumanStep,
    LoraSettings,
    add_lora,
    build_fairhuman_weighting,
    fairhuman_losses,
)
from fp_gradagg import DegenerateGramianWarning, reset_degenerate_warnings, scale_losses

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")


from _tiny_sd import tiny_unet  # noqa: E402  (tests/_tiny_sd.py, on the pytest pythonpath)


def batch(n: int = 4, seed: int = 3) -> dict[str, torch.Tensor]:
    """Noisy latents, timesteps, text states, the noise, face / hand masks (the hand only in image 0)."""
    gen = torch.Generator().manual_seed(seed)
    face = torch.zeros(n, 1, 8, 8)
    face[:, :, 1:4, 2:6] = 1.0
    hand = torch.zeros(n, 1, 8, 8)
    hand[0, :, 5:7, 1:3] = 1.0
    hand[1:, :, 4:6, 5:8] = 1.0
    return {
        "x": torch.randn(n, 4, 8, 8, generator=gen),
        "t": torch.randint(0, 1000, (n,), generator=gen),
        "e": torch.randn(n, 5, 8, generator=gen),
        "noise": torch.randn(n, 4, 8, 8, generator=gen),
        "face": face,
        "hand": hand,
        "cond": torch.rand(n, 3, 64, 64, generator=gen),
    }


def take(data: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    return {k: v[rows] for k, v in data.items()}


@pytest.fixture(scope="module")
def lora_unet():
    unet = tiny_unet()
    params = add_lora(unet, LoraSettings(rank=4))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in params:
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return unet, params


def lora_losses(unet, data):
    pred = unet(data["x"], data["t"], encoder_hidden_states=data["e"]).sample
    return fairhuman_losses(pred, data["noise"], data["face"], data["hand"]), pred


def grads(params) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in params]


def zero(params) -> None:
    for p in params:
        p.grad = None


def reference_direction(losses: dict[str, torch.Tensor], params, weights: torch.Tensor) -> list[torch.Tensor]:
    """Σ_i w_i g_i from K separate autograd.grad calls (the slow reference)."""
    per = [torch.autograd.grad(losses[k], params, retain_graph=True) for k in ("global", "face", "hand")]
    w = weights.double().tolist()
    return [sum(w[i] * per[i][j] for i in range(3)) for j in range(len(params))]


def test_controlnet_like_path_gets_the_weighted_direction_from_a_generator() -> None:
    unet = tiny_unet()
    unet.requires_grad_(False)
    controlnet = diffusers.ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 4, 4, 4))
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():  # the zero convolutions start at 0: give them values so every parameter is reached
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            module.weight.copy_(0.1 * torch.randn(module.weight.shape, generator=gen))
    data = batch()
    step = FairHumanStep(build_fairhuman_weighting("mpd"), controlnet.parameters())  # a one-shot generator
    assert isinstance(step.params, list) and len(step.params) == len(list(controlnet.parameters()))

    def losses():
        down, mid = controlnet(
            data["x"],
            data["t"],
            encoder_hidden_states=data["e"],
            controlnet_cond=data["cond"],
            return_dict=False,
        )
        pred = unet(
            data["x"],
            data["t"],
            encoder_hidden_states=data["e"],
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        return fairhuman_losses(pred, data["noise"], data["face"], data["hand"])

    for _ in range(2):  # the second call still sees every parameter (no exhausted generator)
        zero(step.params)
        result = step(losses())
        written = grads(step.params)
        assert all(p.grad is not None for p in step.params)
        assert unet.conv_in.weight.grad is None  # the frozen UNet gets nothing
    assert result.backward.residual < 1e-8 and bool((result.weights > 0).all())
    assert result.weights.tolist() != pytest.approx([1.0, 1.0, 1.0])  # not the plain sum
    expected = reference_direction(losses(), step.params, result.weights)
    total = sum(float(e.abs().sum()) for e in expected)
    assert total > 0 and sum(float(w.abs().sum()) for w in written) > 0
    for got, want in zip(written, expected):
        torch.testing.assert_close(got.double(), want.double(), rtol=1e-4, atol=1e-7)
    exhausted = controlnet.parameters()
    list(exhausted)
    with pytest.raises(ValueError, match="exhausted generator"):
        FairHumanStep("mpd", exhausted)


@pytest.mark.parametrize("name", ["mpd", "mpd_output", "si"])
def test_accumulation_adds_the_micro_batch_directions(lora_unet, name: str) -> None:
    unet, params = lora_unet
    data = batch()
    halves = [take(data, slice(0, 2)), take(data, slice(2, 4))]
    alone = []
    for half in halves:  # each half batch on its own, no accumulation
        zero(params)
        losses, pred = lora_losses(unet, half)
        FairHumanStep(name, params)(losses, output=pred)
        alone.append(grads(params))
    zero(params)
    step = FairHumanStep(name, params, accumulation_steps=2)
    for half in halves:
        losses, pred = lora_losses(unet, half)
        step(losses, output=pred)
    accumulated = grads(params)
    for got, first, second in zip(accumulated, *alone):
        torch.testing.assert_close(got, (first + second) / 2, rtol=1e-4, atol=1e-8)
    gap = max(float((got - second / 2).abs().max()) for got, second in zip(accumulated, alone[1]))
    assert gap > 1e-4  # not just the last micro-step's direction


@pytest.mark.parametrize("name", ["mpd", "nash_mtl", "mpd_output", "dwa", "si"])
def test_weights_do_not_depend_on_the_loss_scale(lora_unet, name: str) -> None:
    unet, params = lora_unet
    data = batch(2)
    zero(params)
    losses, pred = lora_losses(unet, data)
    plain = FairHumanStep(name, params)(losses, output=pred)
    plain_grads = grads(params)
    zero(params)
    losses, pred = lora_losses(unet, data)
    scaled = {k: v * 1024 for k, v in losses.items()}
    result = FairHumanStep(name, params)(scaled, output=pred, grad_scale=1024)
    torch.testing.assert_close(result.weights.double(), plain.weights.double(), rtol=1e-6, atol=0)
    torch.testing.assert_close(result.losses, plain.losses)
    for got, want in zip(grads(params), plain_grads):  # .grad stays scaled, for the scaler to unscale
        torch.testing.assert_close(got / 1024, want, rtol=1e-4, atol=1e-10)
    if name in ("mpd", "mpd_output"):  # undeclared, the scale would change MPD's weights
        zero(params)
        losses, pred = lora_losses(unet, data)
        wrong = FairHumanStep(name, params)({k: v * 1024 for k, v in losses.items()}, output=pred)
        assert float(wrong.weights[0]) < 0.01 * float(plain.weights[0])


def test_a_grad_scaler_gives_the_unscaled_weights(lora_unet) -> None:
    unet, params = lora_unet
    data = batch(2)
    zero(params)
    losses, _ = lora_losses(unet, data)
    plain = FairHumanStep("mpd", params)(losses)
    plain_grads = grads(params)
    zero(params)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    losses, _ = lora_losses(unet, data)
    scaled = scale_losses([losses[k] for k in ("global", "face", "hand")], scaler)  # [3], scaler initialised
    result = FairHumanStep("mpd", params, accumulation_steps=2)(scaled, grad_scale=scaler)
    torch.testing.assert_close(result.weights.double(), plain.weights.double(), rtol=1e-6, atol=0)
    for got, want in zip(grads(params), plain_grads):  # scale 2^10, accumulation 1/2
        torch.testing.assert_close(got, want * 2.0**9, rtol=1e-4, atol=1e-8)
    fresh = torch.amp.GradScaler("cpu")
    with pytest.raises(ValueError, match="never initialised"):
        FairHumanStep("mpd", params)(lora_losses(unet, data)[0], grad_scale=fresh)


def test_empty_hand_mask_drops_the_hand_objective_and_logs_it(lora_unet) -> None:
    unet, params = lora_unet
    data = batch(2)
    data["hand"] = torch.zeros_like(data["hand"])
    zero(params)
    losses, _ = lora_losses(unet, data)
    logged = []
    reset_degenerate_warnings()
    with pytest.warns(DegenerateGramianWarning, match="zero"):
        result = FairHumanStep("mpd", params, log=lambda m, s: logged.append(m))(losses, step=0)
    assert result.weights[2].item() == 0.0 and result.backward.dropped == (2,)
    assert logged[0]["fairhuman/dropped"] == 1.0 and logged[0]["fairhuman/loss_hand"] == 0.0
    assert result.weights[0].item() > 0 and result.weights[1].item() > 0


def test_bad_calls(lora_unet) -> None:
    unet, params = lora_unet
    losses, _ = lora_losses(unet, batch(2))
    with pytest.raises(ValueError, match="needs output=eps_hat"):
        FairHumanStep("mpd_output", params)(losses)
    with pytest.raises(ValueError, match="exactly the keys"):
        FairHumanStep("mpd", params)({"global": losses["global"]})
    with pytest.raises(ValueError, match="accumulation_steps"):
        FairHumanStep("mpd", params, accumulation_steps=0)
