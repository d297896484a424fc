"""Identity labels: chunks over two measures at and around the edges, K-means within chunks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fp_qdgs.faces.identities import chunk_labels, identity_labels, num_chunks


def test_chunk_ids_at_and_around_the_edges() -> None:
    eps = 1e-6
    values = [-1.0, -0.03 - eps, -0.03, -0.03 + eps, 0.0, 0.03, 0.03 + eps, 1.0]
    bins = [0, 0, 0, 1, 1, 1, 2, 2]  # (-inf, -0.03], (-0.03, 0.03], (0.03, inf)
    m = np.array([[a, b, 7.0] for a in values for b in values])
    expected = np.array([3 * ba + bb for ba in bins for bb in bins])
    np.testing.assert_array_equal(chunk_labels(m), expected)
    assert set(chunk_labels(m)) == set(range(9)) and num_chunks() == 9


def test_chunk_custom_edges_and_bad_input() -> None:
    m = np.array([[0.5, 2.5], [1.5, 0.0]])
    np.testing.assert_array_equal(chunk_labels(m, edges=(1.0, 2.0, 3.0)), [0 * 4 + 2, 1 * 4 + 0])
    with pytest.raises(ValueError, match="strictly increasing"):
        chunk_labels(m, edges=(0.1, -0.1))
    with pytest.raises(ValueError, match="M >= 2"):
        chunk_labels(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        chunk_labels(np.array([[np.nan, 0.0]]))


def _archive(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunk sizes 1, 2, 3, 7, 10 (chunks 0, 4, 8, 2, 6) and unequal latents."""
    rng = np.random.default_rng(seed)
    centre = {0: (-0.5, -0.5), 4: (0.0, 0.0), 8: (0.5, 0.5), 2: (-0.5, 0.5), 6: (0.5, -0.5)}
    sizes = {0: 1, 4: 2, 8: 3, 2: 7, 6: 10}
    measures, chunks = [], []
    for chunk, n in sizes.items():
        measures += [centre[chunk]] * n
        chunks += [chunk] * n
    order = rng.permutation(len(chunks))
    m = np.array(measures)[order]
    return rng.normal(size=(len(m), 8)), m, np.array(chunks)[order]


def test_identity_counts_contiguity_and_chunks() -> None:
    z, m, chunks = _archive()
    labels = identity_labels(z, m, seed=3)
    sizes = np.bincount(chunks)
    expected = sum(math.ceil(n / 2) for n in sizes if n)
    assert labels.dtype == np.int64 and len(labels) == len(z)
    assert sorted(set(labels.tolist())) == list(range(expected))  # 1 + 1 + 2 + 4 + 5 = 13
    assert expected == 13
    for label in range(expected):
        assert len(set(chunks[labels == label])) == 1  # no cluster crosses a chunk
    single = np.flatnonzero(chunks == 0)
    assert (labels == labels[single[0]]).sum() == 1  # the chunk of one sample is one identity


def test_same_seed_same_labels_and_wplus_latents() -> None:
    z, m, _ = _archive(1)
    a = identity_labels(z, m, seed=5)
    np.testing.assert_array_equal(a, identity_labels(z.copy(), m.copy(), seed=5))
    np.testing.assert_array_equal(
        a, identity_labels(z.reshape(len(z), 2, 4), m, seed=5)
    )  # W+-like: flattened


def test_kmeans_groups_near_pairs() -> None:
    """Six latents forming three tight pairs in one chunk: k = 3 and each pair is one identity."""
    base = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = np.concatenate([base, base + 0.01])
    labels = identity_labels(z, np.zeros((6, 2)), seed=0)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2])


def test_identity_labels_rejects_mismatch() -> None:
    with pytest.raises(ValueError, match="one per sample"):
        identity_labels(np.zeros((3, 2)), np.zeros((4, 2)))
