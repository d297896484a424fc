"""What every generated-image evaluation shares (Pix2PixHD, ControlNet, FairHuman): mean ± s.e., the
bootstrap s.e. of a Frechet distance over images, the feature space of the FD, LPIPS or why it is unavailable.

The offline default's FD is computed in the embedded face CLIP's feature space (``"CLIP-FD (embedded face
CLIP)"``), never presented as an FID; LPIPS without its local trunk weights is the string
``"unavailable: place <file> at <path>"``, never a number from random weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fp_pipeline.stages.gan_common import fd_label

__all__ = [
    "blas_threads",
    "bootstrap_se",
    "fd_with_se",
    "feature_fn",
    "grid_figure",
    "lpips_or_reason",
    "mean_se",
    "sample_rows_figure",
    "write_sample_rows",
]


def mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    """``(mean, standard error)`` with the sample standard deviation (ddof 1); s.e. None for one value."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_se needs at least one value")
    if x.size == 1:
        return float(x[0]), None
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def bootstrap_se(statistic: Callable[[np.ndarray], float], n: int, *, samples: int, seed: int) -> float:
    """Bootstrap standard error of ``statistic(indices)`` over ``n`` items: the sample standard deviation
    (ddof 1) of ``statistic`` on ``samples`` resamples of ``range(n)`` drawn with replacement (seeded)."""
    if n < 2 or samples < 2:
        raise ValueError(f"bootstrap_se needs n >= 2 items and samples >= 2, got {n} and {samples}")
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, size=n)) for _ in range(samples)]
    return float(np.std(values, ddof=1))


def lpips_or_reason(net: str) -> tuple[Any | None, str | None]:
    """``(LPIPSDistance(net), None)`` when its trunk weights are local, else ``(None, "unavailable: place
    <file> at <path>")`` (never random weights)."""
    from fp_core.weights import WeightsNotFoundError, weights_dir
    from fp_metrics.perceptual import LPIPS_TRUNK_FILES, LPIPSDistance

    try:
        return LPIPSDistance(net), None
    except (WeightsNotFoundError, ImportError) as err:
        if isinstance(err, ImportError):
            return None, f"unavailable: the lpips package is not installed ({err})"
        filename, url = LPIPS_TRUNK_FILES[net]
        return None, f"unavailable: place {filename} at {weights_dir() / filename} (from {url})"


def blas_threads(params: dict[str, Any], key: str = "gan") -> Any:
    """A context limiting numpy's BLAS to ``gan.torch_threads`` threads (when > 0 and threadpoolctl is
    installed): on the shared 2-core box one FD took 0.33 s with 2 OpenBLAS threads and 4 ms with one, which
    decides whether the bootstrap takes seconds or minutes. ``key``: the params section (``gan``, ...)."""
    import contextlib

    threads = int((params.get(key) or {}).get("torch_threads", 0) or 0)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(threads) if threads > 0 else contextlib.nullcontext()


def feature_fn(ecfg: dict[str, Any]) -> Callable[[Any], np.ndarray]:
    """Images ``[N, 3, H, W]`` in [0, 1] -> features ``[N, D]`` (the embedded face CLIP or Inception)."""
    features = str(ecfg.get("features", "clip"))
    fd_label(features)
    if features == "clip":
        from fp_metrics.clip_models import load_clip

        clip = load_clip(str(ecfg["clip"]))
        return lambda images: clip.encode_images(images).numpy().astype(np.float64)
    from fp_metrics.features import InceptionFeatureExtractor, extract_features

    inception = InceptionFeatureExtractor(ecfg.get("inception_path")).eval()
    return lambda images: extract_features(images, inception).astype(np.float64)


def fd_with_se(
    generated_features: np.ndarray, real_features: np.ndarray, *, samples: int, seed: int
) -> tuple[float, float]:
    """``(FD, bootstrap s.e.)`` between paired feature sets ``[N, D]`` (resampling image indices jointly)."""
    from fp_metrics.generative import fid_from_features

    fd = fid_from_features(generated_features, real_features)
    se = bootstrap_se(
        lambda idx: fid_from_features(generated_features[idx], real_features[idx]),
        len(generated_features),
        samples=samples,
        seed=seed,
    )
    return fd, se


# -- sample figures -------------------------------------------------------------------------------------------


def grid_figure(grid: np.ndarray, title: str, *, pixels_per_inch: float = 40.0) -> Any:
    """A matplotlib figure of one image grid ``[H, W, 3]`` uint8 under ``title`` (sized to the grid)."""
    from matplotlib.figure import Figure

    height, width = grid.shape[:2]
    size = (max(3.0, width / pixels_per_inch), max(1.5, height / pixels_per_inch + 0.3))
    fig = Figure(figsize=size, constrained_layout=True)
    ax = fig.subplots()
    ax.imshow(grid)
    ax.axis("off")
    ax.set_title(title, fontsize=8)
    return fig


def write_sample_rows(path: Path, maps: np.ndarray, generated: np.ndarray, real: np.ndarray) -> None:
    """Save one variant's sample rows (each ``[K, H, W, 3]`` uint8: conditions, generated, real) to ``path``
    (``.npz``, atomically), the file :func:`sample_rows_figure` reads."""
    import io

    from fp_core.atomic import write_bytes

    buffer = io.BytesIO()
    np.savez_compressed(buffer, maps=maps, generated=generated, real=real)
    write_bytes(path, buffer.getvalue())


def sample_rows_figure(files: Sequence[tuple[str, Path]], title: str) -> Any | None:
    """Rows per ``(variant, samples.npz)``: its conditions, its generated images; last row the real images
    (from the last file read). Missing files are skipped; ``None`` when none exists."""
    from matplotlib.figure import Figure

    rows, names, real = [], [], None
    for variant, file in files:
        if not file.is_file():
            continue
        with np.load(file, allow_pickle=False) as data:
            rows += [
                np.concatenate(list(data["maps"]), axis=1),
                np.concatenate(list(data["generated"]), axis=1),
            ]
            names += [f"{variant}: maps", f"{variant}: generated"]
            real = np.concatenate(list(data["real"]), axis=1)
    if real is None:
        return None
    rows.append(real)
    names.append("real")
    fig = Figure(
        figsize=(rows[0].shape[1] / rows[0].shape[0] + 1.5, 1.0 * len(rows)), constrained_layout=True
    )
    for ax, row, name in zip(fig.subplots(len(rows), 1, squeeze=False)[:, 0], rows, names, strict=True):
        ax.imshow(row)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=8)
    return fig
