"""Image perturbations with a severity in [0, 1], batched on tensors, for robustness training and evaluation.

``perturb(images [B, 3, H, W] in [0, 1], kind, severity, generator)`` -> ``[B, 3, H, W]`` in [0, 1], on the
images' device and dtype. Severity 0 returns the images unchanged (exactly); the damage grows with the
severity: every random draw is independent of the severity (the same seed gives the same noise pattern,
occluder position and corrupted pixels at every severity, only scaled or grown), so the mean absolute change
is non-decreasing in the severity for a fixed seed. Severity may also be a tensor ``[B]`` (one per image).

=================  ==================================================================================
kind               effect at severity ``s``
=================  ==================================================================================
gaussian_noise     ``clip(x + 0.5 s z)``, ``z ~ N(0, 1)`` per pixel and channel
blur               Gaussian blur, ``sigma = 0.03 s min(H, W)`` pixels (1.9 px at 64², 7.7 px at 256²)
occlusion          a rectangle of a random colour covering ``0.35 s`` of the image (sides ``sqrt(0.35 s)``
                   of the image's, aspect ratio random in [0.5, 2]) around a random centre
salt_pepper        a share ``0.3 s`` of the pixels set to black or white (all channels)
brightness         ``clip(x + 0.6 s)`` (over-exposure)
darkness           ``x (1 - 0.85 s)`` (under-exposure)
=================  ==================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["PERTURBATIONS", "perturb", "random_perturb"]

PERTURBATIONS = ("gaussian_noise", "blur", "occlusion", "salt_pepper", "brightness", "darkness")

NOISE_STD = 0.5
BLUR_SIGMA = 0.03
OCCLUSION_AREA = 0.35
SALT_PEPPER_SHARE = 0.3
BRIGHTNESS_SHIFT = 0.6
DARKNESS_SCALE = 0.85


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [B, 3, H, W] with values in [0, 1], got {shape}")
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")


def _severity_vector(severity: float | torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Severity as a float32 tensor ``[B]`` on the images' device (checked to lie in [0, 1])."""
    batch = images.shape[0]
    if isinstance(severity, torch.Tensor):
        if severity.dim() == 0:
            severity = severity.reshape(1).expand(batch)
        if severity.shape != (batch,):
            raise ValueError(
                f"severity must be a float or a tensor [B] with B={batch}, got {tuple(severity.shape)}"
            )
        vector = severity.detach().to(device=images.device, dtype=torch.float32)
        if bool(((vector < 0) | (vector > 1) | vector.isnan()).any()):
            raise ValueError("severity values must lie in [0, 1]")
        return vector
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | float)
        or not 0.0 <= float(severity) <= 1.0
    ):
        raise ValueError(f"severity must be a number in [0, 1], got {severity!r}")
    return torch.full((batch,), float(severity), device=images.device, dtype=torch.float32)


def _uniform(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) draws made on the generator's device, returned on ``device``."""
    if generator is None:
        return torch.rand(tuple(shape), device=device)
    return torch.rand(tuple(shape), generator=generator, device=generator.device).to(device)


