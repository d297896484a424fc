"""What every face-recognition stage shares: where outputs live and how params become run settings.

Layout (all under ``outputs/``)::

    recognition/data/                      the synthetic sets (recognition-data)
    recognition/pretrain/<source>/<trial>/ manifest.json (+ model/ unless the source is `none`)
    recognition/runs/<source>/<loss>/train/<trial>/model/  backbone.safetensors, backbone.json, head, history
    recognition/runs/<source>/<loss>/train/<trial>/train.json
    recognition/runs/<source>/<loss>/eval/<trial>/         metrics.json, evaluation.json, roc.json
    recognition/runs/<source>/<loss>/metrics.json          every trial's metrics (DVC metrics)
    recognition-report/                    report.md, summary.json, figures/*.png
    checkpoints/recognition-<source>-<loss>-<trial>/, checkpoints/recognition-pretrain-<source>-<trial>/  (resumable)

The run matrix is source x loss x trial: ``recognition.pretrain.run`` (keys of
``recognition.pretrain.sources``; ``none`` = no pretraining) x ``recognition.losses`` x ``recognition.trials``.
One stage per source (pretraining) and per source and loss (training, evaluation) runs every trial in one
process (``--trial`` picks one): each process pays ~14 s of imports and start-up, as much as a trial's work.
A run's settings are ``recognition.model`` then ``recognition.train`` then ``recognition.losses.<loss>``
merged, with ``seed = trial`` (the same seed for every source, so sources are compared on paired seeds). Each
trial also pretrains anew with ``seed = trial`` (``recognition-pretrain@<source>``), so the spread over
trials includes the pretraining's and no source rests on one pretraining draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, deep_merge, section

__all__ = [
    "CHECKPOINT_ROOT",
    "DATA_DIR",
    "OUTPUT_ROOT",
    "REPORT_DIR",
    "RUNS_DIR",
    "check_source",
    "checkpoint_dir",
    "eval_dir",
    "loss_dir",
    "metrics_file",
    "open_training_set",
    "pretrain_dir",
    "pretrain_settings",
    "pretrained_backbone",
    "run_name",
    "run_sources",
    "stage_trials",
    "torch_threads",
    "train_dir",
    "train_settings",
    "trials",
]

OUTPUT_ROOT = Path("outputs/recognition")
DATA_DIR = OUTPUT_ROOT / "data"
REPORT_DIR = Path("outputs/recognition-report")
CHECKPOINT_ROOT = Path("outputs/checkpoints")


RUNS_DIR = OUTPUT_ROOT / "runs"


def run_name(source: str, loss: str, trial: int) -> str:
    """``<source>-<loss>-<trial>``: one trial's MLflow run (``recognition-train@<name>``, ``recognition-eval@<name>``)
    and checkpoint folder."""
    return f"{source}-{loss}-{int(trial)}"


def loss_dir(source: str, loss: str) -> Path:
    """``outputs/recognition/runs/<source>/<loss>``: every trial of one source and loss."""
    return RUNS_DIR / source / loss


def train_dir(source: str, loss: str, trial: int) -> Path:
    """``outputs/recognition/runs/<source>/<loss>/train/<trial>``: ``model/`` and ``train.json``."""
    return loss_dir(source, loss) / "train" / str(int(trial))


def eval_dir(source: str, loss: str, trial: int) -> Path:
    """``outputs/recognition/runs/<source>/<loss>/eval/<trial>``: ``metrics.json``, ``evaluation.json``,
    ``roc.json``."""
    return loss_dir(source, loss) / "eval" / str(int(trial))


def metrics_file(source: str, loss: str) -> Path:
    """``outputs/recognition/runs/<source>/<loss>/metrics.json``: ``{"trial-<k>": metrics}`` (DVC metrics)."""
    return loss_dir(source, loss) / "metrics.json"


def pretrain_dir(source: str, trial: int) -> Path:
    """``outputs/recognition/pretrain/<source>/<trial>``: trial ``k``'s pretraining (seed ``k``)."""
    return OUTPUT_ROOT / "pretrain" / source / str(int(trial))


def checkpoint_dir(name: str) -> Path:
    """``outputs/checkpoints/recognition-<name>``: resumable checkpoints, outside the DVC outputs."""
    return CHECKPOINT_ROOT / f"recognition-{name}"


