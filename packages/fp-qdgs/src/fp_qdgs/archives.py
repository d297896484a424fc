"""The two grid archives of a QDGS run, their metrics, and reading solutions back out.

* The *search* archive is CMA-MAE's (``learning_rate < 1``, ``threshold_min``): a solution enters when it beats
  its cell's *threshold*, which then moves only a step ``learning_rate`` towards the objective, so the elite it
  keeps is not always the best seen. The emitters rank against it.
* The *result* archive is an ordinary elitist ``GridArchive`` (``learning_rate`` 1, ``threshold_min`` -inf)
  that keeps the best solution ever seen per cell; metrics and exports come from it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from ribs.archives import GridArchive

from fp_core.seeds import derive_seed
from fp_qdgs.config import SamplerConfig

__all__ = [
    "ArchiveSample",
    "acceptance_mask",
    "archive_metrics",
    "clipped_share",
    "make_result_archive",
    "make_search_archive",
    "sample_archive",
]


def make_search_archive(config: SamplerConfig, solution_dim: int) -> GridArchive:
    """The CMA-MAE archive: ``config.measure_dims`` cells over ``config.measure_ranges``."""
    return GridArchive(
        solution_dim=solution_dim,
        dims=config.measure_dims,
        ranges=config.measure_ranges,
        learning_rate=config.learning_rate,
        threshold_min=config.threshold_min,
        qd_score_offset=config.objective_offset,
        seed=_archive_seed(config, "search"),
    )


def make_result_archive(config: SamplerConfig, solution_dim: int) -> GridArchive:
    """The elitist result archive (best solution per cell), same cells as the search archive."""
    return GridArchive(
        solution_dim=solution_dim,
        dims=config.measure_dims,
        ranges=config.measure_ranges,
        qd_score_offset=config.objective_offset,
        seed=_archive_seed(config, "result"),
    )


def _archive_seed(config: SamplerConfig, purpose: str) -> int:
    return derive_seed(config.seed, "archive", purpose) % (2**32)


def archive_metrics(archive: GridArchive) -> dict[str, float]:
    """Coverage, QD score, normalised QD score, best and mean objective of ``archive``.

    ``qd_score = sum(objective - offset)`` over elites (``offset = archive.qd_score_offset``);
    ``norm_qd_score = qd_score / archive.cells``. Best and mean are NaN for an empty archive.
    """
    stats = archive.stats
    return {
        "coverage": float(stats.coverage),
        "qd_score": float(stats.qd_score),
        "norm_qd_score": float(stats.norm_qd_score),
        "num_elites": float(stats.num_elites),
        "objective_max": float("nan") if stats.obj_max is None else float(stats.obj_max),
        "objective_mean": float("nan") if stats.obj_mean is None else float(stats.obj_mean),
    }


def clipped_share(archive: GridArchive, measures: np.ndarray) -> float:
    """Share of rows of ``measures [B, k]`` outside the archive's ranges in any dimension (ribs clips them)."""
    measures = np.asarray(measures)
    outside = (measures < archive.lower_bounds) | (measures > archive.upper_bounds)
    return float(outside.any(axis=1).mean()) if len(measures) else 0.0


def acceptance_mask(archive: GridArchive, objective: np.ndarray, measures: np.ndarray) -> np.ndarray:
    """Which solutions ``archive.add`` would accept now: ``objective [B] > threshold`` of their cell ``[B]`` bool.

    The same rule ribs' ``add`` applies (thresholds of empty cells are ``threshold_min``), evaluated before the
    add, so it equals ``add_info["status"] > 0``.
    """
    occupied, data = archive.retrieve(measures)
    threshold = np.where(occupied, data["threshold"], archive.threshold_min)
    return np.asarray(objective) > threshold


class ArchiveSample(NamedTuple):
    """Solutions read out of an archive.

    ``latents [N, n]`` float32, ``measures [N, k]`` float32, ``objectives [N]`` float32, ``indices [N]`` int64
    (flat cell indices, ``archive.int_to_grid_index`` turns them into grid coordinates).
    """

    latents: torch.Tensor
    measures: torch.Tensor
    objectives: torch.Tensor
    indices: torch.Tensor


def sample_archive(
    archive: GridArchive, n: int | None = None, *, seed: int = 0, replace: bool = False
) -> ArchiveSample:
    """All elites of ``archive`` sorted by cell (``n=None``), or ``n`` of them drawn with ``numpy`` seed ``seed``."""
    data = archive.data(["solution", "objective", "measures", "index"])
    order = np.argsort(data["index"], kind="stable")
    if n is not None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if not replace and n > len(order):
            raise ValueError(f"cannot draw {n} elites without replacement from an archive of {len(order)}")
        if len(order) == 0 and n > 0:
            raise ValueError("the archive is empty")
        order = order[np.random.default_rng(seed).choice(len(order), size=n, replace=replace)]
    return ArchiveSample(
        latents=torch.as_tensor(data["solution"][order], dtype=torch.float32),
        measures=torch.as_tensor(data["measures"][order], dtype=torch.float32),
        objectives=torch.as_tensor(data["objective"][order], dtype=torch.float32),
        indices=torch.as_tensor(data["index"][order], dtype=torch.int64),
    )
