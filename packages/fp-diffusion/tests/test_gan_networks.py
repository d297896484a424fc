"""Pix2PixHD networks: upstream's parameter counts, hand-counted small ones, shapes, init, size checks."""

from __future__ import annotations

import pytest
import torch

from fp_diffusion.gan import (
    ConfigError,
    GlobalGenerator,
    LocalEnhancer,
    Pix2PixHDConfig,
    build_discriminator,
    build_generator,
    count_parameters,
)


def test_default_parameter_counts_equal_upstream_pix2pixhd() -> None:
    # label_nc 19, no instance channel, instance norm: ngf 64, 4 downsamplings, 9 blocks; ndf 64, 3 layers,
    # 2 scales, D input 19 + 3 channels. NVIDIA pix2pixHD's GlobalGenerator has 182,493,443 parameters and
    # its MultiscaleDiscriminator 5,568,386.
    config = Pix2PixHDConfig()
    assert config.input_nc == 19 and config.discriminator_input_nc == 22
    with torch.device("meta"):
        assert count_parameters(build_generator(config)) == 182_493_443
        assert count_parameters(build_discriminator(config)) == 5_568_386


def test_small_parameter_counts_by_hand() -> None:
    config = Pix2PixHDConfig(label_nc=2, ngf=4, n_downsample=1, n_blocks=1, ndf=4, n_layers_D=1, num_D=1)
    # G: 7x7 2->4 (2*4*49+4=396), 3x3 s2 4->8 (4*8*9+8=296), block 2*(8*8*9+8)=1168,
    #    convT 8->4 (8*4*9+4=292), 7x7 4->3 (4*3*49+3=591)
    assert count_parameters(build_generator(config)) == 396 + 296 + 1168 + 292 + 591
    # D on 2+3 channels: 4x4 s2 5->4 (5*4*16+4=324), 4x4 s1 4->8 (4*8*16+8=520), 4x4 8->1 (8*16+1=129)
    assert count_parameters(build_discriminator(config)) == 324 + 520 + 129
    # the edge channel adds one input channel to G's first conv (49 * 4 weights) and to D's (16 * 4)
    edged = Pix2PixHDConfig(**{**config.to_dict(), "edge_channel": True})
    assert count_parameters(build_generator(edged)) == 2743 + 49 * 4
    assert count_parameters(build_discriminator(edged)) == 973 + 16 * 4


def test_toy_counts_and_shapes() -> None:
    config = Pix2PixHDConfig.toy()
    generator, discriminator = build_generator(config), build_discriminator(config)
    assert count_parameters(generator) == 285_059
    assert count_parameters(discriminator) == 95_458
    labels = torch.randint(0, 19, (2, 64, 64))
    fake = generator.from_labels(labels)
    assert fake.shape == (2, 3, 64, 64)
    assert fake.abs().max() <= 1
    scores = discriminator(torch.cat([generator.encode(labels), fake], dim=1))
    assert len(scores) == 2 and all(len(scale) == config.n_layers_D + 2 for scale in scores)
    assert [tuple(f.shape) for f in scores[0]] == [
        (2, 16, 33, 33),
        (2, 32, 17, 17),
        (2, 64, 18, 18),
        (2, 1, 19, 19),
    ]
    assert scores[1][-1].shape == (2, 1, 11, 11)  # on the 32x32 average-pooled copy


def test_no_norm_parameters_and_normal_init() -> None:
    torch.manual_seed(0)
    net = GlobalGenerator(19, 3, ngf=32, n_downsample=2, n_blocks=2)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert norms and all(not m.affine and sum(p.numel() for p in m.parameters()) == 0 for m in norms)
    weights = torch.cat(
        [m.weight.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    ).detach()
    assert abs(float(weights.mean())) < 1e-3
    assert float(weights.std()) == pytest.approx(0.02, rel=0.02)


def test_local_enhancer_shapes_and_global_weights() -> None:
    config = Pix2PixHDConfig.toy(generator="local", ngf=8)
    generator = build_generator(config)
    assert isinstance(generator.net, LocalEnhancer)
    assert generator.from_labels(torch.randint(0, 19, (1, 64, 64))).shape == (1, 3, 64, 64)
    trained = GlobalGenerator(19, 3, ngf=16, n_downsample=2, n_blocks=3)
    generator.net.load_global(trained)
    first = generator.net.global_model[1]
    assert torch.equal(first.weight, trained.model[1].weight)
    # the global part is the 2*ngf global generator without its final pad / 7x7 conv / tanh
    assert count_parameters(generator.net.global_model) == count_parameters(trained) - (16 * 3 * 49 + 3)


def test_sizes_not_divisible_are_clear_errors() -> None:
    generator = build_generator(Pix2PixHDConfig.toy())  # 2 downsamplings: multiples of 4
    with pytest.raises(ConfigError, match=r"62x62 is not divisible by 4"):
        generator.from_labels(torch.zeros(1, 62, 62, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"divisible by 8 .*local enhancer"):
        Pix2PixHDConfig.toy(generator="local", resolution=36)
    with pytest.raises(ConfigError, match="divisible by 16"):
        Pix2PixHDConfig(resolution=100)
