import pytest
import torch

from fp_recognition.data import FaceAugment


def _image():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 24, 24, generator=g) * 0.8 + 0.1


def test_seeded_is_reproducible_and_seeds_differ():
    x = _image()
    kw = {"crop_prob": 0.5, "low_res_prob": 0.5, "photometric_prob": 0.5}
    a = [FaceAugment(seed=3, **kw)(x) for _ in range(1)]
    aug1, aug2, aug3 = FaceAugment(seed=3, **kw), FaceAugment(seed=3, **kw), FaceAugment(seed=4, **kw)
    seq1 = [aug1(x) for _ in range(8)]
    seq2 = [aug2(x) for _ in range(8)]
    seq3 = [aug3(x) for _ in range(8)]
    assert torch.equal(a[0], seq1[0])
    assert all(torch.equal(p, q) for p, q in zip(seq1, seq2))
    assert not all(torch.equal(p, q) for p, q in zip(seq1, seq3))
    for y in seq1:
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


def test_off_is_identity_and_flip_is_exact():
    x = _image()
    off = FaceAugment(flip_prob=0, crop_prob=0, low_res_prob=0, photometric_prob=0, seed=0)
    assert torch.equal(off(x), x)
    flip = FaceAugment(flip_prob=1, crop_prob=0, low_res_prob=0, photometric_prob=0, seed=0)
    assert torch.equal(flip(x), x.flip(-1))


def test_crop_keeps_a_box_in_place():
    x = _image()
    aug = FaceAugment(flip_prob=0, crop_prob=1, low_res_prob=0, photometric_prob=0, seed=1)
    for _ in range(5):
        y = aug(x)
        kept = (y != 0).any(0)
        rows, cols = kept.any(1).nonzero().ravel(), kept.any(0).nonzero().ravel()
        box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        assert torch.equal(y[:, box[0], box[1]], x[:, box[0], box[1]])
        assert y.sum() < x.sum() or kept.all()
        frac = kept.float().mean().item()
        assert 0.1 <= frac <= 1.0


def test_low_resolution_and_photometric_change_the_image():
    x = _image()
    low = FaceAugment(
        flip_prob=0, crop_prob=0, low_res_prob=1, photometric_prob=0, low_res_scale=(0.25, 0.3), seed=2
    )
    y = low(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    photo = FaceAugment(flip_prob=0, crop_prob=0, low_res_prob=0, photometric_prob=1, seed=2)
    z = photo(x)
    assert z.shape == x.shape and not torch.allclose(z, x) and 0 <= z.min() and z.max() <= 1


def test_call_generator_and_reseed():
    x = _image()
    aug = FaceAugment(crop_prob=1, seed=0)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(aug(x, generator=g1), aug(x, generator=g2))
    aug.reseed(0, 1)
    other = FaceAugment(crop_prob=1, seed=0)
    other.reseed(0, 1)
    assert torch.equal(aug(x), other(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="crop_prob"):
        FaceAugment(crop_prob=2)
    with pytest.raises(ValueError, match="seed or generator"):
        FaceAugment(seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        FaceAugment()(torch.zeros(1, 4, 4))
