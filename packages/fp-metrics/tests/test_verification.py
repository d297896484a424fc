import ast
import inspect
import math
import textwrap

import numpy as np
import pytest
import torch

from fp_metrics import (
    disparate_impact_ratio,
    flip_fuse,
    group_verification_accuracy,
    kfold_accuracy,
    l2_normalize,
    lfw_thresholds,
    pair_distances,
    roc_auc,
    roc_curve,
    tar_at_far,
    verify_pairs,
)
from fp_metrics import verification as verification_module

sk_metrics = pytest.importorskip("sklearn.metrics")
sk_model_selection = pytest.importorskip("sklearn.model_selection")


def _pairs(seed, n_pairs, dim=32, noise=0.9):
    """Random embedding pairs: genuine pairs share an identity vector, impostor pairs do not."""
    rng = np.random.default_rng(seed)
    issame = rng.random(n_pairs) < 0.5
    base = rng.standard_normal((n_pairs, dim))
    other = np.where(issame[:, None], base, rng.standard_normal((n_pairs, dim)))
    emb1 = base + noise * rng.standard_normal((n_pairs, dim))
    emb2 = other + noise * rng.standard_normal((n_pairs, dim))
    return emb1, emb2, issame


def _loop_lfw(dist, issame, n_folds=10):
    """The plain LFW protocol: sklearn KFold without shuffle, a Python loop over every threshold."""
    thresholds = np.arange(0, 4, 0.01)
    accs, thrs = [], []
    for train, test in sk_model_selection.KFold(n_splits=n_folds, shuffle=False).split(dist):
        best_acc, best_thr = -1.0, None
        for thr in thresholds:
            acc = np.mean((dist[train] < thr) == issame[train])
            if acc > best_acc:  # first maximum wins
                best_acc, best_thr = acc, thr
        accs.append(np.mean((dist[test] < best_thr) == issame[test]))
        thrs.append(best_thr)
    return np.array(accs), np.array(thrs)


# ---------------------------------------------------------------- LFW k-fold protocol


@pytest.mark.parametrize(("seed", "n_pairs"), [(0, 6000), (1, 1237)])
def test_kfold_matches_loop_reference_exactly(seed, n_pairs):
    emb1, emb2, issame = _pairs(seed, n_pairs)
    dist = pair_distances(emb1, emb2)
    acc, thr = kfold_accuracy(dist, issame)
    ref_acc, ref_thr = _loop_lfw(dist, issame)
    assert np.array_equal(acc, ref_acc)
    assert np.array_equal(thr, ref_thr)
    assert 0.6 < acc.mean() < 1.0  # a non-trivial problem


def test_kfold_matches_loop_with_distances_on_the_grid():
    # distances exactly equal to grid thresholds (ties decide by the strict "<")
    rng = np.random.default_rng(2)
    grid = lfw_thresholds()
    issame = rng.random(600) < 0.5
    idx = np.where(issame, rng.integers(20, 140, 600), rng.integers(100, 260, 600))
    dist = grid[idx]
    acc, thr = kfold_accuracy(dist, issame)
    ref_acc, ref_thr = _loop_lfw(dist, issame)
    assert np.array_equal(acc, ref_acc) and np.array_equal(thr, ref_thr)


def test_folds_are_consecutive_without_shuffle():
    # perfectly separable pairs, except that every label in the first tenth is flipped
    issame = np.tile([True, False], 50)
    dist = np.where(issame, 0.5, 2.5)
    issame[:10] = ~issame[:10]
    acc, thr = kfold_accuracy(dist, issame)
    assert acc[0] == 0.0
    assert np.all(acc[1:] == 1.0)
    assert np.all((thr[1:] > 0.5) & (thr[1:] <= 2.5))
    # the first P % 10 folds get the extra pair, like sklearn's KFold
    issame13 = np.zeros(13, dtype=bool)
    issame13[:2] = True
    acc13, _ = kfold_accuracy(np.ones(13), issame13)
    ref13, _ = _loop_lfw(np.ones(13), issame13)
    assert np.array_equal(acc13, ref13)


