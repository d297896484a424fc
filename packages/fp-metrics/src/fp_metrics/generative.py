"""FID and KID from feature arrays, and streaming (mergeable) feature statistics. All math in float64.

FID: ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)`` with ``tr sqrt(S1 S2)`` computed as the sum of
square roots of the eigenvalues of the symmetric PSD matrix ``sqrt(S1) S2 sqrt(S1)`` (same spectrum as
``S1 S2``), eigenvalues below the rounding level taken as 0. It stays real, finite and accurate when the
covariances are singular (fewer samples than dimensions), where ``scipy.linalg.sqrtm`` is unreliable.

KID: unbiased MMD^2 with the polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over
``num_subsets`` random subsets of size ``m = min(N_a, N_b, max_subset_size)`` drawn without replacement by
``numpy.random.RandomState(seed)`` (the sampling order of clean-fid's ``kernel_distance`` after
``np.random.seed(seed)``: first from ``b``, then from ``a``). When ``max_subset_size >= max(N_a, N_b)`` the
full-sample unbiased MMD^2 is returned instead: exact, independent of the seed (with ``N_a == N_b`` it is
what every clean-fid subset computes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "FeatureStats",
    "fid_from_features",
    "fid_from_stats",
    "frechet_distance",
    "kid_from_features",
    "mmd2_unbiased",
]

ArrayLike = np.ndarray | torch.Tensor


def _matrix64(x: ArrayLike, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _features64(x: ArrayLike, name: str) -> np.ndarray:
    arr = _matrix64(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a feature matrix [N, D], got shape {arr.shape}")
    return arr


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance of two Gaussians: ``mu [D]``, ``sigma [D, D]`` -> float (eigenvalue method).

    ``tr sqrt(S1 S2)`` is the sum of the square roots of the eigenvalues of the symmetric PSD
    ``sqrt(S1) S2 sqrt(S1)``, those below the rounding level ``D * eps * max`` taken as 0, so the result is
    real, finite and accurate for singular covariances too.
    """
    m1, m2 = (np.atleast_1d(_matrix64(m, name)) for m, name in ((mu1, "mu1"), (mu2, "mu2")))
    s1, s2 = (np.atleast_2d(_matrix64(s, name)) for s, name in ((sigma1, "sigma1"), (sigma2, "sigma2")))
    d = m1.shape[0]
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"expected mu [D] and sigma [D, D] with one D, got mu1 {m1.shape}, sigma1 {s1.shape}, "
            f"mu2 {m2.shape}, sigma2 {s2.shape}"
        )
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    # Eigenvalues below the rounding level (D * eps * largest) are zeros of a singular product; their
    # square roots would otherwise add a sqrt(eps)-sized bias.
    tol = d * np.finfo(np.float64).eps * max(float(eig.max(initial=0.0)), 0.0)
    tr_covmean = float(np.sqrt(np.where(eig > tol, eig, 0.0)).sum())
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(a: ArrayLike, b: ArrayLike) -> float:
    """FID between feature sets ``a [N, D]`` and ``b [M, D]`` (covariances with ddof = 1, as clean-fid)."""
    fa, fb = _features64(a, "a"), _features64(b, "b")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"a and b must have the same feature dimension, got {fa.shape[1]} and {fb.shape[1]}")
    if fa.shape[0] < 2 or fb.shape[0] < 2:
        raise ValueError(
            f"need at least 2 samples per set for a covariance, got {fa.shape[0]} and {fb.shape[0]}"
        )
    return frechet_distance(
        fa.mean(axis=0), np.cov(fa, rowvar=False), fb.mean(axis=0), np.cov(fb, rowvar=False)
    )


