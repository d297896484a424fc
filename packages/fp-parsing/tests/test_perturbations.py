"""Perturbations: identity at severity 0, damage non-decreasing in severity, determinism, range, errors."""

from __future__ import annotations

import pytest
import torch

from fp_parsing.perturbations import PERTURBATIONS, perturb, random_perturb

SEVERITIES = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def _faces(batch: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random images with some smooth structure (a blurred-looking gradient plus texture)."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size).view(1, 1, 1, size).expand(batch, 3, size, size)
    texture = torch.rand(batch, 3, size, size, generator=generator)
    return (0.5 * ramp + 0.5 * texture).clamp(0, 1)


def _seeded(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_severity_zero_is_exactly_the_identity(kind: str) -> None:
    images = _faces()
    assert torch.equal(perturb(images, kind, 0.0, _seeded()), images)
    assert torch.equal(perturb(images, kind, 0, None), images)
    per_image = perturb(images, kind, torch.tensor([0.0, 0.7, 0.0]), _seeded())
    assert torch.equal(per_image[0], images[0]) and torch.equal(per_image[2], images[2])


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_damage_grows_with_severity_for_a_fixed_seed(kind: str) -> None:
    images = _faces()
    damage = [float((perturb(images, kind, s, _seeded()) - images).abs().mean()) for s in SEVERITIES]
    assert damage[0] == 0.0
    assert all(b >= a for a, b in zip(damage, damage[1:], strict=False)), damage
    assert damage[-1] > 0.02, f"{kind} barely changes the image at severity 1: {damage[-1]}"
    # per image too, not only on average
    for index in range(images.shape[0]):
        per = [
            float((perturb(images, kind, s, _seeded())[index] - images[index]).abs().mean())
            for s in SEVERITIES
        ]
        assert all(b >= a for a, b in zip(per, per[1:], strict=False)), (index, per)


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_output_in_range_same_shape_dtype_and_deterministic(kind: str) -> None:
    images = _faces(batch=4, size=40)
    first = perturb(images, kind, 0.8, _seeded(3))
    assert first.shape == images.shape and first.dtype == images.dtype
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, perturb(images, kind, 0.8, _seeded(3)))
    assert not torch.equal(first, images)


@pytest.mark.parametrize("kind", ["gaussian_noise", "occlusion", "salt_pepper"])
def test_random_kinds_depend_on_the_seed(kind: str) -> None:
    images = _faces()
    assert not torch.equal(perturb(images, kind, 0.5, _seeded(1)), perturb(images, kind, 0.5, _seeded(2)))


def test_per_image_severities_match_single_image_calls_for_deterministic_kinds() -> None:
    images = _faces(batch=3)
    severity = torch.tensor([0.2, 0.6, 1.0])
    for kind in ("blur", "brightness", "darkness"):
        batched = perturb(images, kind, severity)
        for i in range(3):
            single = perturb(images[i : i + 1], kind, float(severity[i]))
            torch.testing.assert_close(batched[i : i + 1], single, rtol=0, atol=1e-6)


def test_values_by_hand() -> None:
    images = torch.full((1, 3, 8, 8), 0.5)
    torch.testing.assert_close(perturb(images, "darkness", 1.0), torch.full_like(images, 0.5 * 0.15))
    torch.testing.assert_close(perturb(images, "brightness", 0.5), torch.full_like(images, 0.8))
    assert torch.equal(perturb(images, "brightness", 1.0), torch.ones_like(images))
    # blurring a constant image changes nothing (up to rounding)
    torch.testing.assert_close(perturb(images, "blur", 1.0), images)
    # salt and pepper: corrupted pixels are black or white in all three channels
    noisy = perturb(images, "salt_pepper", 1.0, _seeded())
    changed = (noisy != 0.5).any(dim=1)
    assert bool(((noisy[:, 0][changed] == 0) | (noisy[:, 0][changed] == 1)).all())
    assert torch.equal(noisy[:, 0], noisy[:, 1]) and torch.equal(noisy[:, 1], noisy[:, 2])


def test_occlusion_is_one_solid_rectangle_whose_area_grows() -> None:
    images = torch.zeros(1, 3, 64, 64)
    areas = []
    for severity in (0.25, 0.5, 1.0):
        out = perturb(images, "occlusion", severity, _seeded(5))
        covered = (out != 0).any(dim=1)[0]
        rows, cols = covered.any(dim=1).nonzero(), covered.any(dim=0).nonzero()
        box = covered[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert bool(box.all()), "the occluder is a filled rectangle"
        areas.append(int(covered.sum()))
    assert areas[0] < areas[1] < areas[2]
    assert 0.2 < areas[2] / 64**2 < 0.5  # 0.35 of the image at severity 1 (up to clipping and rounding)


def test_blur_strength_scales_with_image_size() -> None:
    small, large = _faces(size=32), torch.nn.functional.interpolate(_faces(size=32), size=128, mode="nearest")
    # blur at 128² is 4x wider in pixels, so it removes about as much of the 32² pattern seen at 128²
    d_small = float((perturb(small, "blur", 1.0) - small).abs().mean())
    d_large = float((perturb(large, "blur", 1.0) - large).abs().mean())
    assert d_large == pytest.approx(d_small, rel=0.35)


def test_errors_are_clear() -> None:
    images = _faces()
    with pytest.raises(ValueError, match="unknown perturbation 'fog'"):
        perturb(images, "fog", 0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"severity must be a number in \[0, 1\]"):
            perturb(images, "blur", bad)
    with pytest.raises(ValueError, match=r"severity values must lie in \[0, 1\]"):
        perturb(images, "blur", torch.tensor([0.1, 2.0, 0.3]))
    with pytest.raises(ValueError, match=r"tensor \[B\] with B=3"):
        perturb(images, "blur", torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"images must be a tensor \[B, 3, H, W\]"):
        perturb(images[0], "blur", 0.5)
    with pytest.raises(ValueError, match="floating point"):
        perturb((images * 255).to(torch.uint8), "blur", 0.5)


def test_random_perturb_is_deterministic_and_uses_the_listed_kinds() -> None:
    images = _faces(batch=16)
    first = random_perturb(images, PERTURBATIONS, 0.8, _seeded(11))
    assert torch.equal(first, random_perturb(images, PERTURBATIONS, 0.8, _seeded(11)))
    assert not torch.equal(first, random_perturb(images, PERTURBATIONS, 0.8, _seeded(12)))
    assert first.shape == images.shape and float(first.min()) >= 0 and float(first.max()) <= 1
    assert (first - images).abs().flatten(1).amax(dim=1).gt(0).sum() >= 12  # (almost) every image is changed
    darkened = random_perturb(images, ["darkness"], 1.0, _seeded(3), min_severity=1.0)
    torch.testing.assert_close(darkened, images * 0.15)
    assert torch.equal(random_perturb(images, ["blur", "occlusion"], 0.0, _seeded(3)), images)


def test_random_perturb_errors() -> None:
    images = _faces()
    with pytest.raises(ValueError, match="unknown perturbation 'rain'"):
        random_perturb(images, ["blur", "rain"], 0.5)
    with pytest.raises(ValueError, match="at least one"):
        random_perturb(images, [], 0.5)
    with pytest.raises(ValueError, match=r"max_severity must lie in \[0, 1\]"):
        random_perturb(images, PERTURBATIONS, 1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_cuda_images_with_cuda_or_cpu_generators(kind: str) -> None:
    images = _faces().cuda()
    assert torch.equal(perturb(images, kind, 0.0, torch.Generator(device="cuda").manual_seed(0)), images)
    on_gpu = perturb(images, kind, 0.7, torch.Generator(device="cuda").manual_seed(0))
    assert on_gpu.device == images.device
    assert torch.equal(on_gpu, perturb(images, kind, 0.7, torch.Generator(device="cuda").manual_seed(0)))
    from_cpu = perturb(images, kind, 0.7, _seeded(0))  # draws made on the CPU generator, moved to the images
    assert from_cpu.device == images.device
    torch.testing.assert_close(
        from_cpu.cpu(), perturb(images.cpu(), kind, 0.7, _seeded(0)), atol=5e-3, rtol=0
    )  # TF32 convs
    mixed = random_perturb(images, PERTURBATIONS, 0.8, torch.Generator(device="cuda").manual_seed(1))
    assert mixed.device == images.device and float(mixed.min()) >= 0 and float(mixed.max()) <= 1
