"""ControlNetTrainConfig round trip and validation; the conditioning embedding fitted to the VAE factor."""

from __future__ import annotations

import pytest

from fp_diffusion.controlnet.config import (
    ControlNetConfigError,
    ControlNetTrainConfig,
    embedding_channels_for,
)


def test_round_trip_through_plain_dicts() -> None:
    config = ControlNetTrainConfig(
        conditioning_embedding_out_channels=(8, 16, 32), snapshot_epochs=[1, 3], lr_scheduler="cosine"
    )
    values = config.to_dict()
    assert values["snapshot_epochs"] == [1, 3] and values["conditioning_embedding_out_channels"] == [
        8,
        16,
        32,
    ]
    assert ControlNetTrainConfig.from_dict(values) == config


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"lr": 0}, "lr"),
        ({"lr_scheduler": "linear"}, "lr_scheduler"),
        ({"condition_dropout": 1.5}, "condition_dropout"),
        ({"proportion_empty_prompts": -0.1}, "proportion_empty_prompts"),
        ({"batch_size": 0}, "batch_size"),
        ({"snapshot_epochs": [0]}, "snapshot_epochs"),
        ({"mixed_precision": "fp8"}, "mixed_precision"),
        ({"max_grad_norm": 0}, "max_grad_norm"),
        ({"epochz": 1}, "epochz"),
    ],
)
def test_bad_settings_raise_naming_them(values: dict, match: str) -> None:
    with pytest.raises(ControlNetConfigError, match=match):
        ControlNetTrainConfig.from_dict(values)


def test_embedding_channels_follow_the_vae_factor() -> None:
    assert embedding_channels_for(8) == (16, 32, 96, 256)
    assert embedding_channels_for(4) == (16, 32, 96)
    assert embedding_channels_for(1) == (16,)
    assert embedding_channels_for(4, (8, 8, 8)) == (8, 8, 8)
    with pytest.raises(ControlNetConfigError, match=r"3 stride-2 convolutions but the VAE downsamples by 4"):
        embedding_channels_for(4, (16, 32, 96, 256))
    with pytest.raises(ControlNetConfigError, match="power of two"):
        embedding_channels_for(6)
