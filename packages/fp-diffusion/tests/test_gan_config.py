"""Pix2PixHDConfig: round trip, validation, toy scale, the learning-rate schedule."""

from __future__ import annotations

import pytest

from fp_diffusion.gan import TOY_SETTINGS, ConfigError, Pix2PixHDConfig, lr_factor


def test_round_trip_and_unknown_keys() -> None:
    config = Pix2PixHDConfig.toy(edge_channel=True, lambda_l1=1.5)
    assert Pix2PixHDConfig.from_dict(config.to_dict()) == config
    assert config.input_nc == 20 and config.discriminator_input_nc == 23
    assert {k: config.to_dict()[k] for k in TOY_SETTINGS} == TOY_SETTINGS
    with pytest.raises(ConfigError, match=r"unknown Pix2PixHD setting\(s\) \['ngff'\]"):
        Pix2PixHDConfig.from_dict({"ngff": 3})


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("label_nc", 0, "label_nc must be an int >= 1"),
        ("generator", "resnet", "generator must be one of"),
        ("beta1", 1.0, r"beta1 must be in \[0, 1\)"),
        ("lr", 0.0, "lr must be > 0"),
        ("lambda_feat", -1.0, "lambda_feat must be a number >= 0"),
        ("mixed_precision", "fp8", "mixed_precision must be one of"),
        ("niter", -1, "niter must be an int >= 0"),
    ],
)
def test_validation(key: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Pix2PixHDConfig(**{key: value})
    with pytest.raises(ConfigError, match="niter \\+ niter_decay must be >= 1"):
        Pix2PixHDConfig(niter=0, niter_decay=0)


def test_lr_factor_is_constant_then_linear_to_zero() -> None:
    assert [lr_factor(e, 2, 4) for e in range(6)] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert lr_factor(6, 2, 4) == 0.0  # after the last epoch
    assert [lr_factor(e, 3, 0) for e in range(3)] == [1.0, 1.0, 1.0]
