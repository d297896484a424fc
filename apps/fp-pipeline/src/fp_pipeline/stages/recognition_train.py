"""``recognition-train@<source>-<loss>``: train recognisers on ``recognition.data.train``, one per trial.

One stage per source and loss runs every trial of ``recognition.trials`` in one process (``--trial`` picks
one), each trial its own MLflow run ``recognition-train@<source>-<loss>-<trial>`` with seed = trial. Trial
``k`` starts from the backbone ``recognition-pretrain@<source>`` wrote for trial ``k`` (``none``: a fresh
backbone; the head is always fresh for the training set's identities), resuming from its checkpoints.
Writes ``outputs/recognition/runs/<source>/<loss>/train/<trial>/``: ``model/`` and ``train.json``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.recognition_common import (
    check_source,
    checkpoint_dir,
    open_training_set,
    pretrained_backbone,
    run_name,
    stage_trials,
    torch_threads,
    train_dir,
    train_settings,
)
from fp_pipeline.tracking import stage_run

__all__ = ["train_stage"]


def train_stage(
    *, params_path: Path, source: str, loss: str, trial: int | None = None, progress: bool = True
) -> list[Path]:
    """Train ``<source>-<loss>`` for ``trial`` (None: every trial); returns each trial's model folder
    (``runs/<source>/<loss>/train/<trial>/model``)."""
    params = load_params(params_path)
    torch_threads(params)
    check_source(params, source)
    selected = stage_trials(params, trial)
    train_settings(params, loss, selected[0])  # an unknown loss fails before anything is read
    inits = {t: pretrained_backbone(source, t) for t in selected}  # every trial's pretraining is there
    training_set = Path(section(params, "recognition.data.train"))
    dataset = open_training_set(training_set)
    return [
        _train_trial(params, source, loss, t, inits[t], dataset, training_set, progress) for t in selected
    ]


def _train_trial(
    params: dict[str, Any],
    source: str,
    loss: str,
    trial: int,
    init: Path | None,
    dataset: Any,
    training_set: Path,
    progress: bool,
) -> Path:
    from fp_core.atomic import write_json
    from fp_recognition.train import RecognitionTrainConfig, train_recognizer

    config = RecognitionTrainConfig.from_dict(train_settings(params, loss, trial))
    out = train_dir(source, loss, trial)
    key = run_name(source, loss, trial)
    checkpoints = checkpoint_dir(key)
    name = f"recognition-train@{key}"
    run_params = {
        "source": source,
        "loss": loss,
        "trial": trial,
        "pretrain": source,
        "train": config.to_dict(),
    }
    tags = {"fp.loss": loss, "fp.trial": trial, "fp.pretrain": source}
    with stage_run(name, params=run_params, tags=tags) as run:
        result = train_recognizer(
            config, dataset, out / "model", checkpoint_dir=checkpoints, log=run, progress=progress,
            init_backbone=init, tracking_id=run.run_id,
        )  # fmt: skip
        write_json(
            out / "train.json",
            {
                "source": source,
                "loss": loss,
                "trial": trial,
                "pretrain": source,
                "init_backbone": None if init is None else str(init),
                "training_set": str(training_set),
                "identities": result.num_classes,
            },
        )
        run.log_reference("backbone", out / "model" / "backbone.safetensors")
        if result.resumed_from_epoch is not None:
            run.set_tags({"fp.resumed_from_epoch": result.resumed_from_epoch})
    shutil.rmtree(checkpoints, ignore_errors=True)
    typer.echo(f"{name}: model in {out / 'model'}")
    return out / "model"
