"""Face-recognition stages (QDGS's recogniser experiments) and their ``fp recognition`` commands.

* ``recognition-data``: render the synthetic training and test sets (``recognition.synth``);
* ``recognition-pretrain@<source>-<trial>``: train on a source set P (``recognition.pretrain.sources``) with
  seed = trial or, for ``none``, write a manifest saying there is no pretraining;
* ``recognition-train@<source>-<loss>-<trial>``: train on ``recognition.data.train`` with the loss,
  seed = trial, starting from the backbone of ``recognition-pretrain@<source>-<trial>`` (``none``: a fresh backbone;
  the head is always fresh); the matrix is ``recognition.pretrain.run`` x losses x trials;
* ``recognition-eval@<source>-<loss>-<trial>``: ``.bin`` accuracies, RFW per group and fairness, ROC data;
* ``recognition-report``: Tables 2-4 in QDGS's layout (mean ± s.e. over trials), the pretraining verdicts
  (QD vs rand and vs none on the dark group and the disparate impact), figures.

Every stage is one MLflow run (``stage_run``). Paths: :mod:`fp_pipeline.stages.recognition_common`.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH, ParamsError, load_params, section
from fp_pipeline.stages.recognition_common import (
    DATA_DIR,
    REPORT_DIR,
    RUNS_DIR,
    checkpoint_dir,
    open_training_set,
    pretrain_dir,
    pretrain_settings,
    run_dir,
    run_name,
    run_sources,
    torch_threads,
    train_settings,
    trials,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["data_stage", "eval_stage", "pretrain_stage", "recognition_app", "report_stage", "train_stage"]

NO_PRETRAINING = "none"


def data_stage(*, params_path: Path, out_dir: Path | None = None, progress: bool = True) -> Path:
    """Render the synthetic recognition sets into ``out_dir`` (default ``outputs/recognition/data``)."""
    from fp_pipeline.synth.recognition import RecognitionSynthConfig, render_recognition_sets

    params = load_params(params_path)
    config = RecognitionSynthConfig.from_dict(section(params, "recognition.synth"))
    out = out_dir or DATA_DIR
    with stage_run("recognition-data", params={"recognition.synth": config.to_dict()}) as run:
        manifest = render_recognition_sets(config, out, progress=progress)
        counts = manifest["counts"]
        run(
            {
                "images": float(manifest["images_rendered"]),
                "identities": float(manifest["identities"]),
                **{f"train_identities/{g}": float(n) for g, n in counts["train"]["identities"].items()},
            },
            0,
        )
        run.log_artifact(out / "manifest.json")
    typer.echo(f"recognition-data: {manifest['images_rendered']} images in {out}")
    return out


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    from fp_core.atomic import write_json

    write_json(path, data)


def pretrain_stage(*, params_path: Path, source: str, trial: int, progress: bool = True) -> Path:
    """Pretrain trial ``trial`` (seed = trial) on ``source`` (``recognition.pretrain.sources``), or record that
    ``none`` has no backbone; returns ``outputs/recognition/pretrain/<source>/<trial>``."""
    from fp_recognition.train import RecognitionTrainConfig, train_recognizer

    params = load_params(params_path)
    torch_threads(params)
    sources = section(params, "recognition.pretrain.sources")
    if source not in sources:
        raise ParamsError(
            f"unknown pretraining source {source!r}; recognition.pretrain.sources: {list(sources)}"
        )
    config = RecognitionTrainConfig.from_dict(pretrain_settings(params, trial))
    out = pretrain_dir(source, trial)
    path = sources[source]
    name = f"recognition-pretrain@{source}-{int(trial)}"
    if source == NO_PRETRAINING or path is None:
        with stage_run(name, params={"source": source, "path": None, "trial": trial}):
            out.mkdir(parents=True, exist_ok=True)
            _write_manifest(out / "manifest.json", {"source": source, "path": None, "backbone": None})
        typer.echo(f"{name}: no pretraining")
        return out
    if not Path(path).exists():
        raise ParamsError(
            f"pretraining set {path} of source {source!r} not found: run `dvc repro qdgs-faces-export@{source}` "
            f"for the QDGS sets, or point recognition.pretrain.sources.{source} at an image folder or .rec directory"
        )
    dataset = open_training_set(Path(path))
    checkpoints = checkpoint_dir(f"pretrain-{source}-{int(trial)}")
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
        _write_manifest(
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


def _pretrained_backbone(source: str, trial: int) -> Path | None:
    """The backbone directory ``recognition-pretrain@<source>-<trial>`` wrote, or None for a source without one."""
    import json

    manifest = pretrain_dir(source, trial) / "manifest.json"
    if not manifest.is_file():
        raise ParamsError(
            f"{manifest} not found: run `fp recognition pretrain --source {source} --trial {trial}` first"
        )
    backbone = json.loads(manifest.read_text(encoding="utf-8")).get("backbone")
    return None if backbone is None else pretrain_dir(source, trial) / backbone


def _check_source(params: dict[str, Any], source: str) -> None:
    known = section(params, "recognition.pretrain.sources")
    if source not in known:
        raise ParamsError(
            f"unknown pretraining source {source!r}; recognition.pretrain.sources: {list(known)}"
        )


def train_stage(
    *, params_path: Path, source: str = NO_PRETRAINING, loss: str, trial: int, progress: bool = True
) -> Path:
    """Train run ``<source>-<loss>-<trial>`` from the source's pretrained backbone (``none``: a fresh one)
    on ``recognition.data.train``; returns the model directory (``runs/<source>/<loss>-<trial>/model``)."""
    from fp_recognition.train import RecognitionTrainConfig, train_recognizer

    params = load_params(params_path)
    torch_threads(params)
    _check_source(params, source)
    config = RecognitionTrainConfig.from_dict(train_settings(params, loss, trial))
    init = _pretrained_backbone(source, trial)
    dataset = open_training_set(Path(section(params, "recognition.data.train")))
    model_dir = run_dir(source, loss, trial) / "model"
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
            config, dataset, model_dir, checkpoint_dir=checkpoints, log=run, progress=progress,
            init_backbone=init, tracking_id=run.run_id,
        )  # fmt: skip
        _write_manifest(
            model_dir.parent / "train.json",
            {
                "source": source,
                "loss": loss,
                "trial": trial,
                "pretrain": source,
                "init_backbone": None if init is None else str(init),
                "training_set": str(section(params, "recognition.data.train")),
                "identities": result.num_classes,
            },
        )
        run.log_reference("backbone", model_dir / "backbone.safetensors")
        if result.resumed_from_epoch is not None:
            run.set_tags({"fp.resumed_from_epoch": result.resumed_from_epoch})
    shutil.rmtree(checkpoints, ignore_errors=True)
    typer.echo(f"{name}: model in {model_dir}")
    return model_dir


def eval_stage(
    *, params_path: Path, source: str = NO_PRETRAINING, loss: str, trial: int, progress: bool = True
) -> Path:
    """Evaluate run ``<source>-<loss>-<trial>`` on the ``.bin`` sets and RFW; returns ``eval/metrics.json``."""
    import json

    from fp_pipeline.stages.recognition_eval import evaluate_recogniser
    from fp_recognition.data import load_bins, load_rfw
    from fp_recognition.train import load_backbone

    params = load_params(params_path)
    torch_threads(params)
    _check_source(params, source)
    data = section(params, "recognition.data")
    settings = section(params, "recognition.eval")
    model_dir = run_dir(source, loss, trial) / "model"
    if not (model_dir.parent / "train.json").is_file():
        raise ParamsError(
            f"{model_dir.parent / 'train.json'} not found: run "
            f"`fp recognition train --source {source} --loss {loss} --trial {trial}` first"
        )
    model = load_backbone(model_dir)
    bins = load_bins(Path(data["bins"]), data["bin_sets"])
    rfw = load_rfw(Path(data["rfw"]), tuple(data["rfw_groups"]))
    train_info = json.loads((model_dir.parent / "train.json").read_text(encoding="utf-8"))
    out = model_dir.parent / "eval"
    name = f"recognition-eval@{run_name(source, loss, trial)}"
    with stage_run(
        name,
        params={"source": source, "loss": loss, "trial": trial, "data": data, "eval": settings},
        tags={"fp.loss": loss, "fp.trial": trial, "fp.pretrain": source},
    ) as run:
        metrics, evaluation, roc = evaluate_recogniser(
            model,
            bins,
            rfw,
            image_size=int(model.input_size),
            batch_size=int(settings["batch_size"]),
            flip=bool(settings["flip"]),
            far=float(settings["far"]),
        )
        run(metrics, 0)
        _write_manifest(out / "evaluation.json", {**train_info, **evaluation})
        _write_manifest(out / "roc.json", roc)
        _write_manifest(out / "metrics.json", metrics)
        run.log_artifact(out / "metrics.json")
    typer.echo(
        f"{name}: .bin mean {metrics.get('bins/mean', math.nan):.4f}, RFW {metrics.get('rfw/mean', math.nan):.4f}"
    )
    return out / "metrics.json"


def _pretraining_sizes(sources: list[str], trial: int) -> str:
    """``"; sets: rand 28 identities / 252 images, ..."`` from the pretraining manifests of ``trial`` (sources
    without a set or a manifest are left out)."""
    import json

    sizes = []
    for source in sources:
        manifest = pretrain_dir(source, trial) / "manifest.json"
        info = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        if info.get("backbone") is not None:
            sizes.append(
                f"{source} {info.get('identities', '?')} identities / {info.get('images', '?')} images"
            )
    return f"; sets: {', '.join(sizes)}" if sizes else ""


def _report_context(params: dict[str, Any], sources: list[str], losses: list[str]) -> dict[str, str]:
    data = section(params, "recognition.data")
    settings = train_settings(params, losses[0], trials(params)[0])
    pretrain = pretrain_settings(params, trials(params)[0])
    paths = section(params, "recognition.pretrain.sources")
    return {
        "training set": str(data["train"]),
        "backbone": f"{settings['backbone']} (width {settings.get('width', 64)}), input {settings['input_size']}, "
        f"embedding {settings['embedding_size']}, {settings['epochs']} epochs",
        "trials": f"{len(trials(params))} per source and loss (seeds {trials(params)}, the same for every source; "
        "each trial pretrains anew with its seed, so the s.e. includes the pretraining's spread)",
        "pretraining": ", ".join(f"{s} ({paths[s] or 'fresh backbone'})" for s in sources)
        + f"; pretraining recipe: {pretrain['loss']}, {pretrain['epochs']} epochs"
        + _pretraining_sizes(sources, trials(params)[0]),
        ".bin sets": ", ".join(data["bin_sets"]),
        "RFW groups": ", ".join(data["rfw_groups"]),
    }


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Tables 2-4 over every source, loss and trial, the pretraining verdicts and figures into
    ``outputs/recognition-report``."""
    from fp_core.atomic import write_json, write_text
    from fp_pipeline.stages.recognition_plots import plot_group_accuracy, plot_roc
    from fp_pipeline.stages.recognition_report import read_runs, report_markdown, row_label

    params = load_params(params_path)
    data = section(params, "recognition.data")
    report = section(params, "recognition.report")
    losses = list(section(params, "recognition.losses"))
    sources = run_sources(params)
    matrix = [(s, loss, t) for s in sources for loss in losses for t in trials(params)]
    runs, curves = read_runs(RUNS_DIR, matrix)
    compare = tuple(report["compare"])
    markdown, summary = report_markdown(
        runs,
        bin_sets=data["bin_sets"],
        groups=data["rfw_groups"],
        compare=(compare[0], compare[1]),
        context=_report_context(params, sources, losses),
    )
    rows = {row_label(s, loss): runs[s][loss] for s in runs for loss in runs[s]}
    with stage_run(
        "recognition-report",
        params={"report": report, "sources": sources, "losses": losses, "trials": trials(params)},
    ) as run:
        write_text(REPORT_DIR / "report.md", markdown + "\n")
        write_json(REPORT_DIR / "summary.json", summary)
        save_figure(
            plot_group_accuracy(rows, data["rfw_groups"]), REPORT_DIR / "figures" / "group_accuracy.png", run
        )
        save_figure(plot_roc(curves), REPORT_DIR / "figures" / "roc.png", run)
        run.log_artifact(REPORT_DIR / "report.md")
        for row, finding in summary["findings"].items():
            key = re.sub(r"[^0-9A-Za-z_\-. /]", "_", row)
            run.set_tags({f"finding.{key}": f"{finding['chance']}; {finding['group_gap_verdict']}"[:5000]})
        for i, verdict in enumerate(summary["pretraining_verdicts"]):
            run.set_tags({f"verdict.{i:02d}": verdict["text"][:5000]})
    typer.echo(f"recognition-report: {REPORT_DIR / 'report.md'}")
    return REPORT_DIR / "report.md"


