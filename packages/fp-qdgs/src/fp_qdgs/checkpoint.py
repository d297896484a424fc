"""Archives and run state on disk without pickle: ``.npz`` arrays (loaded with ``allow_pickle=False``) + JSON.

A checkpoint is a directory written atomically (``fp_core.atomic.atomic_output_dir``)::

    <dir>/search.npz     the CMA-MAE archive: solution, objective, measures, threshold, index per elite
    <dir>/result.npz     the result archive, same fields
    <dir>/scorer.npz     the scorer's state tensors (e.g. the CLIP scorer's image memory), if it has any
    <dir>/state.json     iteration, evaluations, best objective, config, both archives' settings

Restoring an archive writes the saved elites *and thresholds* straight into a fresh ``GridArchive``'s store
(ribs 0.12 has no public setter for CMA-MAE thresholds; re-adding the elites would move the thresholds again),
then recomputes its statistics. Emitter state (CMA-ES distributions, Adam moments) is not saved: on resume the
emitters restart from elites of the restored search archive (see :mod:`fp_qdgs.sampler`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ribs.archives import GridArchive

from fp_core.atomic import atomic_output_dir

__all__ = [
    "archive_arrays",
    "archive_settings",
    "load_archive",
    "load_checkpoint",
    "restore_archive",
    "save_archive",
    "save_checkpoint",
]

_FIELDS = ("solution", "objective", "measures", "threshold", "index")


def archive_arrays(archive: GridArchive) -> dict[str, np.ndarray]:
    """The elites of ``archive`` as plain arrays, sorted by cell index (``_FIELDS``)."""
    data = archive.data(list(_FIELDS))
    order = np.argsort(data["index"], kind="stable")
    return {name: np.ascontiguousarray(data[name][order]) for name in _FIELDS}


def archive_settings(archive: GridArchive) -> dict[str, Any]:
    """What it takes to rebuild an empty ``archive``: JSON-ready."""
    return {
        "solution_dim": int(archive.solution_dim),
        "dims": [int(d) for d in archive.dims],
        "ranges": [[float(lo), float(hi)] for lo, hi in zip(archive.lower_bounds, archive.upper_bounds)],
        "learning_rate": float(archive.learning_rate),
        "threshold_min": float(archive.threshold_min),
        "qd_score_offset": float(archive.qd_score_offset),
    }


def restore_archive(archive: GridArchive, arrays: dict[str, np.ndarray]) -> GridArchive:
    """Replace the contents of ``archive`` with saved ``arrays`` (thresholds included); returns ``archive``."""
    archive.clear()
    index = np.asarray(arrays["index"], dtype=np.int64)
    if len(index) == 0:
        return archive
    if len(np.unique(index)) != len(index) or index.min() < 0 or index.max() >= archive.cells:
        raise ValueError(f"saved cell indices must be unique and in [0, {archive.cells})")
    data = {name: np.asarray(arrays[name]) for name in ("solution", "objective", "measures", "threshold")}
    if data["solution"].shape != (len(index), archive.solution_dim):
        raise ValueError(
            f"saved solutions have shape {data['solution'].shape}; the archive expects "
            f"[{len(index)}, {archive.solution_dim}]"
        )
    archive._store.add(index, data)  # noqa: SLF001 -- ribs 0.12 has no public threshold setter
    objective_sum = np.asarray(data["objective"].sum(), dtype=archive.dtypes["objective"])
    archive._stats_update(objective_sum, int(index[np.argmax(data["objective"])]))  # noqa: SLF001
    return archive


def save_archive(archive: GridArchive, path: str | os.PathLike[str]) -> Path:
    """Write ``archive``'s elites to ``path`` (``.npz``, no pickle) and return the path."""
    path = Path(path)
    with open(path, "wb") as handle:
        np.savez(handle, **archive_arrays(archive))
    return path


def load_archive(
    path: str | os.PathLike[str], settings: dict[str, Any], seed: int | None = None
) -> GridArchive:
    """A ``GridArchive`` built from ``settings`` (:func:`archive_settings`) holding the elites saved at ``path``."""
    learning_rate = settings["learning_rate"]
    threshold_min = settings["threshold_min"]
    kwargs: dict[str, Any] = {}
    if not (learning_rate == 1.0 and threshold_min == -np.inf):
        kwargs = {"learning_rate": learning_rate, "threshold_min": threshold_min}
    archive = GridArchive(
        solution_dim=settings["solution_dim"],
        dims=settings["dims"],
        ranges=[tuple(r) for r in settings["ranges"]],
        qd_score_offset=settings["qd_score_offset"],
        seed=seed,
        **kwargs,
    )
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in _FIELDS}
    return restore_archive(archive, arrays)


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    search: GridArchive,
    result: GridArchive,
    state: dict[str, Any],
    scorer_state: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Atomically (re)write checkpoint ``directory``: both archives, ``state`` (JSON-ready) and scorer tensors."""
    with atomic_output_dir(directory) as tmp:
        save_archive(search, tmp / "search.npz")
        save_archive(result, tmp / "result.npz")
        if scorer_state:
            arrays = {name: t.detach().cpu().numpy() for name, t in scorer_state.items()}
            with open(tmp / "scorer.npz", "wb") as handle:
                np.savez(handle, **arrays)
        full = {
            **state,
            "search_archive": archive_settings(search),
            "result_archive": archive_settings(result),
        }
        (tmp / "state.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Path(directory)


def load_checkpoint(
    directory: str | os.PathLike[str], seeds: tuple[int | None, int | None] = (None, None)
) -> tuple[GridArchive, GridArchive, dict[str, Any], dict[str, torch.Tensor]]:
    """``(search archive, result archive, state, scorer tensors)`` from a :func:`save_checkpoint` directory."""
    directory = Path(directory)
    state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
    search = load_archive(directory / "search.npz", state["search_archive"], seed=seeds[0])
    result = load_archive(directory / "result.npz", state["result_archive"], seed=seeds[1])
    scorer_state: dict[str, torch.Tensor] = {}
    if (directory / "scorer.npz").exists():
        with np.load(directory / "scorer.npz", allow_pickle=False) as data:
            scorer_state = {name: torch.from_numpy(data[name].copy()) for name in data.files}
    return search, result, state, scorer_state
