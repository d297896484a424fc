"""The ``fp fairhuman`` commands (issue 16): data | base | train | eval | report, one DVC stage each.

Stages: :mod:`.fairhuman_data`, :mod:`.fairhuman_base`, :mod:`.fairhuman_train`, :mod:`.fairhuman_eval`
(metrics in :mod:`.fairhuman_scores`), the report in :mod:`.fairhuman_report`; paths and settings in
:mod:`.fairhuman_common`; docs/fairhuman.md, "Pipeline stages".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH

__all__ = ["fairhuman_app"]

fairhuman_app = typer.Typer(
    help="FairHuman: human scenes, the small base, LoRA / ControlNet fine-tunes per weighting, eval, report.",
    no_args_is_help=True,
)
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
VariantOption = Annotated[str, typer.Option("--variant", help="A key of fairhuman.variants, e.g. lora-mpd.")]
SeedOption = Annotated[
    int | None, typer.Option("--seed", help="One training seed of fairhuman.seeds (default: every seed).")
]


@fairhuman_app.command("data")
def fairhuman_data(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Render the train and test human scenes (fairhuman.data) and a contact sheet."""
    from fp_pipeline.stages.fairhuman_data import data_stage

    data_stage(params_path=params, progress=progress)


@fairhuman_app.command("base")
def fairhuman_base(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Train the small base and the scene CLIP (default only), then evaluate the base alone."""
    from fp_pipeline.stages.fairhuman_base import base_stage

    base_stage(params_path=params, progress=progress)


@fairhuman_app.command("train")
def fairhuman_train(
    variant: VariantOption = "lora-mpd",
    seed: SeedOption = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Fine-tune the variant (LoRA or ControlNet, its weighting) on the train scenes per seed; resumes."""
    from fp_pipeline.stages.fairhuman_train import train_stage

    train_stage(params_path=params, variant=variant, seed=seed, progress=progress)


@fairhuman_app.command("eval")
def fairhuman_eval(
    variant: VariantOption = "lora-mpd",
    seed: SeedOption = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """CLIP score, regional FDs, speed and size of the variant's module on the test prompts, per seed."""
    from fp_pipeline.stages.fairhuman_eval import eval_stage

    eval_stage(params_path=params, variant=variant, seed=seed, progress=progress)


@fairhuman_app.command("report")
def fairhuman_report(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """The FairHuman tables and figures over every run (fairhuman_report)."""
    from fp_pipeline.stages.fairhuman_report import report_stage

    report_stage(params_path=params, progress=progress)
