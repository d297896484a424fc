"""The ``fp`` command line. Its subcommands are what the dvc.yaml stages call.

Heavy libraries are imported inside the commands so that ``fp --help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH

__all__ = ["app", "main"]

app = typer.Typer(
    name="fp",
    help="fp: fair and robust face parsing, and the generators and recognisers built on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Datasets: render the synthetic default, check a dataset directory.", no_args_is_help=True
)
parsing_app = typer.Typer(
    help="Face parsing (arXiv 2502.04391): train, evaluate, export and report the variants.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
app.add_typer(parsing_app, name="parsing")

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
VariantArgument = Annotated[str, typer.Option("--variant", help="Variant name: a key of parsing.variants.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Training seed: one of parsing.seeds.")]


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Directory to render into (replaced atomically).")] = Path(
        "outputs/synth"
    ),
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Render the synthetic face dataset (CelebAMask-HQ layout) from the `synth` section of params.yaml."""
    from fp_pipeline.stages.data import synth_stage

    synth_stage(params_path=params, out_dir=out, progress=progress)


@data_app.command("check")
def data_check(
    root: Annotated[
        Path | None, typer.Option(help="Dataset directory; default: data.root in params.yaml.")
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Load every split of a CelebAMask-HQ-layout directory and print its size, or say what is wrong."""
    from fp_pipeline.stages.data import check_stage

    check_stage(params_path=params, root=root)


@parsing_app.command("train")
def parsing_train(
    variant: VariantArgument = "single",
    seed: SeedOption = 0,
    out: Annotated[
        Path | None, typer.Option(help="Output directory; default outputs/parsing/<variant>.")
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Train one parser variant (resumes from its last checkpoint when one exists)."""
    from fp_pipeline.stages.parsing_train import train_stage

    train_stage(params_path=params, variant=variant, seed=seed, out_dir=out, progress=progress)


@parsing_app.command("eval")
def parsing_eval(
    variant: VariantArgument = "single",
    seed: SeedOption = 0,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Evaluate a trained variant on the test split: mIoU, Dice, per-class IoU, fairness, robustness."""
    from fp_pipeline.stages.parsing import eval_stage

    eval_stage(params_path=params, variant=variant, seed=seed, progress=progress)


@parsing_app.command("export")
def parsing_export(
    variant: VariantArgument = "single",
    seed: SeedOption = 0,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Write predicted label maps (class-id PNGs, colourised PNGs, a CelebAMask-HQ-layout tree) for every split."""
    from fp_pipeline.stages.parsing import export_stage

    export_stage(params_path=params, variant=variant, seed=seed, progress=progress)


@parsing_app.command("report")
def parsing_report(
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Put every evaluated variant side by side (the paper's Tables I and III, Figs. 2-5) in a markdown report."""
    from fp_pipeline.stages.parsing import report_stage

    report_stage(params_path=params, progress=progress)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
