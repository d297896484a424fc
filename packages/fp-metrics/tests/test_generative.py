import math

import numpy as np
import pytest
import torch
from scipy import linalg

from fp_metrics import (
    FeatureStats,
    fid_from_features,
    fid_from_stats,
    frechet_distance,
    kid_from_features,
    mmd2_unbiased,
)

cleanfid_fid = pytest.importorskip("cleanfid.fid")

# clean-fid passes scipy's deprecated `disp` argument to sqrtm
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def _features(seed, n, d, shift=0.0, scale=1.0):
    """Correlated Gaussian features [n, d] with a per-dimension shift."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) / math.sqrt(d)
    return (rng.standard_normal((n, d)) @ mix) * scale + shift * np.linspace(0, 1, d)


def _sqrtm_fid(a, b):
    """Slow reference: the scipy.linalg.sqrtm formula on the covariances."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _loop_mmd2(x, y):
    """Plain-loop unbiased MMD^2 with k(u, v) = (u.v / d + 1)^3."""
    d = x.shape[1]

    def k(u, v):
        return (float(np.dot(u, v)) / d + 1) ** 3

    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


# ---------------------------------------------------------------- FID


def test_fid_matches_cleanfid_frechet_distance():
    a, b = _features(0, 400, 24), _features(1, 300, 24, shift=2.0, scale=1.5)
    ref = cleanfid_fid.frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-9)
    assert fid_from_features(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, rel=1e-9)


def test_fid_matches_scipy_sqrtm_reference():
    a, b = _features(2, 200, 40), _features(3, 250, 40, shift=1.0, scale=0.7)
    assert fid_from_features(a, b) == pytest.approx(_sqrtm_fid(a, b), rel=1e-9)


def test_frechet_distance_hand_computed():
    # commuting covariances: tr sqrt(S1 S2) = 2 * 1 + 3 * 1
    got = frechet_distance(np.zeros(2), np.diag([4.0, 9.0]), np.array([1.0, 2.0]), np.eye(2))
    assert got == pytest.approx(1 + 4 + 13 + 2 - 2 * (2 + 3), abs=1e-12)
    # orthogonal rank-1 covariances: S1 S2 = 0, so FID = |dmu|^2 + 1 + 1
    got = frechet_distance(np.zeros(2), np.diag([1.0, 0.0]), np.ones(2), np.diag([0.0, 1.0]))
    assert got == pytest.approx(2 + 2, abs=1e-12)


