"""train_vae / train_denoiser: logging, samples, the scaling factor, errors, exact resume, and learning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fp_core.seeds import torch_generator
from fp_diffusion.base import (
    ConfigError,
    DiffusionBaseConfig,
    build_clip_tokenizer,
    build_scheduler,
    build_text_encoder,
    build_unet,
    measure_scaling_factor,
    train_denoiser,
    train_vae,
)
from fp_diffusion.base.sampling import tokenize

COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "blue": (0.1, 0.2, 0.9),
    "green": (0.1, 0.8, 0.2),
    "yellow": (0.9, 0.9, 0.1),
}


def blobs(count: int, size: int = 16) -> list[tuple[torch.Tensor, str]]:
    """A coloured ellipse on a grey background, captioned by its colour; images in [-1, 1]."""
    items = []
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(count):
        rng = np.random.default_rng(i)
        name = list(COLOURS)[i % len(COLOURS)]
        image = np.full((size, size, 3), 0.5) + rng.normal(0, 0.02, (size, size, 3))
        cy, cx = 0.5 + rng.uniform(-0.1, 0.1, 2)
        image[((yy - cy) / 0.3) ** 2 + ((xx - cx) / 0.22) ** 2 <= 1] = COLOURS[name]
        items.append((torch.from_numpy(image).permute(2, 0, 1).float().clamp(0, 1) * 2 - 1, f"a {name} oval"))
    return items


@pytest.fixture(scope="module")
def tokenizer():
    return build_clip_tokenizer(8)


def _images(items) -> torch.Tensor:
    return torch.stack([image for image, _ in items])


class Interrupt(RuntimeError):
    pass


def _crash_at(step: int):
    def log(metrics, at: int) -> None:
        if "train/loss" in metrics and at == step:
            raise Interrupt(f"stopped at step {at}")

    return log


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_vae_logs_scaling_factor_and_resumes_exactly(tmp_path: Path) -> None:
    config = DiffusionBaseConfig.tiny(vae_epochs=2, checkpoint_every=2)
    images = _images(blobs(12))
    logged: list[tuple[dict, int]] = []
    whole = train_vae(
        config,
        images,
        checkpoint_dir=tmp_path / "a",
        progress=False,
        log=lambda m, s: logged.append((dict(m), s)),
    )
    steps = [s for m, s in logged if "train/loss" in m]
    assert steps == list(range(6)) and all(np.isfinite(m["train/kl"]) for m, _ in logged if "train/kl" in m)
    final = [m for m, _ in logged if "vae/scaling_factor" in m][0]
    assert whole.config.scaling_factor == pytest.approx(final["vae/scaling_factor"])
    assert final["vae/scaling_factor"] == pytest.approx(1 / final["vae/latent_std"])
    assert measure_scaling_factor(whole, images, config.seed)[1] == pytest.approx(whole.config.scaling_factor)
    with pytest.raises(Interrupt):
        train_vae(config, images, checkpoint_dir=tmp_path / "b", progress=False, log=_crash_at(3))
    resumed = train_vae(config, images, checkpoint_dir=tmp_path / "b", progress=False)
    assert _same_weights(whole, resumed)


def test_denoiser_resumes_exactly(tmp_path: Path, tokenizer) -> None:
    config = DiffusionBaseConfig.tiny(
        unet_epochs=2, checkpoint_every=2, prediction_type="v_prediction", gradient_accumulation_steps=1
    )
    items = blobs(12)
    vae = train_vae(config, _images(items), checkpoint_dir=tmp_path / "vae", progress=False)
    grids: list[tuple[tuple, int]] = []
    unet, text = train_denoiser(
        config,
        vae,
        items,
        tokenizer,
        checkpoint_dir=tmp_path / "a",
        progress=False,
        on_samples=lambda grid, step: grids.append((grid.shape, step)),
        sample_every=4,
    )
    assert grids == [((16, 32, 3), 4), ((16, 32, 3), 6)]  # 2 samples of 16 px side by side
    with pytest.raises(Interrupt):
        train_denoiser(
            config, vae, items, tokenizer, checkpoint_dir=tmp_path / "b", progress=False, log=_crash_at(3)
        )
    unet_b, text_b = train_denoiser(
        config, vae, items, tokenizer, checkpoint_dir=tmp_path / "b", progress=False
    )
    assert _same_weights(unet, unet_b) and _same_weights(text, text_b)
    assert not unet.training and not text.training


def test_errors(tmp_path: Path, tokenizer) -> None:
    config = DiffusionBaseConfig.tiny()
    with pytest.raises(ValueError, match=r"images are \(8, 8\), the config's resolution is 16"):
        train_vae(config, torch.zeros(8, 3, 8, 8), checkpoint_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        train_vae(config, torch.full((8, 3, 16, 16), 3.0), checkpoint_dir=tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="3 images, fewer than the batch size 4"):
        train_vae(config, torch.zeros(3, 3, 16, 16), checkpoint_dir=tmp_path / "c", progress=False)
    from fp_diffusion.base import build_vae

    with pytest.raises(ConfigError, match="model_max_length 32 != config.text_max_length 8"):
        train_denoiser(
            config, build_vae(config), blobs(4), build_clip_tokenizer(32), checkpoint_dir=tmp_path / "d"
        )
    with pytest.raises(TypeError, match="expected \\(image, caption str"):
        train_denoiser(
            config,
            build_vae(config),
            [(torch.zeros(3, 16, 16), 1)] * 4,
            tokenizer,
            checkpoint_dir=tmp_path / "e",
        )


def _denoising_loss(unet, text, vae, items, tokenizer, scheduler) -> float:
    """Mean epsilon MSE on fixed noise and timesteps over ``items`` (conditioned on their captions)."""
    generator = torch_generator(123, "eval")
    with torch.no_grad():
        latents = vae.encode(_images(items)).latent_dist.mean * vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(50, 950, (len(items),), generator=generator)
        states = text(tokenize(tokenizer, [c for _, c in items]))[0]
        pred = unet(scheduler.add_noise(latents, noise, t), t, states).sample
    return float(((pred - noise) ** 2).mean())


@pytest.mark.slow
def test_training_lowers_the_denoising_loss(tmp_path: Path, tokenizer) -> None:
    config = DiffusionBaseConfig.tiny(
        vae_epochs=10, unet_epochs=12, unet_batch_size=8, unet_lr=2e-3, caption_dropout=0.1
    )
    items = blobs(48)
    vae = train_vae(config, _images(items), checkpoint_dir=tmp_path / "vae", progress=False)
    unet, text = train_denoiser(
        config, vae, items, tokenizer, checkpoint_dir=tmp_path / "unet", progress=False
    )
    torch.manual_seed(0)
    scheduler = build_scheduler(config)
    before = _denoising_loss(build_unet(config), build_text_encoder(config), vae, items, tokenizer, scheduler)
    after = _denoising_loss(unet, text, vae, items, tokenizer, scheduler)
    assert after < 0.6 * before, (before, after)
