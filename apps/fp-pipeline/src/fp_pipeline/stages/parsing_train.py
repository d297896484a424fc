"""Training stage of face parsing (arXiv 2502.04391): one variant with one seed per call."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.parsing_common import checkpoint_dir, dataset, run_dir, torch_threads, train_config
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["train_stage"]


def train_stage(
    *, params_path: Path, variant: str, seed: int, out_dir: Path | None = None, progress: bool = True
) -> Path:
    """Train one variant with one seed (resuming from its last checkpoint); returns the model directory."""
    from fp_core.atomic import write_text
    from fp_core.training import stored_tracking_id
    from fp_parsing.groups import groupings_for
    from fp_parsing.plots import plot_schedules
    from fp_parsing.schedules import schedule_csv
    from fp_parsing.train import TrainConfig, train_parser

    params = load_params(params_path)
    torch_threads(params)
    settings = train_config(params, variant, seed)
    config = TrainConfig.from_dict(settings)
    model_dir = out_dir or run_dir(variant, seed) / "model"
    train_dir = model_dir.parent / "train"
    checkpoints = checkpoint_dir(variant, seed)
    train_set = dataset(params, "train", hflip=bool(section(params, "data.hflip")), seed=config.seed)
    groupings = groupings_for(train_set, config.fairness.attributes, skin_tone=config.fairness.skin_tone)
    run_params = {
        "data": section(params, "data"),
        "variant": variant,
        "train": config.to_dict(),
        "groupings": groupings.describe(),  # what the fairness loss actually used
    }
    with stage_run(
        f"parsing-train@{variant}-{seed}",
        params=run_params,
        variant=variant,
        seed=seed,
        dataset=Path(section(params, "data.root")),
        run_id=stored_tracking_id(checkpoints),  # a resumed training continues its MLflow run
    ) as run:
        result = train_parser(
            config,
            train_set,
            model_dir,
            checkpoint_dir=checkpoints,
            log=run,
            progress=progress,
            tracking_id=run.run_id,
            groupings=groupings,
        )
        table = result.weights_table
        write_text(train_dir / "schedule.csv", schedule_csv(table))
        save_figure(plot_schedules({variant: table}), train_dir / "schedule.png", run)
        run.log_reference("model", model_dir / "model.safetensors")
        if result.resumed_from_epoch is not None:
            run.set_tags({"fp.resumed_from_epoch": result.resumed_from_epoch})
    shutil.rmtree(checkpoints, ignore_errors=True)
    typer.echo(f"parsing-train@{variant}-{seed}: model in {model_dir}")
    return model_dir