def test_fid_finite_and_real_with_singular_covariances():
    # fewer samples than dimensions: both covariances have rank <= 9 in 64 dimensions
    a, b = _features(4, 10, 64), _features(5, 10, 64, shift=0.5)
    fid = fid_from_features(a, b)
    assert isinstance(fid, float) and math.isfinite(fid)
    assert fid > 0
    # independent reference: tr sqrt(S1 S2) is the nuclear norm of Xa Xb^T / sqrt((n_a - 1)(n_b - 1)) for
    # centred feature matrices Xa, Xb (same spectrum), computed by an SVD that needs no square root of S
    xa, xb = a - a.mean(0), b - b.mean(0)
    nuclear = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / math.sqrt(9 * 9)
    diff = a.mean(0) - b.mean(0)
    ref = diff @ diff + np.trace(np.cov(a, rowvar=False)) + np.trace(np.cov(b, rowvar=False)) - 2 * nuclear
    assert fid == pytest.approx(ref, rel=1e-9)
    # identical sets: exactly the same Gaussian, so FID vanishes up to rounding
    assert abs(fid_from_features(a, a)) < 1e-9 * np.trace(np.cov(a, rowvar=False))
    # FID of shifted copies is the squared shift, even with rank-deficient covariances
    shift = np.linspace(-1, 1, 64)
    assert fid_from_features(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    # scaling features by c scales FID by c^2
    assert fid_from_features(3 * a, 3 * b) == pytest.approx(9 * fid, rel=1e-9)


def test_fid_bad_input_raises():
    with pytest.raises(ValueError, match="same feature dimension"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        fid_from_features(np.zeros(5), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fid_from_features(np.full((4, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))


# ---------------------------------------------------------------- KID


def test_mmd2_hand_computed():
    # d = 1, k(u, v) = (u v + 1)^3: kxx = 1, kyy = 7^3 = 343, kxy = (1 + 1 + 27 + 64) / 4
    a, b = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    assert mmd2_unbiased(a, b) == pytest.approx(1 + 343 - 2 * 93 / 4, abs=1e-12)


def test_mmd2_matches_plain_loop():
    a, b = _features(6, 30, 5), _features(7, 25, 5, shift=1.0)
    assert mmd2_unbiased(a, b) == pytest.approx(_loop_mmd2(a, b), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 7])
def test_kid_subsets_match_cleanfid_kernel_distance(seed):
    a, b = _features(8, 120, 16, shift=1.0), _features(9, 90, 16)
    np.random.seed(seed)  # noqa: NPY002 - clean-fid draws from numpy's global RNG
    ref = cleanfid_fid.kernel_distance(a, b, num_subsets=20, max_subset_size=50)
    got = kid_from_features(a, b, num_subsets=20, max_subset_size=50, seed=seed)
    assert got == pytest.approx(ref, rel=1e-9)


def test_kid_full_sample_is_exact_and_seed_independent():
    a, b = _features(10, 80, 12, shift=1.5), _features(11, 80, 12)
    full = mmd2_unbiased(a, b)
    values = {
        kid_from_features(a, b, num_subsets=n_sub, max_subset_size=size, seed=seed)
        for seed in (0, 1, 123)
        for n_sub in (1, 5)
        for size in (80, 1000)
    }
    assert values == {full}
    np.random.seed(3)  # noqa: NPY002 - clean-fid draws from numpy's global RNG
    assert cleanfid_fid.kernel_distance(a, b, num_subsets=3, max_subset_size=1000) == pytest.approx(
        full, rel=1e-9
    )
    # unequal sizes: still the full-sample estimator once max_subset_size covers the larger set
    assert kid_from_features(a[:50], b, max_subset_size=80, seed=5) == mmd2_unbiased(a[:50], b)


def test_kid_is_small_for_same_distribution():
    same = kid_from_features(
        _features(12, 300, 8), _features(13, 300, 8), num_subsets=10, max_subset_size=100
    )
    apart = kid_from_features(
        _features(12, 300, 8), _features(13, 300, 8, shift=3.0), num_subsets=10, max_subset_size=100
    )
    assert abs(same) < 0.1 * apart


def test_kid_bad_input_raises():
    a = np.zeros((10, 3))
    with pytest.raises(ValueError, match="num_subsets"):
        kid_from_features(a, a, num_subsets=0)
    with pytest.raises(ValueError, match="max_subset_size"):
        kid_from_features(a, a, max_subset_size=1)
    with pytest.raises(ValueError, match="same feature dimension"):
        kid_from_features(a, np.zeros((10, 4)))


# ---------------------------------------------------------------- streaming statistics


def test_feature_stats_equal_numpy_mean_and_cov():
    x = _features(14, 257, 10, shift=5.0)
    stats = FeatureStats()
    for start, stop in [(0, 1), (1, 1), (1, 64), (64, 200), (200, 257)]:  # includes empty and size-1 batches
        stats.update(torch.from_numpy(x[start:stop]).float() if start == 64 else x[start:stop])
    assert stats.n == 257 and stats.dim == 10
    x32 = x.copy()
    x32[64:200] = x[64:200].astype(np.float32)  # that batch went in as float32
    np.testing.assert_allclose(stats.mean, x32.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x32, rowvar=False), rtol=1e-10, atol=1e-12)


def test_feature_stats_merge_equals_one_pass():
    x = _features(15, 300, 6, shift=2.0)
    one = FeatureStats().update(x)
    shards = [FeatureStats().update(x[i : i + 70]) for i in range(0, 300, 70)]
    merged = FeatureStats()
    for s in shards:
        merged.merge(s)
    assert merged.n == 300
    np.testing.assert_allclose(merged.mean, one.mean, rtol=1e-12)
    np.testing.assert_allclose(merged.cov, one.cov, rtol=1e-11)
    # merging leaves the other accumulator unchanged and ignores empty ones
    assert shards[0].n == 70
    assert merged.merge(FeatureStats()).n == 300
    with pytest.raises(ValueError, match="dimension"):
        merged.merge(FeatureStats().update(np.zeros((3, 5))))


def test_feature_stats_save_load_round_trip(tmp_path):
    stats = FeatureStats().update(_features(16, 50, 7))
    path = tmp_path / "stats.npz"
    stats.save(path)
    loaded = FeatureStats.load(path)
    assert loaded.n == stats.n and loaded.dim == stats.dim
    assert np.array_equal(loaded.mean, stats.mean) and np.array_equal(loaded.cov, stats.cov)
    # a loaded accumulator keeps accumulating like the original
    more = _features(17, 20, 7)
    np.testing.assert_array_equal(loaded.update(more).cov, stats.update(more).cov)
    with pytest.raises(ValueError, match="does not exist"):
        FeatureStats.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="missing keys"):
        FeatureStats.from_state_dict({"n": np.asarray(3)})


def test_mean_is_a_copy():
    stats = FeatureStats().update(np.ones((3, 2)))
    stats.mean[:] = 5
    assert np.array_equal(stats.mean, np.ones(2))


def test_fid_from_stats_equals_fid_from_features():
    a, b = _features(18, 150, 20), _features(19, 170, 20, shift=1.0)
    sa = FeatureStats().update(a[:100]).update(a[100:])
    sb = FeatureStats().merge(FeatureStats().update(b[:30])).merge(FeatureStats().update(b[30:]))
    assert fid_from_stats(sa, sb) == pytest.approx(fid_from_features(a, b), rel=1e-10)


def test_feature_stats_errors():
    stats = FeatureStats()
    with pytest.raises(ValueError, match="empty"):
        _ = stats.mean
    stats.update(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = stats.cov
    with pytest.raises(ValueError, match="dimension 4, expected 3"):
        stats.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        stats.update(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        stats.update(np.full((2, 3), np.inf))


@pytest.mark.slow
def test_fid_inception_sized_against_sqrtm_reference():
    """D = 2048 as for Inception features, N > D: eigenvalue path vs scipy.linalg.sqrtm (clean-fid)."""
    a, b = _features(20, 3000, 2048), _features(21, 3000, 2048, shift=0.5, scale=1.1)
    got = fid_from_features(a, b)
    ref = cleanfid_fid.frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert got == pytest.approx(ref, rel=1e-9)
    stats_a = FeatureStats()
    for i in range(0, 3000, 512):
        stats_a.update(a[i : i + 512])
    assert fid_from_stats(stats_a, FeatureStats().update(b)) == pytest.approx(ref, rel=1e-9)
