"""Identity labels of a QDGS face archive, as in the public QDGS code: chunks over two measures, K-means inside.

The first two measures (in QDGS, CLIP angle differences such as yaw and smile prompts) are binned by ``edges``
into ``(-inf, e_0], (e_0, e_1], ..., (e_last, inf)``; the public code uses ``edges = (-0.03, 0.03)``, so 3 x 3 =
9 chunks. Chunk id = ``bin(m_0) * (len(edges) + 1) + bin(m_1)`` (row-major over the first measure). Inside each
chunk of ``n`` samples the latents are clustered by K-means with ``k = ceil(n / 2)`` (so an identity holds about
two solutions on average); every cluster is one identity. A chunk of one sample is one identity.

Labels are globally unique and contiguous: chunks in increasing id, clusters inside a chunk numbered in order of
their first sample, so the labels are ``0 .. K-1`` and a fixed ``seed`` always gives the same labels. Samples
with identical latents may make K-means find fewer than ``k`` distinct clusters; then the chunk has fewer
identities (never an empty label).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from fp_core.seeds import derive_seed

__all__ = ["DEFAULT_EDGES", "KMEANS_N_INIT", "chunk_labels", "identity_labels", "num_chunks"]

DEFAULT_EDGES: tuple[float, float] = (-0.03, 0.03)
KMEANS_N_INIT = 10


def _array(name: str, values: torch.Tensor | np.ndarray, *, min_dims: int) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim < min_dims or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"{name} must be a numeric array of at least {min_dims} dims, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return array.astype(np.float64)


def _check_edges(edges: Sequence[float]) -> np.ndarray:
    e = np.asarray(list(edges), dtype=np.float64)
    if e.ndim != 1 or len(e) < 1 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(
            f"edges must be a non-empty, strictly increasing sequence of finite floats, got {edges}"
        )
    return e


def num_chunks(edges: Sequence[float] = DEFAULT_EDGES) -> int:
    """``(len(edges) + 1) ** 2``: 9 for the default two edges."""
    return (len(_check_edges(edges)) + 1) ** 2


def chunk_labels(measures: torch.Tensor | np.ndarray, edges: Sequence[float] = DEFAULT_EDGES) -> np.ndarray:
    """Chunk ids ``[N]`` int64 in ``0 .. (len(edges)+1)**2 - 1`` of ``measures [N, M]`` (``M >= 2``).

    Bin ``b`` of a value ``x`` is the number of edges strictly below it: ``x <= e_0`` -> 0,
    ``e_0 < x <= e_1`` -> 1, ``x > e_1`` -> 2 for two edges. Chunk = ``b(m_0) * (len(edges)+1) + b(m_1)``.
    """
    m = _array("measures", measures, min_dims=2)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError(f"measures must have shape [N, M] with M >= 2, got {m.shape}")
    e = _check_edges(edges)
    bins = np.searchsorted(e, m[:, :2], side="left")  # edges[b-1] < x <= edges[b]
    return (bins[:, 0] * (len(e) + 1) + bins[:, 1]).astype(np.int64)


def _cluster(latents: np.ndarray, seed: int) -> np.ndarray:
    """K-means labels ``[n]`` with ``k = ceil(n / 2)``, renumbered by first appearance (``0 ..``)."""
    n = len(latents)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    k = math.ceil(n / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # duplicate latents: fewer distinct clusters
        raw = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(latents)
    _, first = np.unique(raw, return_index=True)
    order = {int(raw[i]): rank for rank, i in enumerate(sorted(first))}
    return np.array([order[int(c)] for c in raw], dtype=np.int64)


def identity_labels(
    latents: torch.Tensor | np.ndarray,
    measures: torch.Tensor | np.ndarray,
    *,
    edges: Sequence[float] = DEFAULT_EDGES,
    seed: int = 0,
) -> np.ndarray:
    """Identity labels ``[N]`` int64 (contiguous ``0 .. K-1``) of an archive's ``latents [N, ...]`` and
    ``measures [N, M]``: K-means with ``k = ceil(n_c / 2)`` inside each chunk of :func:`chunk_labels`.

    Latents of any trailing shape (``[N, D]``, a W+ ``[N, L, 512]``) are flattened. Chunk ``c`` clusters with
    seed ``derive_seed(seed, "identities", c)`` and ``n_init`` = :data:`KMEANS_N_INIT`, so the same ``seed``
    gives the same labels and no cluster crosses a chunk.
    """
    z = _array("latents", latents, min_dims=2)
    z = z.reshape(len(z), -1)
    chunks = chunk_labels(measures, edges)
    if len(chunks) != len(z):
        raise ValueError(f"latents has {len(z)} rows but measures has {len(chunks)}; expected one per sample")
    labels = np.full(len(z), -1, dtype=np.int64)
    offset = 0
    for chunk in np.unique(chunks):
        idx = np.flatnonzero(chunks == chunk)
        local = _cluster(z[idx], derive_seed(seed, "identities", int(chunk)) % 2**32)
        labels[idx] = local + offset
        offset += int(local.max()) + 1
    return labels
