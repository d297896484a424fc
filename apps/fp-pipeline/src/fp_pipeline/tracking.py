"""MLflow wiring: each stage that trains or evaluates is one MLflow run.

Libraries never import mlflow; they take a ``log(metrics, step)`` callback. This module makes that callback
and records params, tags, the input dataset, figures and checkpoint references.

Every run carries the tags ``fp.stage``, ``fp.paper`` (``parsing``, ``fairhuman``, ``qdgs`` or ``shared``),
``fp.variant``, ``fp.seed``, ``data.version`` and ``git.commit`` (also as ``mlflow.source.git.commit``), so
runs can be filtered and grouped by them in the MLflow UI. The experiment is tagged
``mlflow.experimentKind: custom_model_development`` so MLflow 3 opens it on the training runs.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import subprocess
import tempfile
import warnings
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
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "PAPER_OF_PREFIX",
    "StageRun",
    "data_version",
    "dataset_context",
    "dataset_version",
    "file_digest",
    "git_commit",
    "paper_of",
    "save_figure",
    "stage_run",
    "tracking_uri",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "fp"
#: MLflow 3 opens an experiment in the view its kind names; training runs belong in this one
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: stage-name prefix -> paper tag (``fp.paper``); a stage with no listed prefix is ``shared``
PAPER_OF_PREFIX: dict[str, str] = {
    "parsing": "parsing",
    "gan": "parsing",
    "controlnet": "parsing",
    "diffusion": "parsing",
    "fairhuman": "fairhuman",
    "qdgs": "qdgs",
    "clip": "qdgs",
    "shapes": "qdgs",
    "recognition": "qdgs",
}
_METRIC_NAME = re.compile(r"[^0-9A-Za-z_\-. /]")
_CONTEXT_OF_ACTION = {"train": "training", "eval": "evaluation", "export": "inference"}
_UNSET = "none"


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


def dataset_version(root: str | os.PathLike[str], lock_file: Path = Path("dvc.lock")) -> str:
    """The DVC content hash of dataset directory ``root``: from ``<root>.dvc`` when it exists, else from
    the ``outs`` of ``lock_file`` (a stage output such as ``outputs/synth``); ``untracked`` otherwise."""
    root = Path(root)
    dvc_file = root.with_name(f"{root.name}.dvc")
    if dvc_file.is_file():
        return data_version(dvc_file)
    if not lock_file.is_file():
        return "untracked"
    try:
        lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
        wanted = (lock_file.parent / root).resolve() if not root.is_absolute() else root.resolve()
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs") or []:
                if (lock_file.parent / str(out["path"])).resolve() == wanted:
                    return str(out["md5"])
    except (yaml.YAMLError, KeyError, TypeError, AttributeError):
        return "unknown"
    return "untracked"


def paper_of(stage: str) -> str:
    """The paper a stage belongs to, from its name's prefix (:data:`PAPER_OF_PREFIX`), else ``shared``."""
    prefix = re.split(r"[-@]", stage, maxsplit=1)[0]
    return PAPER_OF_PREFIX.get(prefix, "shared")


def dataset_context(stage: str) -> str:
    """The MLflow dataset context of a stage: ``training`` (``*-train``), ``evaluation`` (``*-eval``),
    ``inference`` (``*-export``), else ``input``."""
    action = stage.split("@", 1)[0].rsplit("-", 1)[-1]
    return _CONTEXT_OF_ACTION.get(action, "input")


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StageRun:
    """Handle on one active MLflow run; calling it logs metrics at a step (the libraries' ``log`` callback)."""

    def __init__(self, mlflow_module: Any, run_id: str, *, resumed: bool = False) -> None:
        self._mlflow = mlflow_module
        #: the MLflow run id; store it (e.g. in a training checkpoint) to continue this run later
        self.run_id = run_id
        #: whether this run was continued from an earlier process (``stage_run(..., run_id=...)``)
        self.resumed = resumed

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
        """Set run tags (values as strings)."""
        self._mlflow.set_tags({key: str(value) for key, value in tags.items()})