def trials(params: dict[str, Any]) -> list[int]:
    """``recognition.trials``: distinct ints >= 0; trial ``k`` trains with seed ``k``."""
    values = section(params, "recognition.trials")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in values)
        or len(set(values)) != len(values)
    ):
        raise ParamsError(
            f"recognition.trials must be a non-empty list of distinct ints >= 0, got {values!r}"
        )
    return values


def stage_trials(params: dict[str, Any], trial: int | None) -> list[int]:
    """The trials one stage runs: ``[trial]`` (checked against ``recognition.trials``) or, for None, all."""
    values = trials(params)
    if trial is None:
        return values
    if int(trial) not in values:
        raise ParamsError(f"trial {trial} is not one of recognition.trials {values}")
    return [int(trial)]


def pretrained_backbone(source: str, trial: int) -> Path | None:
    """The backbone folder ``recognition-pretrain@<source>`` wrote for ``trial``, or None for a source without
    one (``none``); an error naming the command when the trial's manifest is missing."""
    import json

    manifest = pretrain_dir(source, trial) / "manifest.json"
    if not manifest.is_file():
        raise ParamsError(
            f"{manifest} not found: run `fp recognition pretrain --source {source} --trial {trial}` first"
        )
    backbone = json.loads(manifest.read_text(encoding="utf-8")).get("backbone")
    return None if backbone is None else pretrain_dir(source, trial) / backbone


def check_source(params: dict[str, Any], source: str) -> None:
    """An error unless ``source`` is a key of ``recognition.pretrain.sources``."""
    known = section(params, "recognition.pretrain.sources")
    if source not in known:
        raise ParamsError(
            f"unknown pretraining source {source!r}; recognition.pretrain.sources: {list(known)}"
        )


def run_sources(params: dict[str, Any]) -> list[str]:
    """``recognition.pretrain.run``: distinct keys of ``recognition.pretrain.sources``, in order."""
    values = section(params, "recognition.pretrain.run")
    known = section(params, "recognition.pretrain.sources")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) for v in values)
        or len(set(values)) != len(values)
    ):
        raise ParamsError(
            f"recognition.pretrain.run must be a non-empty list of distinct names, got {values!r}"
        )
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ParamsError(
            f"recognition.pretrain.run names {unknown}, not in recognition.pretrain.sources {list(known)}"
        )
    return values


def train_settings(params: dict[str, Any], loss: str, trial: int) -> dict[str, Any]:
    """The settings of run ``<loss>-<trial>`` (module doc)."""
    losses = section(params, "recognition.losses")
    if loss not in losses:
        raise ParamsError(
            f"unknown recognition loss {loss!r}; recognition.losses defines: {', '.join(losses)}"
        )
    if trial not in trials(params):
        raise ParamsError(f"trial {trial} is not one of recognition.trials {trials(params)}")
    merged = deep_merge(section(params, "recognition.model"), section(params, "recognition.train"))
    merged = deep_merge(merged, losses[loss] or {})
    merged["seed"] = int(trial)
    return merged


def pretrain_settings(params: dict[str, Any], trial: int) -> dict[str, Any]:
    """Trial ``trial``'s pretraining settings: ``recognition.pretrain.train`` over model and train, seed = trial
    (each trial pretrains anew, so the trials' spread includes the pretraining's)."""
    if trial not in trials(params):
        raise ParamsError(f"trial {trial} is not one of recognition.trials {trials(params)}")
    merged = deep_merge(section(params, "recognition.model"), section(params, "recognition.train"))
    merged = deep_merge(merged, section(params, "recognition.pretrain.train") or {})
    merged["seed"] = int(trial)
    return merged


def open_training_set(path: Path) -> Any:
    """A ``.rec`` directory (``train.rec`` inside) as a ``RecordDataset``, any other folder as an
    ``ImageFolderDataset``."""
    from fp_recognition.data import ImageFolderDataset, RecordDataset

    path = Path(path)
    if (path / "train.rec").is_file():
        return RecordDataset(path)
    if not path.is_dir():
        raise ParamsError(f"training set {path} not found (an image folder or a directory with train.rec)")
    return ImageFolderDataset(path)


def torch_threads(params: dict[str, Any]) -> None:
    """Apply ``recognition.torch_threads`` if > 0, else ``runtime.torch_threads`` (0: torch's default).

    The toy networks run fastest on one thread when the CPU is shared (more threads wait on each other).
    """
    import torch

    threads = int(params.get("recognition", {}).get("torch_threads", 0) or 0)
    threads = threads or int(params.get("runtime", {}).get("torch_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
