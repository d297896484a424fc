"""``recognition-pretrain@<source>``: pretrain a backbone on a source set P, once per trial (seed = trial).

One stage per source runs every trial of ``recognition.trials`` in one process (``--trial`` picks one), each
trial its own MLflow run ``recognition-pretrain@<source>-<trial>``, trained with ``recognition.pretrain.train``
over ``recognition.model`` and ``recognition.train``. The source ``none`` writes manifests saying there is no
pretraining (training then starts from a fresh backbone). Writes ``outputs/recognition/pretrain/<source>/<trial>/``:
``manifest.json`` (source, path, seed, identities, images, backbone folder) and ``model/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.recognition_common import (
    check_source,
    checkpoint_dir,
    open_training_set,
    pretrain_dir,
    pretrain_settings,
    stage_trials,
    torch_threads,
)
from fp_pipeline.tracking import stage_run

__all__ = ["NO_PRETRAINING", "pretrain_stage"]

NO_PRETRAINING = "none"


def pretrain_stage(
    *, params_path: Path, source: str, trial: int | None = None, progress: bool = True
) -> list[Path]:
    """Pretrain ``source`` for ``trial`` (None: every trial of ``recognition.trials``), each resuming from its
    checkpoints; returns ``outputs/recognition/pretrain/<source>/<trial>`` per trial."""
    params = load_params(params_path)
    torch_threads(params)
    check_source(params, source)
    selected = stage_trials(params, trial)
    path = section(params, "recognition.pretrain.sources")[source]
    if source == NO_PRETRAINING or path is None:
        return [_no_pretraining(source, t) for t in selected]
    if not Path(path).exists():
        raise ParamsError(
            f"pretraining set {path} of source {source!r} not found: run `dvc repro qdgs-faces-export@{source}` "
            f"for the QDGS sets, or point recognition.pretrain.sources.{source} at an image folder or .rec directory"
        )
    dataset = open_training_set(Path(path))
    return [_pretrain_trial(params, source, Path(path), dataset, t, progress) for t in selected]


def _no_pretraining(source: str, trial: int) -> Path:
    from fp_core.atomic import write_json

    out = pretrain_dir(source, trial)
    name = f"recognition-pretrain@{source}-{int(trial)}"
    with stage_run(name, params={"source": source, "path": None, "trial": trial}):
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "manifest.json", {"source": source, "path": None, "backbone": None})
    typer.echo(f"{name}: no pretraining")
    return out


def _pretrain_trial(
    params: dict[str, Any], source: str, path: Path, dataset: Any, trial: int, progress: bool
) -> Path:
    from fp_core.atomic import write_json
    from fp_recognition.train import RecognitionTrainConfig, train_recognizer

    config = RecognitionTrainConfig.from_dict(pretrain_settings(params, trial))
    out = pretrain_dir(source, trial)
    checkpoints = checkpoint_dir(f"pretrain-{source}-{int(trial)}")
    name = f"recognition-pretrain@{source}-{int(trial)}"
    with stage_run(
        name,
        params={"source": source, "path": str(path), "trial": trial, "train": config.to_dict()},
        tags={"fp.pretrain_source": source, "fp.trial": trial},
    ) as run:
        result = train_recognizer(
            config, dataset, out / "model", checkpoint_dir=checkpoints, log=run, progress=progress,
            tracking_id=run.run_id,
        )  # fmt: skip
        run.log_reference("backbone", out / "model" / "backbone.safetensors")
        write_json(
            out / "manifest.json",
            {
                "source": source,
                "path": str(path),
                "trial": trial,
                "seed": config.seed,
                "backbone": "model",
                "identities": result.num_classes,
                "images": len(dataset),
            },
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
    typer.echo(f"{name}: backbone in {out / 'model'}")
    return out