def _prepare_experiment(mlflow: Any, experiment: str) -> str:
    """Create ``experiment`` (artifacts in ./mlartifacts) or tag an existing one with its kind; its id."""
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        # Artifacts live beside the store (./mlartifacts), not in a temp dir.
        return mlflow.create_experiment(
            experiment,
            artifact_location=Path("mlartifacts").resolve().as_uri(),
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    if EXPERIMENT_KIND_TAG not in (found.tags or {}):
        mlflow.MlflowClient().set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return found.experiment_id


def _resumable(mlflow: Any, run_id: str, experiment_id: str) -> bool:
    """Whether run ``run_id`` exists, is not deleted and belongs to ``experiment_id`` (warns when not)."""
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.MlflowClient().get_run(run_id).info
    except MlflowException:
        reason = "is not in the store"
    else:
        if info.lifecycle_stage == "deleted":
            reason = "is deleted"
        elif info.experiment_id != experiment_id:
            reason = f"belongs to experiment {info.experiment_id}, not {experiment_id}"
        else:
            return True
    warnings.warn(f"MLflow run {run_id} {reason} ({tracking_uri()}); starting a new run", stacklevel=3)
    return False


def _log_params(mlflow: Any, run_id: str, params: Mapping[str, Any], resumed: bool) -> None:
    """Log flattened params; a resumed run only gets the keys it lacks (MLflow params are write-once)."""
    flat = {key: str("null" if value is None else value)[:6000] for key, value in flatten(params).items()}
    if resumed:
        logged = mlflow.MlflowClient().get_run(run_id).data.params
        changed = sorted(key for key, value in flat.items() if key in logged and logged[key] != value)
        if changed:
            warnings.warn(f"resumed MLflow run {run_id} keeps its logged values of {changed}", stacklevel=4)
        flat = {key: value for key, value in flat.items() if key not in logged}
    if flat:
        mlflow.log_params(flat)


def _log_dataset(mlflow: Any, root: Path, *, name: str, digest: str, context: str) -> None:
    """Log directory ``root`` as the run's input dataset (``name``, ``digest``) in ``context``."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    source = LocalArtifactDatasetSource(str(root.resolve()))
    mlflow.log_input(MetaDataset(source, name=name, digest=digest[:36]), context=context)


@contextmanager
def stage_run(
    stage: str,
    *,
    params: Mapping[str, Any],
    tags: Mapping[str, Any] | None = None,
    paper: str | None = None,
    variant: str | None = None,
    seed: int | None = None,
    dataset: str | os.PathLike[str] | None = None,
    dataset_name: str | None = None,
    context: str | None = None,
    run_id: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> Iterator[StageRun]:
    """Open an MLflow run named after ``stage`` with flattened params, provenance tags and its dataset.

    Args:
        stage: the run name and ``fp.stage`` tag, e.g. ``"parsing-train@single-0"``.
        params: logged flattened (``{"a": {"b": 1}}`` -> ``a.b``).
        tags: extra tags; ``fp.variant`` / ``fp.seed`` given here count as ``variant`` / ``seed``.
        paper: the ``fp.paper`` tag; default from the stage name (:func:`paper_of`).
        variant, seed: the ``fp.variant`` / ``fp.seed`` tags (``none`` when a stage has neither).
        dataset: the dataset directory the stage reads; logged as the run's input (the UI's Dataset
            column) with its DVC hash (:func:`dataset_version`) as digest, also the ``data.version`` tag.
            Without it ``data.version`` is the hash in ``data.dvc``.
        dataset_name: the dataset's name in MLflow; default the directory's name.
        context: the dataset's context; default from the stage name (:func:`dataset_context`).
        run_id: continue this run (e.g. the id a training checkpoint stored) instead of starting one;
            when it is not in the store a new run starts, with a warning. The first process's params stay.
        experiment: the MLflow experiment (created, and tagged with its kind, when needed).

    The run ends FINISHED when the block completes and FAILED when it raises.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    experiment_id = _prepare_experiment(mlflow, experiment)
    mlflow.set_experiment(experiment_id=experiment_id)
    extra = {key: str(value) for key, value in (tags or {}).items()}
    variant_tag = str(variant) if variant is not None else extra.pop("fp.variant", _UNSET)
    seed_tag = str(seed) if seed is not None else extra.pop("fp.seed", _UNSET)
    version = dataset_version(dataset) if dataset is not None else data_version()
    commit = git_commit()
    resumed = run_id is not None and _resumable(mlflow, run_id, experiment_id)
    run_tags = {
        "fp.stage": stage,
        "fp.paper": paper or paper_of(stage),
        "fp.variant": variant_tag,
        "fp.seed": seed_tag,
        "data.version": version,
        **extra,
    }
    commit_tags = {"git.commit": commit}
    if commit != "unknown":  # the UI's source version column; outside git there is none
        commit_tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
    if resumed:
        existing = mlflow.MlflowClient().get_run(run_id).data.tags
        commit_tags = {key: value for key, value in commit_tags.items() if key not in existing}
        commit_tags["fp.resumed.git.commit"] = commit
    started = mlflow.start_run(
        run_id=run_id if resumed else None, run_name=stage, tags=run_tags | commit_tags
    )
    with started as run:
        _log_params(mlflow, run.info.run_id, params, resumed)
        if dataset is not None:
            root = Path(dataset)
            _log_dataset(
                mlflow,
                root,
                name=dataset_name or root.resolve().name,
                digest=version,
                context=context or dataset_context(stage),
            )
        yield StageRun(mlflow, run.info.run_id, resumed=resumed)


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
