"""The ``fp recognition`` commands: face-recognition stages (QDGS's recogniser experiments).

* ``recognition-data``: render the synthetic training and test sets (:mod:`.recognition_data`);
* ``recognition-pretrain@<source>``: pretrain on a source set P (``recognition.pretrain.sources``) once per
  trial, seed = trial, or record that ``none`` has no backbone (:mod:`.recognition_pretrain`);
* ``recognition-train@<source>-<loss>``: train on ``recognition.data.train`` with the loss, one recogniser per
  trial (seed = trial) from that trial's pretrained backbone (:mod:`.recognition_train`);
* ``recognition-eval@<source>-<loss>``: ``.bin`` accuracies, RFW per group and fairness, ROC data per trial
  (:mod:`.recognition_eval`);
* ``recognition-report``: Tables 2-4 in QDGS's layout, the pretraining verdicts, figures
  (:mod:`.recognition_report_stage`).

The pretraining, training and evaluation stages run every trial of ``recognition.trials`` in one process
(``--trial`` picks one); each trial is its own MLflow run. Paths: :mod:`fp_pipeline.stages.recognition_common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH

__all__ = ["recognition_app"]

# registered in cli.py as `app.add_typer(recognition_app, name="recognition")`
recognition_app = typer.Typer(
    help="Face recognition (QDGS): synthetic sets, pretraining, ArcFace/AdaFace training, evaluation, report.",
    no_args_is_help=True,
)
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
LossOption = Annotated[str, typer.Option("--loss", help="A key of recognition.losses (arcface, adaface).")]
TrialOption = Annotated[
    int | None,
    typer.Option("--trial", help="One of recognition.trials (also the seed); default: every trial."),
]
SourceOption = Annotated[
    str,
    typer.Option(
        "--source", help="Pretraining source: one of recognition.pretrain.sources (none, rand, qd)."
    ),
]


@recognition_app.command("data")
def recognition_data(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Render the synthetic training set (folder + .rec), RFW-like and .bin test sets (recognition.synth)."""
    from fp_pipeline.stages.recognition_data import data_stage

    data_stage(params_path=params, progress=progress)


@recognition_app.command("pretrain")
def recognition_pretrain(
    source: SourceOption = "none",
    trial: TrialOption = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Pretrain a backbone on a source set per trial, seed = trial (`none`: record that there is none)."""
    from fp_pipeline.stages.recognition_pretrain import pretrain_stage

    pretrain_stage(params_path=params, source=source, trial=trial, progress=progress)


@recognition_app.command("train")
def recognition_train(
    source: SourceOption = "none",
    loss: LossOption = "arcface",
    trial: TrialOption = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Train a recogniser per trial from the source's backbone (each resumes from its last checkpoint)."""
    from fp_pipeline.stages.recognition_train import train_stage

    train_stage(params_path=params, source=source, loss=loss, trial=trial, progress=progress)


@recognition_app.command("eval")
def recognition_eval(
    source: SourceOption = "none",
    loss: LossOption = "arcface",
    trial: TrialOption = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Evaluate the recognisers of every trial: .bin accuracies, RFW per group, disparate impact, ROC."""
    from fp_pipeline.stages.recognition_eval import eval_stage

    eval_stage(params_path=params, source=source, loss=loss, trial=trial, progress=progress)


@recognition_app.command("report")
def recognition_report(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Tables 2-4 (mean ± s.e. over trials), verdicts and figures."""
    from fp_pipeline.stages.recognition_report_stage import report_stage

    report_stage(params_path=params, progress=progress)