def test_no_python_loop_over_thresholds():
    for fn in (verification_module.kfold_accuracy, verification_module._correct_counts):
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        loops = [n for n in ast.walk(tree) if isinstance(n, ast.For | ast.While | ast.comprehension)]
        assert loops == [], f"{fn.__name__} loops in Python"


def test_lfw_thresholds_grid():
    grid = lfw_thresholds()
    assert grid.shape == (400,) and grid[0] == 0.0 and grid[-1] == pytest.approx(3.99)
    assert np.array_equal(grid, np.arange(0, 4, 0.01))


# ---------------------------------------------------------------- distances, ROC, TAR@FAR


def test_pair_distances_are_squared_euclidean_of_unit_vectors():
    a = np.array([[3.0, 4.0], [1.0, 0.0], [2.0, 0.0]])
    b = np.array([[3.0, 4.0], [0.0, 5.0], [-1.0, 0.0]])
    np.testing.assert_allclose(pair_distances(a, b), [0.0, 2.0, 4.0], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(l2_normalize(torch.tensor(a)), axis=1), 1.0)
    emb1, emb2, _ = _pairs(3, 50)
    cos = np.sum(l2_normalize(emb1) * l2_normalize(emb2), axis=1)
    np.testing.assert_allclose(pair_distances(emb1, emb2), 2 - 2 * cos, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_roc_and_auc_match_sklearn(ties):
    emb1, emb2, issame = _pairs(4, 800, noise=1.5)
    dist = pair_distances(emb1, emb2)
    if ties:
        dist = np.round(dist, 1)
    fpr, tpr, thr = roc_curve(dist, issame)
    sk_fpr, sk_tpr, sk_thr = sk_metrics.roc_curve(issame, -dist, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, sk_tpr, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thr[1:], -sk_thr[1:])
    assert roc_auc(dist, issame) == pytest.approx(sk_metrics.roc_auc_score(issame, -dist), rel=1e-12)


def test_tar_at_far_hand_computed():
    impostors = np.arange(1, 11) / 10  # 0.1 ... 1.0
    genuine = np.array([0.05, 0.15, 0.5, 1.5])
    dist = np.r_[impostors, genuine]
    issame = np.r_[np.zeros(10, bool), np.ones(4, bool)]
    # FAR <= 0.1 allows 1 of 10 impostors: threshold 0.2 accepts 0.1 only; genuine 0.05, 0.15 pass
    assert tar_at_far(dist, issame, far=0.1) == (0.5, 0.2)
    # FAR <= 0.05 allows none: threshold 0.1, only genuine 0.05 passes
    assert tar_at_far(dist, issame, far=0.05) == (0.25, 0.1)
    # FAR <= 0.35 allows 3: threshold 0.4
    assert tar_at_far(dist, issame, far=0.35) == (0.5, 0.4)
    assert tar_at_far(dist, issame, far=1.0) == (1.0, math.inf)


def test_tar_at_far_matches_threshold_loop():
    emb1, emb2, issame = _pairs(5, 3000, noise=1.2)
    dist = pair_distances(emb1, emb2)
    for far in (1e-3, 1e-2, 0.1):
        best = 0.0
        for t in np.r_[np.unique(dist), np.inf]:  # accept "distance < t"
            if np.mean(dist[~issame] < t) <= far:
                best = max(best, float(np.mean(dist[issame] < t)))
        assert tar_at_far(dist, issame, far)[0] == best


# ---------------------------------------------------------------- verify_pairs, flip fusion


def test_flip_fusion():
    assert np.array_equal(flip_fuse(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])), [[1.0, 1.0]])
    # genuine pairs: [1, 0] + mirror [0, 1] vs [0, 1] + mirror [1, 0] -> both fuse to [1, 1] (distance 0),
    # although the unfused embeddings are orthogonal (distance 2); impostors the other way round
    issame = np.array([True, False] * 10)
    e1 = np.array([[1.0, 0.0]] * 20)
    f1 = np.where(issame[:, None], [[0.0, 1.0]], [[0.0, -1.0]])
    e2 = np.where(issame[:, None], [[0.0, 1.0]], [[1.0, 0.0]])
    f2 = np.where(issame[:, None], [[1.0, 0.0]], [[0.0, 1.0]])
    np.testing.assert_allclose(
        pair_distances(flip_fuse(e1, f1), flip_fuse(e2, f2)), np.where(issame, 0, 2), atol=1e-15
    )
    assert verify_pairs(e1, e2, issame, emb1_flip=f1, emb2_flip=f2, n_folds=2).accuracy == 1.0
    assert verify_pairs(e1, e2, issame, n_folds=2).accuracy == 0.5
    emb1, emb2, issame = _pairs(6, 400)
    f1, f2 = np.flip(emb1, axis=1), np.flip(emb2, axis=1)
    fused = verify_pairs(emb1, emb2, issame, emb1_flip=f1, emb2_flip=f2)
    manual = verify_pairs(emb1 + f1, emb2 + f2, issame)
    assert np.array_equal(fused.fold_accuracies, manual.fold_accuracies)
    assert fused.auc == manual.auc
    with pytest.raises(ValueError, match="both"):
        verify_pairs(emb1, emb2, issame, emb1_flip=f1)


