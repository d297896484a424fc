"""DiffusionBaseConfig: validation, (de)serialisation, and the builders' shapes and latent factor."""

from __future__ import annotations

import json

import pytest
import torch

from fp_diffusion.base.config import (
    ConfigError,
    DiffusionBaseConfig,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)


def test_defaults_and_round_trip() -> None:
    config = DiffusionBaseConfig()
    assert config.latent_factor == 4 and config.latent_size == 16 and config.total_factor == 16
    again = DiffusionBaseConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and isinstance(again.unet_cross_attention, tuple)
    tiny = DiffusionBaseConfig.tiny(prediction_type="v_prediction")
    assert DiffusionBaseConfig.from_dict(tiny.to_dict()) == tiny and tiny.latent_factor == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"resolution": 40}, "resolution 40 is not divisible by 16"),
        ({"vae_block_out_channels": (16, 30, 64)}, "divisible by the norm groups 8"),
        ({"unet_cross_attention": (True, False)}, "one per UNet block"),
        ({"prediction_type": "sample"}, "prediction_type must be one of"),
        ({"caption_dropout": 1.5}, "caption_dropout must be a number >= 0 and <= 1.0"),
        ({"beta_start": 0.02}, "beta_start < beta_end"),
        ({"unet_epochs": 0}, "unet_epochs must be an int >= 1"),
        ({"text_hidden_size": 66}, "not divisible by text_heads 4"),
        ({"mixed_precision": "fp8"}, "mixed_precision must be one of"),
    ],
)
def test_validation(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DiffusionBaseConfig(**overrides)


def test_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown diffusion-base setting\(s\) \['epochs'\]"):
        DiffusionBaseConfig.from_dict({"epochs": 3})


def test_builders_shapes() -> None:
    config = DiffusionBaseConfig.tiny()
    torch.manual_seed(0)
    vae, unet, text = build_vae(config), build_unet(config), build_text_encoder(config)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(x).latent_dist.mean
        assert latents.shape == (2, 4, 8, 8)  # 2 VAE blocks: one halving
        assert vae.decode(latents).sample.shape == (2, 3, 16, 16)
        states = text(torch.randint(0, 49408, (2, 8)))[0]
        assert states.shape == (2, 8, 16)
        out = unet(latents, torch.tensor([1, 999]), states).sample
    assert out.shape == latents.shape
    assert unet.config.cross_attention_dim == 16 and text.config.vocab_size == 49408
    assert unet.config.down_block_types == ("CrossAttnDownBlock2D", "DownBlock2D")
    assert unet.config.up_block_types == ("UpBlock2D", "CrossAttnUpBlock2D")
    assert text.config.max_position_embeddings == 8


def test_default_latent_is_four_times_smaller() -> None:
    vae = build_vae(DiffusionBaseConfig())
    with torch.no_grad():
        assert vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean.shape == (1, 4, 16, 16)


def test_scheduler_is_sd_like() -> None:
    scheduler = build_scheduler(DiffusionBaseConfig(prediction_type="v_prediction"))
    assert scheduler.config.num_train_timesteps == 1000 and scheduler.config.beta_schedule == "scaled_linear"
    assert scheduler.config.prediction_type == "v_prediction"
    # scaled_linear: beta_t = (linspace(sqrt(b0), sqrt(b1), T))^2
    assert float(scheduler.betas[0]) == pytest.approx(0.00085) and float(
        scheduler.betas[-1]
    ) == pytest.approx(0.012)
    assert float(scheduler.betas[499]) == pytest.approx(
        (0.00085**0.5 + 499 / 999 * (0.012**0.5 - 0.00085**0.5)) ** 2, rel=1e-5
    )
