"""AdaFace's training augmentation on image tensors, with an explicit random generator.

AdaFace's recipe (its ``Augmenter`` then torchvision's flip), applied in this order to ``[3, H, W]`` in
``[0, 1]``:

1. **random crop** (probability ``crop_prob``, 0.2): a ``RandomResizedCrop`` box (area fraction in
   ``crop_scale`` (0.2, 1), aspect ratio in ``crop_ratio`` (3/4, 4/3)) is kept *in place* and everything
   outside it set to 0 (AdaFace pads with zeros rather than resizing the crop);
2. **low resolution** (``low_res_prob``, 0.2): down to a square of side ``int(r * H)``, ``r`` uniform in
   ``low_res_scale`` (0.2, 1), and back to ``H x W``, each resize with an interpolation drawn from
   nearest / bilinear / area / bicubic (AdaFace draws from OpenCV's five; torch has no Lanczos);
3. **photometric** (``photometric_prob``, 0.2): brightness, contrast and saturation jitter (factors uniform
   in ``[1 - 0.5, 1 + 0.5]``, hue unchanged) in a random order, as torchvision's ``ColorJitter``;
4. **horizontal flip** (``flip_prob``, 0.5).

Randomness comes from ``generator`` (or ``seed``, through ``fp_core.seeds.torch_generator(seed,
"augment")``), or the one passed to a call. A generator copied into DataLoader workers repeats the same
stream in each worker: give each worker its own with :meth:`FaceAugment.reseed`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fp_core.seeds import torch_generator

__all__ = ["FaceAugment"]

_RESIZE_MODES: tuple[str, ...] = ("nearest", "bilinear", "area", "bicubic")
_GRAY = (0.299, 0.587, 0.114)


def _uniform(g: torch.Generator | None, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator | None, lo: int, hi: int) -> int:
    """Uniform integer in ``[lo, hi)``."""
    return int(torch.randint(lo, hi, (1,), generator=g))


def _gray(x: torch.Tensor) -> torch.Tensor:
    """``[3, H, W] -> [1, H, W]`` luma."""
    return (_GRAY[0] * x[0] + _GRAY[1] * x[1] + _GRAY[2] * x[2])[None]


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x[None], size=size, mode=mode, **kwargs)[0]


class FaceAugment:
    """``augment(x [3, H, W] in [0, 1], generator=None) -> [3, H, W] in [0, 1]`` (see the module doc)."""

    def __init__(
        self,
        *,
        flip_prob: float = 0.5,
        crop_prob: float = 0.2,
        low_res_prob: float = 0.2,
        photometric_prob: float = 0.2,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        low_res_scale: tuple[float, float] = (0.2, 1.0),
        brightness: float = 0.5,
        contrast: float = 0.5,
        saturation: float = 0.5,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        for name, p in (
            ("flip_prob", flip_prob),
            ("crop_prob", crop_prob),
            ("low_res_prob", low_res_prob),
            ("photometric_prob", photometric_prob),
        ):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if seed is not None and generator is not None:
            raise ValueError("give seed or generator, not both")
        self.flip_prob, self.crop_prob = flip_prob, crop_prob
        self.low_res_prob, self.photometric_prob = low_res_prob, photometric_prob
        self.crop_scale, self.crop_ratio, self.low_res_scale = crop_scale, crop_ratio, low_res_scale
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.generator = torch_generator(seed, "augment") if seed is not None else generator

    def reseed(self, seed: int, *keys: int | str) -> None:
        """Use a fresh generator for stream ``(seed, "augment", *keys)`` (e.g. ``keys = (worker_id,)``)."""
        self.generator = torch_generator(seed, "augment", *keys)

    def _crop_box(self, g: torch.Generator | None, h: int, w: int) -> tuple[int, int, int, int]:
        """torchvision's ``RandomResizedCrop.get_params``: ``(top, left, height, width)``."""
        area = h * w
        log_lo, log_hi = math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])
        for _ in range(10):
            target = area * _uniform(g, *self.crop_scale)
            aspect = math.exp(_uniform(g, log_lo, log_hi))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return _randint(g, 0, h - ch + 1), _randint(g, 0, w - cw + 1), ch, cw
        ratio = w / h  # fallback: the largest central box within the ratio range
        if ratio < self.crop_ratio[0]:
            cw, ch = w, round(w / self.crop_ratio[0])
        elif ratio > self.crop_ratio[1]:
            ch, cw = h, round(h * self.crop_ratio[1])
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def crop(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Keep a random box in place, zero elsewhere: ``[3, H, W] -> [3, H, W]``."""
        top, left, ch, cw = self._crop_box(g, x.shape[1], x.shape[2])
        out = torch.zeros_like(x)
        out[:, top : top + ch, left : left + cw] = x[:, top : top + ch, left : left + cw]
        return out

    def low_resolution(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Down- and up-sample: ``[3, H, W] -> [3, H, W]``."""
        h, w = x.shape[1:]
        side = max(1, int(_uniform(g, *self.low_res_scale) * h))
        down = _RESIZE_MODES[_randint(g, 0, len(_RESIZE_MODES))]
        up = _RESIZE_MODES[_randint(g, 0, len(_RESIZE_MODES))]
        return _resize(_resize(x, (side, side), down), (h, w), up).clamp(0.0, 1.0)

    def photometric(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        """Brightness, contrast, saturation jitter in random order: ``[3, H, W] -> [3, H, W]``."""
        for op in torch.randperm(3, generator=g).tolist():
            amount = (self.brightness, self.contrast, self.saturation)[op]
            if amount <= 0:
                continue
            f = _uniform(g, max(0.0, 1 - amount), 1 + amount)
            if op == 0:
                x = x * f
            elif op == 1:
                mean = _gray(x).mean()
                x = f * x + (1 - f) * mean
            else:
                x = f * x + (1 - f) * _gray(x)
            x = x.clamp(0.0, 1.0)
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[3, H, W]`` in ``[0, 1]`` -> augmented ``[3, H, W]``; ``generator`` overrides the instance's."""
        if x.dim() != 3 or x.shape[0] != 3:
            raise ValueError(f"image must have shape [3, H, W], got {tuple(x.shape)}")
        g = generator if generator is not None else self.generator
        if float(torch.rand((), generator=g)) < self.crop_prob:
            x = self.crop(x, g)
        if float(torch.rand((), generator=g)) < self.low_res_prob:
            x = self.low_resolution(x, g)
        if float(torch.rand((), generator=g)) < self.photometric_prob:
            x = self.photometric(x, g)
        if float(torch.rand((), generator=g)) < self.flip_prob:
            x = x.flip(-1)
        return x