def _kernel_sum(x: np.ndarray, y: np.ndarray, *, drop_diagonal: bool, block: int = 2048) -> float:
    """Sum of ``(x.y/d + 1)^3`` over all pairs, in row blocks (memory O(block * N))."""
    d = x.shape[1]
    total = 0.0
    for start in range(0, x.shape[0], block):
        k = (x[start : start + block] @ y.T / d + 1) ** 3
        if drop_diagonal:
            rows = np.arange(k.shape[0])
            k[rows, start + rows] = 0.0
        total += float(k.sum())
    return total


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    n, m = x.shape[0], y.shape[0]
    kxx = _kernel_sum(x, x, drop_diagonal=True) / (n * (n - 1))
    kyy = _kernel_sum(y, y, drop_diagonal=True) / (m * (m - 1))
    kxy = _kernel_sum(x, y, drop_diagonal=False) / (n * m)
    return kxx + kyy - 2 * kxy


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"a and b must have the same feature dimension, got {x.shape[1]} and {y.shape[1]}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"need at least 2 samples per set, got {x.shape[0]} and {y.shape[0]}")


def mmd2_unbiased(a: ArrayLike, b: ArrayLike) -> float:
    """Unbiased MMD^2, cubic polynomial kernel (gamma = 1/D, coef = 1): ``[N, D]``, ``[M, D]`` -> float.

    ``sum_{i != j} k(a_i, a_j) / (N (N-1)) + sum_{i != j} k(b_i, b_j) / (M (M-1))
    - 2 mean_{i, j} k(a_i, b_j)``.
    """
    x, y = _features64(a, "a"), _features64(b, "b")
    _check_pair(x, y)
    return _mmd2(x, y)


def kid_from_features(
    a: ArrayLike, b: ArrayLike, *, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0
) -> float:
    """KID between ``a [N, D]`` and ``b [M, D]``: mean unbiased MMD^2 over random subsets (see module doc).

    With ``max_subset_size >= max(N, M)`` this is exactly :func:`mmd2_unbiased` of the full sets and
    ``num_subsets`` / ``seed`` play no role.
    """
    x, y = _features64(a, "a"), _features64(b, "b")
    _check_pair(x, y)
    if isinstance(num_subsets, bool) or not isinstance(num_subsets, int) or num_subsets < 1:
        raise ValueError(f"num_subsets must be a positive int, got {num_subsets!r}")
    if isinstance(max_subset_size, bool) or not isinstance(max_subset_size, int) or max_subset_size < 2:
        raise ValueError(f"max_subset_size must be an int >= 2, got {max_subset_size!r}")
    if max_subset_size >= max(x.shape[0], y.shape[0]):
        return _mmd2(x, y)
    m = min(x.shape[0], y.shape[0], max_subset_size)
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        sub_b = y[rng.choice(y.shape[0], m, replace=False)]
        sub_a = x[rng.choice(x.shape[0], m, replace=False)]
        total += _mmd2(sub_a, sub_b)
    return total / num_subsets


