"""A StyleGAN2 generator (Karras et al. 2020) whose state dict matches NVIDIA's ``stylegan2-ada-pytorch``.

Written here from the paper and the facts of the reference implementation (``training/networks.py`` and
``torch_utils/ops`` of NVlabs/stylegan2-ada-pytorch), so that a converted ``G_ema`` loads with ``strict=True``:

* mapping: ``z [B, z_dim]`` -> pixel norm -> ``fc0 .. fc{L-1}`` (equalised lr, lr multiplier 0.01, leaky ReLU
  0.2 times sqrt(2)) -> ``w``, broadcast to ``num_ws``; truncation ``w_avg + psi (w - w_avg)`` with the
  ``mapping.w_avg`` buffer;
* synthesis: ``b4 .. b{res}`` blocks; ``b4`` holds ``const [C, 4, 4]``, ``conv1`` and ``torgb``; every other
  block ``conv0`` (3x3, upsampling by 2: transposed stride-2 convolution then the [1, 3, 3, 1] FIR filter, as
  ``conv2d_resample``), ``conv1`` (3x3) and ``torgb`` (modulated 1x1 without demodulation); each conv is a
  modulated 3x3 with weight demodulation, noise ``noise_const`` / random times the learned ``noise_strength``,
  bias and leaky ReLU(0.2) times sqrt(2) (clamped at ``conv_clamp`` when set); skip architecture: the rgb image
  is upsampled with the FIR filter and summed with every block's ``torgb``;
* channels per resolution ``min(channel_base // res, channel_max)``; ``num_ws = 2 log2(res) - 2`` (14 at 256).
  The block at ``res`` reads ws ``[i, i + num_conv + 1)`` and advances ``i`` by ``num_conv``: its ``torgb``
  shares the w of the next block's ``conv0``.

Names (``mapping.fc0.weight``, ``mapping.w_avg``, ``synthesis.b4.const``, ``synthesis.b8.conv0.affine.weight``,
``synthesis.b8.conv0.noise_const``, ``...noise_strength``, ``...resample_filter``, ``synthesis.b256.torgb.weight``)
are the reference's. The modulated conv runs unfused (activations scaled before and after the plain conv, the
reference's training-mode path), in float32 (the reference's fp16 blocks change no weights).

:class:`StyleGAN2Config` defaults are the FFHQ-256 ``paper256`` config of stylegan2-ada-pytorch's ``train.py``:
``fmaps=0.5`` so ``channel_base = int(0.5 * 32768) = 16384``, ``channel_max = 512``, 8 mapping layers
(``conv_clamp = 256`` in its training runs; ``None`` here unless set).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FIR_TAPS",
    "FullyConnected",
    "MappingNetwork",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGB",
    "fir_filter",
    "upfirdn",
]

FIR_TAPS = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class StyleGAN2Config:
    """Architecture of an unconditional StyleGAN2 generator (defaults: FFHQ 256, ``paper256``)."""

    z_dim: int = 512
    w_dim: int = 512
    resolution: int = 256
    channel_base: int = 16384
    channel_max: int = 512
    mapping_layers: int = 8
    img_channels: int = 3
    lr_multiplier: float = 0.01
    conv_clamp: float | None = None

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 4 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {r}")
        for name in ("z_dim", "w_dim", "channel_base", "channel_max", "mapping_layers", "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.channel_base < r:
            raise ValueError(
                f"channel_base {self.channel_base} gives no channels at resolution {r} (need >= {r})"
            )

    @property
    def block_resolutions(self) -> list[int]:
        """``[4, 8, ..., resolution]``."""
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def channels(self, res: int) -> int:
        """``min(channel_base // res, channel_max)``."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """``2 * log2(resolution) - 2``: one w per conv plus one for the last ``torgb``."""
        return 2 * int(math.log2(self.resolution)) - 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fir_filter(taps: tuple[float, ...] = FIR_TAPS) -> torch.Tensor:
    """The normalised 2-D FIR filter ``outer(taps, taps) / sum``: ``[4, 4]`` (the ``resample_filter`` buffer)."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn(x: torch.Tensor, f: torch.Tensor, *, up: int, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """Zero-insert upsample ``x [B, C, H, W]`` by ``up``, pad ``pad = (before, after)`` on both axes, convolve
    each channel with ``f [k, k] * gain`` (true convolution: the filter is flipped)."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    kernel = (f * gain).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, kernel, groups=c)


def _bias_act(x: torch.Tensor, bias: torch.Tensor, clamp: float | None, *, lrelu: bool) -> torch.Tensor:
    x = x + bias.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))
    if lrelu:
        x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    return x.clamp(-clamp, clamp) if clamp is not None else x


class FullyConnected(nn.Module):
    """Equalised-lr linear layer: ``weight [out, in]`` stored as ``N(0, 1) / lr``, used times ``lr / sqrt(in)``;
    ``bias`` times ``lr``; optional leaky ReLU(0.2) times sqrt(2)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        lrelu: bool = False,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.lrelu = lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in] -> [B, out]``."""
        x = x.matmul((self.weight * self.weight_gain).t().to(x.dtype))
        return _bias_act(x, self.bias * self.bias_gain, None, lrelu=self.lrelu)


