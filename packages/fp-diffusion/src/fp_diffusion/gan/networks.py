"""Pix2PixHD's networks (NVIDIA pix2pixHD's architecture, written from its description).

* :class:`GlobalGenerator`: reflection pad 3 + 7x7 conv to ``ngf``, ``n_downsample`` stride-2 3x3 convs
  doubling the channels, ``n_blocks`` residual blocks, as many stride-2 3x3 transposed convs halving them
  back, reflection pad 3 + 7x7 conv to the image channels, tanh. Norm + ReLU after every conv but the last.
* :class:`LocalEnhancer`: the global generator (``2 * ngf``, without its last pad/conv/tanh) on the input
  average-pooled to half size, plus a full-resolution front-end (7x7 conv, stride-2 conv) whose output is
  added to the global features before a back-end (residual blocks, transposed conv, 7x7 conv, tanh).
* :class:`MultiscaleDiscriminator`: ``num_D`` :class:`NLayerDiscriminator` PatchGANs, the i-th on the input
  average-pooled i times; each returns the outputs of all its layer groups (the last is the patch score).

Norms are instance norms without affine parameters; convolutions are initialised N(0, 0.02) (norm weights
N(1, 0.02) where a norm has them). :class:`Pix2PixHDGenerator` wraps a generator with its config and the
input encoding (no parameters of its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from fp_diffusion.gan.config import Pix2PixHDConfig
from fp_diffusion.gan.encoding import encode_input

__all__ = [
    "GlobalGenerator",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "NLayerDiscriminator",
    "Pix2PixHDGenerator",
    "ResnetBlock",
    "build_discriminator",
    "build_generator",
    "count_parameters",
    "init_weights",
]

NormFactory = Callable[[int], nn.Module]


def instance_norm(channels: int) -> nn.Module:
    """Instance norm without affine parameters or running statistics (upstream's ``instance`` norm)."""
    return nn.InstanceNorm2d(channels, affine=False)


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv / transposed-conv weights; N(1, 0.02) weights and 0 biases for affine norms."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d | nn.InstanceNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def count_parameters(module: nn.Module) -> int:
    """``sum(p.numel())`` over the module's parameters (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())


class ResnetBlock(nn.Module):
    """``x + f(x)`` with ``f`` = reflection pad 1, 3x3 conv, norm, ReLU, reflection pad 1, 3x3 conv, norm."""

    def __init__(self, channels: int, norm: NormFactory = instance_norm) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3),
            norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C, H, W]``."""
        return x + self.block(x)


def _global_layers(
    input_nc: int, output_nc: int, ngf: int, n_downsample: int, n_blocks: int, norm: NormFactory
) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), norm(ngf), nn.ReLU(True)]
    for i in range(n_downsample):
        c = ngf * 2**i
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), norm(2 * c), nn.ReLU(True)]
    c = ngf * 2**n_downsample
    layers += [ResnetBlock(c, norm) for _ in range(n_blocks)]
    for i in range(n_downsample):
        c = ngf * 2 ** (n_downsample - i)
        layers += [
            nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
            norm(c // 2),
            nn.ReLU(True),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    return layers


class GlobalGenerator(nn.Module):
    """Upstream's ``GlobalGenerator``: ``[B, input_nc, H, W] -> [B, output_nc, H, W]`` in [-1, 1]
    (``H`` and ``W`` multiples of ``2 ** n_downsample``)."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        ngf: int = 64,
        n_downsample: int = 4,
        n_blocks: int = 9,
        norm: NormFactory = instance_norm,
    ) -> None:
        super().__init__()
        self.model = nn.Sequential(*_global_layers(input_nc, output_nc, ngf, n_downsample, n_blocks, norm))
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    """Upstream's ``LocalEnhancer`` with one enhancer: ``[B, input_nc, H, W] -> [B, output_nc, H, W]``.

    ``global_model`` is a :class:`GlobalGenerator` of width ``2 * ngf`` without its last three layers, run on
    the input average-pooled to half size (3x3, stride 2, padding 1, ``count_include_pad=False``); its
    features are added to the full-resolution front-end's. ``H``, ``W``: multiples of ``2 ** (n_downsample +
    1)``. :meth:`load_global` copies a trained :class:`GlobalGenerator`'s weights into the global part.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        ngf: int = 32,
        n_downsample: int = 4,
        n_blocks: int = 9,
        n_blocks_local: int = 3,
        norm: NormFactory = instance_norm,
    ) -> None:
        super().__init__()
        layers = _global_layers(input_nc, output_nc, 2 * ngf, n_downsample, n_blocks, norm)
        self.global_model = nn.Sequential(*layers[:-3])
        self.front = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7),
            norm(ngf),
            nn.ReLU(True),
            nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1),
            norm(2 * ngf),
            nn.ReLU(True),
        )
        self.back = nn.Sequential(
            *[ResnetBlock(2 * ngf, norm) for _ in range(n_blocks_local)],
            nn.ConvTranspose2d(2 * ngf, ngf, 3, stride=2, padding=1, output_padding=1),
            norm(ngf),
            nn.ReLU(True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, 7),
            nn.Tanh(),
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.front(x) + self.global_model(self.downsample(x)))

    def load_global(self, generator: GlobalGenerator) -> None:
        """Copy the weights of a trained ``GlobalGenerator`` (width ``2 * ngf``) into the global part."""
        own = self.global_model.state_dict()
        theirs = {k: v for k, v in generator.model.state_dict().items() if k in own}
        self.global_model.load_state_dict(theirs, strict=True)