class FeatureStats:
    """Running mean and covariance of features (Chan et al. pairwise update), O(D^2) memory.

    ``update(x [B, D])`` adds a batch; ``merge(other)`` folds in another accumulator (another shard or
    process: send :meth:`state_dict`, rebuild with :meth:`from_state_dict`); ``mean [D]`` and ``cov [D, D]``
    (ddof = 1) come back as float64 NumPy arrays (copies). Accumulates in float64 on the device of the
    first batch. Merging is exact up to rounding: any split of the data gives the same statistics.
    """

    def __init__(self, dim: int | None = None) -> None:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive int or None, got {dim!r}")
        self.dim = dim
        self.n = 0
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None  # sum of outer products of centred features [D, D]

    def __repr__(self) -> str:
        return f"FeatureStats(dim={self.dim}, n={self.n})"

    def _fold_in(
        self, n_b: int, mean_b: torch.Tensor, m2_b: torch.Tensor | None, xc: torch.Tensor | None
    ) -> None:
        """Chan et al.: ``M2 = M2_a + M2_b + delta delta^T n_a n_b / n``, in place on owned tensors.

        ``M2_b`` is either given or ``xc^T xc`` of centred features ``xc [B, D]`` (added without a
        temporary ``[D, D]`` copy).
        """
        if m2_b is None and xc is None:
            raise ValueError("internal: need m2_b or centred features")
        if self._mean is None or self._m2 is None or self.n == 0:
            self._mean = mean_b.clone()
            self._m2 = m2_b.clone() if m2_b is not None else xc.T @ xc
            self.n = n_b
            return
        device = self._mean.device
        n = self.n + n_b
        delta = mean_b.to(device) - self._mean
        if m2_b is not None:
            self._m2.add_(m2_b.to(device))
        else:
            xc_d = xc.to(device)
            self._m2.addmm_(xc_d.T, xc_d)
        self._m2.addr_(delta, delta, alpha=self.n * n_b / n)
        self._mean.add_(delta, alpha=n_b / n)
        self.n = n

    def update(self, features: ArrayLike) -> FeatureStats:
        """Add a batch of features ``[B, D]`` (tensor or array); returns ``self``."""
        x = features.detach() if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
        if x.dim() != 2:
            raise ValueError(f"features must have shape [B, D], got {tuple(x.shape)}")
        if x.dtype == torch.bool or x.dtype.is_complex:
            raise ValueError(f"features must be real numbers, got dtype {x.dtype}")
        if self.dim is None:
            self.dim = x.shape[1]
        if x.shape[1] != self.dim:
            raise ValueError(f"features have dimension {x.shape[1]}, expected {self.dim}")
        if x.shape[0] == 0:
            return self
        x = x.to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("features contain NaN or inf")
        mean_b = x.mean(dim=0)
        self._fold_in(x.shape[0], mean_b, None, x - mean_b)
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Fold another accumulator into this one (``other`` is left unchanged); returns ``self``."""
        if not isinstance(other, FeatureStats):
            raise ValueError(f"can only merge FeatureStats, got {type(other).__name__}")
        if self.dim is not None and other.dim is not None and other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {other.dim} into dimension {self.dim}")
        if other.n == 0 or other._mean is None or other._m2 is None:
            return self
        self.dim = other.dim
        self._fold_in(other.n, other._mean, other._m2, None)
        return self

    @property
    def mean(self) -> np.ndarray:
        """Feature mean, float64 ``[D]``."""
        if self._mean is None:
            raise ValueError("FeatureStats is empty; call update() first")
        return self._mean.cpu().numpy().copy()

    @property
    def cov(self) -> np.ndarray:
        """Feature covariance (ddof = 1), float64 ``[D, D]``."""
        if self._m2 is None or self.n < 2:
            raise ValueError(f"need at least 2 samples for a covariance, have {self.n}")
        return (self._m2 / (self.n - 1)).cpu().numpy()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays ``n`` (int64), ``mean [D]``, ``m2 [D, D]``, restored exactly by :meth:`from_state_dict`."""
        if self._mean is None or self._m2 is None:
            raise ValueError("FeatureStats is empty; nothing to save")
        return {
            "n": np.asarray(self.n, dtype=np.int64),
            "mean": self.mean,
            "m2": self._m2.cpu().numpy().copy(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> FeatureStats:
        """Rebuild statistics saved by :meth:`state_dict` (or read by :meth:`load`)."""
        missing = {"n", "mean", "m2"} - set(state)
        if missing:
            raise ValueError(f"state is missing keys {sorted(missing)}; expected n, mean [D], m2 [D, D]")
        mean = np.array(state["mean"], dtype=np.float64)
        m2 = np.array(state["m2"], dtype=np.float64)
        n = int(np.asarray(state["n"]))
        if mean.ndim != 1 or m2.shape != (mean.shape[0], mean.shape[0]) or n < 1:
            raise ValueError(
                f"inconsistent state: n={n}, mean {mean.shape}, m2 {m2.shape}; expected [D], [D, D], n>=1"
            )
        out = cls(dim=mean.shape[0])
        out.n = n
        out._mean = torch.from_numpy(mean)
        out._m2 = torch.from_numpy(m2)
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the statistics to an ``.npz`` file (NumPy appends ``.npz`` if missing)."""
        np.savez(Path(path), **self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read statistics written by :meth:`save`."""
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"feature statistics file {file} does not exist")
        with np.load(file) as data:
            return cls.from_state_dict({k: data[k] for k in data.files})


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two accumulated :class:`FeatureStats` (each with ``n >= 2`` and one ``D``)."""
    if not isinstance(a, FeatureStats) or not isinstance(b, FeatureStats):
        raise ValueError(
            f"fid_from_stats expects two FeatureStats, got {type(a).__name__}, {type(b).__name__}"
        )
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