def _normal(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    if generator is None:
        return torch.randn(tuple(shape), device=device)
    return torch.randn(tuple(shape), generator=generator, device=generator.device).to(device)


def _per_image(vector: torch.Tensor) -> torch.Tensor:
    return vector.view(-1, 1, 1, 1)


def _gaussian_noise(x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    noise = _normal(x.shape, generator, x.device)
    return (x + NOISE_STD * _per_image(s) * noise).clamp(0.0, 1.0)


def _blur(x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    del generator  # deterministic
    batch, channels, height, width = x.shape
    max_sigma = BLUR_SIGMA * min(height, width)
    radius = max(1, math.ceil(3 * max_sigma))
    sigma = (BLUR_SIGMA * min(height, width) * s).repeat_interleave(channels)  # [B * 3]
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    safe = sigma.clamp_min(1e-6).unsqueeze(1)
    kernel = torch.exp(-0.5 * (offsets.unsqueeze(0) / safe) ** 2)  # [B * 3, K]
    delta = (offsets == 0).to(torch.float32).expand_as(kernel)
    kernel = torch.where((sigma > 0).unsqueeze(1), kernel / kernel.sum(dim=1, keepdim=True), delta)
    kernel = kernel.to(x.dtype)
    flat = x.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="replicate")
    flat = F.conv2d(flat, kernel.view(batch * channels, 1, 1, -1), groups=batch * channels)
    flat = F.pad(flat, (0, 0, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.view(batch * channels, 1, -1, 1), groups=batch * channels)
    return flat.view(batch, channels, height, width).clamp(0.0, 1.0)


def _occlusion(x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    batch, _, height, width = x.shape
    draws = _uniform((batch, 6), generator, x.device)  # centre y, centre x, aspect, colour r, g, b
    aspect = torch.exp((draws[:, 2] * 2 - 1) * math.log(2.0))  # in [1/2, 2], log-uniform
    side = torch.sqrt(OCCLUSION_AREA * s)  # fraction of the image side for a square
    half_h = 0.5 * side * torch.sqrt(aspect) * height
    half_w = 0.5 * side / torch.sqrt(aspect) * width
    centre_y = (0.15 + 0.7 * draws[:, 0]) * height
    centre_x = (0.15 + 0.7 * draws[:, 1]) * width
    ys = torch.arange(height, device=x.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=x.device, dtype=torch.float32) + 0.5
    inside_y = (ys.view(1, -1) - centre_y.view(-1, 1)).abs() <= half_h.view(-1, 1)  # [B, H]
    inside_x = (xs.view(1, -1) - centre_x.view(-1, 1)).abs() <= half_w.view(-1, 1)  # [B, W]
    mask = (inside_y.unsqueeze(2) & inside_x.unsqueeze(1) & (s > 0).view(-1, 1, 1)).unsqueeze(1)
    colour = draws[:, 3:].to(x.dtype).view(batch, 3, 1, 1)
    return torch.where(mask, colour, x)


def _salt_pepper(x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    batch, _, height, width = x.shape
    draws = _uniform((2, batch, 1, height, width), generator, x.device)
    corrupted = draws[0] < SALT_PEPPER_SHARE * _per_image(s)
    value = (draws[1] < 0.5).to(x.dtype)
    return torch.where(corrupted, value, x)


def _brightness(x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    del generator
    return (x + BRIGHTNESS_SHIFT * _per_image(s).to(x.dtype)).clamp(0.0, 1.0)


def _darkness(x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    del generator
    return x * (1.0 - DARKNESS_SCALE * _per_image(s).to(x.dtype))


_APPLY = {
    "gaussian_noise": _gaussian_noise,
    "blur": _blur,
    "occlusion": _occlusion,
    "salt_pepper": _salt_pepper,
    "brightness": _brightness,
    "darkness": _darkness,
}


def _check_kind(kind: str) -> None:
    if kind not in _APPLY:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {list(PERTURBATIONS)}")


def perturb(
    images: torch.Tensor,
    kind: str,
    severity: float | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Perturb a batch: ``images [B, 3, H, W]`` in [0, 1] -> ``[B, 3, H, W]`` in [0, 1] (same device, dtype).

    ``severity`` is a number in [0, 1] or a tensor ``[B]`` of them; 0 is exactly the identity. Random kinds
    draw from ``generator`` (on its own device; the default RNG when ``None``), so a seeded generator makes
    the result repeatable. Values outside [0, 1] in ``images`` are not checked.
    """
    _check_kind(kind)
    _check_images(images)
    if (
        not isinstance(severity, torch.Tensor)
        and isinstance(severity, int | float)
        and float(severity) == 0.0
    ):
        return images.clone()
    vector = _severity_vector(severity, images)
    out = _APPLY[kind](images, vector, generator).to(images.dtype)
    return torch.where(_per_image(vector) == 0, images, out)


def random_perturb(
    images: torch.Tensor,
    kinds: Sequence[str] = PERTURBATIONS,
    max_severity: float = 1.0,
    generator: torch.Generator | None = None,
    *,
    min_severity: float = 0.0,
) -> torch.Tensor:
    """Each image gets one kind drawn uniformly from ``kinds`` at a severity uniform in
    ``[min_severity, max_severity]``: ``[B, 3, H, W]`` -> ``[B, 3, H, W]``.

    All kinds are evaluated on the whole batch with per-image severities (zero where another kind was drawn),
    so there is no host-device synchronisation; deterministic given the generator's seed.
    """
    _check_images(images)
    kinds = tuple(kinds)
    if not kinds:
        raise ValueError("kinds must name at least one perturbation")
    for kind in kinds:
        _check_kind(kind)
    for name, value in (("min_severity", min_severity), ("max_severity", max_severity)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    if min_severity > max_severity:
        raise ValueError(f"min_severity={min_severity} exceeds max_severity={max_severity}")
    batch = images.shape[0]
    draws = _uniform((2, batch), generator, images.device)
    chosen = (draws[0] * len(kinds)).long().clamp_max(len(kinds) - 1)
    severity = min_severity + (max_severity - min_severity) * draws[1]
    out = images
    for index, kind in enumerate(kinds):
        selected = chosen == index
        vector = torch.where(selected, severity, torch.zeros_like(severity))
        perturbed = _APPLY[kind](images, vector, generator).to(images.dtype)
        out = torch.where(_per_image(selected & (vector > 0)), perturbed, out)
    return out
