"""Face-parsing stages (arXiv 2502.04391): train, evaluate, export, report one variant at a time.

Each variant is a key of ``parsing.variants`` in params.yaml, merged over ``parsing.train``. Outputs live under
``outputs/parsing/<variant>/``: ``model/`` (weights and config), ``eval/`` (metrics and plots), ``export/``.
Checkpoints go to ``outputs/checkpoints/parsing-<variant>/``, outside the DVC outputs, so a killed stage resumes;
they are removed once training ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.atomic import write_json_atomic
from fp_pipeline.config import ParamsError, deep_merge, load_params, section
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["eval_stage", "train_config", "train_stage", "variant_dir"]

OUTPUT_ROOT = Path("outputs/parsing")
CHECKPOINT_ROOT = Path("outputs/checkpoints")


def variant_dir(variant: str) -> Path:
    """``outputs/parsing/<variant>``."""
    return OUTPUT_ROOT / variant


def train_config(params: dict[str, Any], variant: str) -> dict[str, Any]:
    """The training settings of one variant: ``parsing.train`` and ``parsing.model`` under ``parsing.variants.<v>``."""
    variants = section(params, "parsing.variants")
    if variant not in variants:
        raise ParamsError(f"unknown parsing variant {variant!r}; params.yaml defines: {', '.join(variants)}")
    base = deep_merge(section(params, "parsing.train"), section(params, "parsing.model"))
    return deep_merge(base, variants[variant] or {})


def _dataset(params: dict[str, Any], split: str, **kwargs: Any) -> Any:
    from fp_parsing.data import CelebAMaskHQ

    return CelebAMaskHQ(
        Path(section(params, "data.root")),
        split=split,
        image_size=section(params, "data.image_size"),
        label_order=section(params, "data.label_order"),
        **kwargs,
    )


def train_stage(
    *, params_path: Path, variant: str, out_dir: Path | None = None, progress: bool = True
) -> Path:
    """Train one variant; returns the model directory."""
    from fp_parsing.plots import plot_schedules
    from fp_parsing.schedules import build_schedule, schedule_table
    from fp_parsing.train import TrainConfig, train_parser

    params = load_params(params_path)
    settings = train_config(params, variant)
    config = TrainConfig.from_dict(settings)
    model_dir = out_dir or variant_dir(variant) / "model"
    checkpoint_dir = CHECKPOINT_ROOT / f"parsing-{variant}"
    train_set = _dataset(params, "train", hflip=bool(section(params, "data.hflip")))
    run_params = {"data": section(params, "data"), "variant": variant, "train": settings}
    with stage_run(f"parsing-train@{variant}", params=run_params, tags={"fp.variant": variant}) as run:
        train_parser(config, train_set, model_dir, checkpoint_dir=checkpoint_dir, log=run, progress=progress)
        table = schedule_table(build_schedule(config.schedule, config.epochs), config.epochs)
        figure = plot_schedules({variant: table})
        save_figure(figure, model_dir / "schedule.png", run)
        run.log_reference("model", model_dir / "model.safetensors")
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    typer.echo(f"parsing-train@{variant}: model in {model_dir}")
    return model_dir


def eval_stage(*, params_path: Path, variant: str, progress: bool = True) -> dict[str, float]:
    """Evaluate one trained variant on the test split; writes ``eval/metrics.json`` and the figures."""
    from fp_parsing.evaluate import evaluate_parser
    from fp_parsing.plots import plot_robustness_curves
    from fp_parsing.train import load_parser

    params = load_params(params_path)
    settings = section(params, "parsing.eval")
    out = variant_dir(variant) / "eval"
    model = load_parser(variant_dir(variant) / "model")
    test_set = _dataset(params, "test")
    with stage_run(f"parsing-eval@{variant}", params={"eval": settings}, tags={"fp.variant": variant}) as run:
        evaluation = evaluate_parser(model, test_set, progress=progress, **settings)
        metrics = evaluation.to_metrics()
        run(metrics, step=0)
        evaluation.to_json(out / "evaluation.json")
        write_json_atomic(out / "metrics.json", metrics)
        save_figure(
            plot_robustness_curves({variant: evaluation.robustness_curves}), out / "robustness.png", run
        )
        run.log_artifact(out / "metrics.json")
    typer.echo(f"parsing-eval@{variant}: mIoU {metrics['miou']:.4f}")
    return metrics