class NLayerDiscriminator(nn.Module):
    """A PatchGAN: 4x4 convs (padding 2), ``n_layers`` stride-2, one stride-1, one to 1 channel; LeakyReLU
    0.2, norm after all but the first and the last; no sigmoid (LSGAN). Returns the ``n_layers + 2`` group
    outputs, the last being the patch scores ``[B, 1, h, w]``."""

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: NormFactory = instance_norm
    ) -> None:
        super().__init__()
        kw, pad = 4, math.ceil((4 - 1) / 2)
        groups: list[list[nn.Module]] = [
            [nn.Conv2d(input_nc, ndf, kw, stride=2, padding=pad), nn.LeakyReLU(0.2, True)]
        ]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            groups.append([nn.Conv2d(prev, nf, kw, stride=2, padding=pad), norm(nf), nn.LeakyReLU(0.2, True)])
        prev, nf = nf, min(nf * 2, 512)
        groups.append([nn.Conv2d(prev, nf, kw, stride=1, padding=pad), norm(nf), nn.LeakyReLU(0.2, True)])
        groups.append([nn.Conv2d(nf, 1, kw, stride=1, padding=pad)])
        self.layers = nn.ModuleList(nn.Sequential(*group) for group in groups)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on the input ``cat(one-hot label (+ edges), image) [B, input_nc, H, W]`` and its
    average-pooled copies (3x3, stride 2, padding 1, ``count_include_pad=False``). Returns, per scale (full
    resolution first), the list of that PatchGAN's group outputs."""

    def __init__(
        self,
        input_nc: int,
        ndf: int = 64,
        n_layers: int = 3,
        num_D: int = 2,
        norm: NormFactory = instance_norm,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.apply(init_weights)

    @property
    def num_D(self) -> int:
        return len(self.scales)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            results.append(scale(x))
        return results


class Pix2PixHDGenerator(nn.Module):
    """A generator (:class:`GlobalGenerator` or :class:`LocalEnhancer`) with its config and input encoding.

    ``forward`` takes the encoded input ``[B, input_nc, H, W]``; :meth:`encode` builds it from label maps
    ``[B, H, W]``; :meth:`from_labels` does both. Outputs are ``[B, 3, H, W]`` in [-1, 1].
    """

    def __init__(self, config: Pix2PixHDConfig) -> None:
        super().__init__()
        self.config = config
        if config.generator == "global":
            self.net: nn.Module = GlobalGenerator(
                config.input_nc, config.output_nc, config.ngf, config.n_downsample, config.n_blocks
            )
        else:
            self.net = LocalEnhancer(
                config.input_nc,
                config.output_nc,
                config.ngf,
                config.n_downsample,
                config.n_blocks,
                config.n_blocks_local,
            )

    def encode(
        self, labels: torch.Tensor, instances: torch.Tensor | None = None, where: str = "label map"
    ) -> torch.Tensor:
        """``labels [B, H, W]`` -> ``[B, input_nc, H, W]`` after checking the ids and the size."""
        self.config.check_size(int(labels.shape[-2]), int(labels.shape[-1]))
        return encode_input(
            labels,
            self.config.label_nc,
            edge_channel=self.config.edge_channel,
            instances=instances,
            where=where,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def from_labels(self, labels: torch.Tensor, instances: torch.Tensor | None = None) -> torch.Tensor:
        """``labels [B, H, W]`` -> images ``[B, 3, H, W]`` in [-1, 1]."""
        return self(self.encode(labels, instances))


def build_generator(config: Pix2PixHDConfig) -> Pix2PixHDGenerator:
    """The generator ``config`` describes (freshly initialised; on the default device, e.g. ``meta``)."""
    return Pix2PixHDGenerator(config)


def build_discriminator(config: Pix2PixHDConfig) -> MultiscaleDiscriminator:
    """The multiscale discriminator on ``cat(generator input, image)`` (``config.discriminator_input_nc``)."""
    return MultiscaleDiscriminator(config.discriminator_input_nc, config.ndf, config.n_layers_D, config.num_D)
