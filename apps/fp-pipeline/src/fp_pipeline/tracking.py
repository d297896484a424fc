"""MLflow wiring: each stage that trains or evaluates is one MLflow run.

Libraries never import mlflow; they take a ``log(metrics, step)`` callback. This module makes that callback
and records params, tags (git commit, data version, stage), figures and checkpoint references.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fp_pipeline.config import flatten

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_TRACKING_URI",
    "StageRun",
    "data_version",
    "file_digest",
    "git_commit",
    "save_figure",
    "stage_run",
    "tracking_uri",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "fp"
_METRIC_NAME = re.compile(r"[^0-9A-Za-z_\-. /]")


def tracking_uri() -> str:
    """The MLflow store: ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///mlflow.db`` (the working directory)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def git_commit(repo: Path | None = None) -> str:
    """The checked-out commit, with ``-dirty`` when tracked files differ from it; ``unknown`` outside git."""
    cwd = repo or Path.cwd()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def data_version(dvc_file: Path = Path("data.dvc")) -> str:
    """The content hash DVC records for the dataset directory (``outs[0].md5`` of ``data.dvc``)."""
    if not dvc_file.is_file():
        return "untracked"
    try:
        spec = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
        return str(spec["outs"][0]["md5"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return "unknown"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StageRun:
    """Handle on one active MLflow run; calling it logs metrics at a step (the libraries' ``log`` callback)."""

    def __init__(self, mlflow_module: Any, run_id: str) -> None:
        self._mlflow = mlflow_module
        self.run_id = run_id

    def __call__(self, metrics: Mapping[str, float], step: int) -> None:
        clean = {
            _METRIC_NAME.sub("_", str(name)): float(value)
            for name, value in metrics.items()
            if value is not None and math.isfinite(float(value))
        }
        if clean:
            self._mlflow.log_metrics(clean, step=int(step))

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        """Store a matplotlib figure as a run artifact (``plots/...png``)."""
        self._mlflow.log_figure(figure, artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a small file (report, metrics JSON) into the run."""
        self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_reference(self, name: str, path: Path) -> None:
        """Record a checkpoint by reference: its path and SHA-256 as tags, not a copy."""
        path = Path(path)
        self._mlflow.set_tag(f"ref.{name}.path", str(path.resolve()))
        if path.is_file():
            self._mlflow.set_tag(f"ref.{name}.sha256", file_digest(path))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._mlflow.set_tags({key: str(value) for key, value in tags.items()})


@contextmanager
def stage_run(
    stage: str,
    *,
    params: Mapping[str, Any],
    tags: Mapping[str, Any] | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> Iterator[StageRun]:
    """Open an MLflow run named after ``stage`` with flattened params and provenance tags.

    The run ends FINISHED when the block completes and FAILED when it raises.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(experiment) is None:
        # Artifacts live beside the store (./mlartifacts), not in a temp dir.
        mlflow.create_experiment(experiment, artifact_location=Path("mlartifacts").resolve().as_uri())
    mlflow.set_experiment(experiment)
    run_tags = {
        "fp.stage": stage,
        "git.commit": git_commit(),
        "data.version": data_version(),
        **{key: str(value) for key, value in (tags or {}).items()},
    }
    with mlflow.start_run(run_name=stage, tags=run_tags) as run:
        flat = {key: ("null" if value is None else value) for key, value in flatten(params).items()}
        if flat:
            mlflow.log_params({key: str(value)[:6000] for key, value in flat.items()})
        yield StageRun(mlflow, run.info.run_id)


def save_figure(figure: Figure, path: Path, run: StageRun | None = None, artifact_dir: str = "plots") -> Path:
    """Save ``figure`` as PNG (atomically) for DVC plots and, when a run is given, log it to MLflow."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if run is not None:
        run.log_figure(figure, f"{artifact_dir}/{path.name}")
    return path