def test_verify_pairs_summary():
    emb1, emb2, issame = _pairs(7, 1000)
    res = verify_pairs(torch.from_numpy(emb1), torch.from_numpy(emb2), torch.from_numpy(issame), far=1e-2)
    dist = pair_distances(emb1, emb2)
    acc, thr = kfold_accuracy(dist, issame)
    assert res.accuracy == acc.mean() and res.accuracy_std == acc.std()
    assert np.array_equal(res.fold_thresholds, thr)
    assert res.auc == roc_auc(dist, issame)
    assert (res.tar, res.tar_threshold) == tar_at_far(dist, issame, 1e-2)


# ---------------------------------------------------------------- groups


def test_group_accuracy_and_disparate_impact():
    rng = np.random.default_rng(8)
    blocks, ids = [], []
    for g, noise in enumerate([0.6, 0.9, 1.2, 1.5]):  # four RFW-like groups of decreasing quality
        e1, e2, same = _pairs(10 + g, 600, noise=noise)
        blocks.append((pair_distances(e1, e2), same))
        ids.append(np.full(600, g))
    order = rng.permutation(2400)  # groups interleaved in the pair list
    dist = np.concatenate([b[0] for b in blocks])[order]
    issame = np.concatenate([b[1] for b in blocks])[order]
    group_ids = np.concatenate(ids)[order]
    group_acc = group_verification_accuracy(dist, issame, group_ids, num_groups=5)
    for g in range(4):
        m = group_ids == g
        assert group_acc[g] == _loop_lfw(dist[m], issame[m])[0].mean()
    assert math.isnan(group_acc[4])
    assert group_acc[0] > group_acc[3]
    di = disparate_impact_ratio(group_acc[:4])
    assert di == group_acc[:4].min() / group_acc[:4].max()
    assert disparate_impact_ratio(group_acc, minority=3, majority=0) == group_acc[3] / group_acc[0]


# ---------------------------------------------------------------- errors


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"issame must be a boolean array \[P\] with P=3"):
        kfold_accuracy(np.ones(3), np.ones(4, bool), n_folds=2)
    with pytest.raises(ValueError, match="n_folds=10"):
        kfold_accuracy(np.ones(5), np.ones(5, bool))
    with pytest.raises(ValueError, match="NaN"):
        kfold_accuracy(np.array([0.1, np.nan, 1.0, 2.0]), np.array([1, 0, 1, 0]), n_folds=2)
    with pytest.raises(ValueError, match="boolean"):
        kfold_accuracy(np.ones(4), np.array([0, 2, 1, 0]), n_folds=2)
    with pytest.raises(ValueError, match="ascending"):
        kfold_accuracy(np.ones(4), np.ones(4, bool), n_folds=2, thresholds=np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="far"):
        tar_at_far(np.ones(4), np.array([1, 0, 1, 0]), far=0.0)
    with pytest.raises(ValueError, match="genuine and impostor"):
        roc_curve(np.ones(4), np.ones(4, bool))
    with pytest.raises(ValueError, match="same shape"):
        pair_distances(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="integer"):
        group_verification_accuracy(np.ones(4), np.ones(4, bool), np.zeros(4))