class MappingNetwork(nn.Module):
    """``z [B, z_dim] -> ws [B, num_ws, w_dim]`` (pixel norm, ``fc0 ..``, broadcast, truncation)."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.num_layers, self.num_ws = config.mapping_layers, config.num_ws
        dims = [config.z_dim] + [config.w_dim] * config.mapping_layers
        for i in range(config.mapping_layers):
            layer = FullyConnected(dims[i], dims[i + 1], lrelu=True, lr_multiplier=config.lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """``ws [B, num_ws, w_dim]``; ``truncation_psi < 1`` pulls the first ``truncation_cutoff`` (all) ws
        toward ``w_avg``."""
        x = z.float()
        x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = self.w_avg.lerp(ws[:, :cut], truncation_psi)
        return ws


def _modulated(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool,
    up: int = 1,
    f: torch.Tensor | None = None,
) -> torch.Tensor:
    """Modulated conv of ``x [B, I, H, W]`` with ``weight [O, I, k, k]`` and ``styles [B, I]``, unfused:
    ``x * s``, conv (``up = 2``: transposed stride-2 then the FIR filter), then ``* dcoef [B, O]`` if
    ``demodulate``. Output ``[B, O, H * up, W * up]``."""
    b = x.shape[0]
    x = x * styles.to(x.dtype).reshape(b, -1, 1, 1)
    k = weight.shape[-1]
    if up == 1:
        x = F.conv2d(x, weight.to(x.dtype), padding=k // 2)
    else:  # conv2d_resample: pad (k//2 + 2, k//2 + 1) around the upsampled image -> (1, 1) after the transpose
        x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
        if f is None:
            raise ValueError("upsampling needs the FIR filter f")
        x = upfirdn(x, f, up=1, pad=(1, 1), gain=4.0)
    if demodulate:
        w = weight.unsqueeze(0) * styles.reshape(b, 1, -1, 1, 1)  # [B, O, I, k, k]
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [B, O]
        x = x * dcoefs.to(x.dtype).reshape(b, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3x3 conv + noise + bias + leaky ReLU: ``[B, I, r/up, r/up] -> [B, O, r, r]``."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        resolution: int,
        *,
        up: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.register_buffer("resample_filter", fir_filter())
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """``noise_mode``: ``"const"`` (the stored noise), ``"random"`` or ``"none"``."""
        x = _modulated(x, self.weight, self.affine(w), demodulate=True, up=self.up, f=self.resample_filter)
        if noise_mode == "random":
            r = self.resolution
            x = x + torch.randn(x.shape[0], 1, r, r, device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        return _bias_act(x, self.bias, self.conv_clamp, lrelu=True)


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation (styles times ``1 / sqrt(in)``) + bias: ``[B, I, r, r] ->
    [B, 3, r, r]``."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, *, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1.0 / math.sqrt(in_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = _modulated(x, self.weight, styles, demodulate=False)
        return _bias_act(x, self.bias, self.conv_clamp, lrelu=False)


class SynthesisBlock(nn.Module):
    """One resolution of the skip architecture: ``(x, img, ws [B, num_conv + 1, w_dim]) -> (x, img)``."""

    def __init__(self, in_ch: int, out_ch: int, resolution: int, config: StyleGAN2Config) -> None:
        super().__init__()
        self.in_ch, self.resolution = in_ch, resolution
        self.register_buffer("resample_filter", fir_filter())
        clamp, w_dim = config.conv_clamp, config.w_dim
        if in_ch == 0:
            self.const = nn.Parameter(torch.randn(out_ch, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_ch, out_ch, w_dim, resolution, up=2, conv_clamp=clamp)
        self.conv1 = SynthesisLayer(out_ch, out_ch, w_dim, resolution, conv_clamp=clamp)
        self.torgb = ToRGB(out_ch, config.img_channels, w_dim, conv_clamp=clamp)
        self.num_conv = 1 if in_ch == 0 else 2

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "const"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.in_ch == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            assert x is not None
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        if img is not None:  # upsample2d: pad (2, 1) around the zero-inserted image, gain 4
            img = upfirdn(img, self.resample_filter, up=2, pad=(2, 1), gain=4.0)
        return x, (y if img is None else img + y)


class SynthesisNetwork(nn.Module):
    """``ws [B, num_ws, w_dim] -> images [B, 3, res, res]`` (about ``[-1, 1]``): blocks ``b4 .. b{res}``."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.block_resolutions, self.num_ws, self.w_dim = (
            config.block_resolutions,
            config.num_ws,
            config.w_dim,
        )
        for res in self.block_resolutions:
            in_ch = config.channels(res // 2) if res > 4 else 0
            setattr(self, f"b{res}", SynthesisBlock(in_ch, config.channels(res), res, config))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.float()
        x = img = None
        i = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        assert img is not None
        return img


class StyleGAN2Generator(nn.Module):
    """``Generator``: ``synthesis`` and ``mapping`` as in the reference; ``forward(z) -> [B, 3, res, res]``."""

    def __init__(self, config: StyleGAN2Config | None = None) -> None:
        super().__init__()
        self.config = config or StyleGAN2Config()
        self.synthesis = SynthesisNetwork(self.config)
        self.mapping = MappingNetwork(self.config)
        self.num_ws = self.config.num_ws

    def forward(
        self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const"
    ) -> torch.Tensor:
        """``z [B, z_dim]`` -> images ``[B, 3, res, res]`` (about ``[-1, 1]``)."""
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode)