# -- the `fp recognition` commands (registered in cli.py as `app.add_typer(recognition_app, name="recognition")`)

recognition_app = typer.Typer(
    help="Face recognition (QDGS): synthetic sets, pretraining, ArcFace/AdaFace training, evaluation, report.",
    no_args_is_help=True,
)
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
LossOption = Annotated[str, typer.Option("--loss", help="A key of recognition.losses (arcface, adaface).")]
TrialOption = Annotated[int, typer.Option("--trial", help="One of recognition.trials (also the seed).")]
SourceOption = Annotated[
    str,
    typer.Option(
        "--source", help="Pretraining source: one of recognition.pretrain.sources (none, rand, qd)."
    ),
]


@recognition_app.command("data")
def recognition_data(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Render the synthetic training set (folder + .rec), RFW-like and .bin test sets (recognition.synth)."""
    from fp_pipeline.stages.recognition import data_stage

    data_stage(params_path=params, progress=progress)


@recognition_app.command("pretrain")
def recognition_pretrain(
    source: SourceOption = NO_PRETRAINING,
    trial: TrialOption = 0,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Pretrain a backbone on a source set, seed = trial (`none`: record that there is no pretraining)."""
    from fp_pipeline.stages.recognition import pretrain_stage

    pretrain_stage(params_path=params, source=source, trial=trial, progress=progress)


@recognition_app.command("train")
def recognition_train(
    source: SourceOption = NO_PRETRAINING,
    loss: LossOption = "arcface",
    trial: TrialOption = 0,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Train one recogniser from a source's backbone (resumes from its last checkpoint when one exists)."""
    from fp_pipeline.stages.recognition import train_stage

    train_stage(params_path=params, source=source, loss=loss, trial=trial, progress=progress)


@recognition_app.command("eval")
def recognition_eval(
    source: SourceOption = NO_PRETRAINING,
    loss: LossOption = "arcface",
    trial: TrialOption = 0,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Evaluate one recogniser: .bin accuracies, RFW per group, disparate impact, ROC."""
    from fp_pipeline.stages.recognition import eval_stage

    eval_stage(params_path=params, source=source, loss=loss, trial=trial, progress=progress)


@recognition_app.command("report")
def recognition_report(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Tables 2-4 (mean ± s.e. over trials), verdicts and figures."""
    from fp_pipeline.stages.recognition import report_stage

    report_stage(params_path=params, progress=progress)
