"""The ``fp`` command line. Its subcommands are what the dvc.yaml stages call.

Heavy libraries are imported inside the commands so that ``fp --help`` answers at once.

Errors the user fixes (bad params, missing or broken data, missing weights; see :mod:`fp_pipeline.errors`)
end every command with one line ``fp: error: <message>`` on stderr and exit status 2; ``fp --debug ...`` or
``FP_DEBUG=1`` shows their traceback instead. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from fp_pipeline.config import DEFAULT_PARAMS_PATH
from fp_pipeline.errors import debug_requested, is_user_error, one_line
from fp_pipeline.stages.controlnet import controlnet_app
from fp_pipeline.stages.fairhuman import fairhuman_app
from fp_pipeline.stages.gan import gan_app
from fp_pipeline.stages.qdgs_shapes import qdgs_app
from fp_pipeline.stages.recognition import recognition_app

__all__ = ["USER_ERROR_EXIT_CODE", "app", "main", "report_user_error"]

#: exit status of a command stopped by a user error (click's own usage errors use 2 as well)
USER_ERROR_EXIT_CODE = 2
_DEBUG_KEY = "fp.debug"


def report_user_error(error: BaseException) -> None:
    """Print ``fp: error: <message>`` (one line) on stderr."""
    typer.echo(f"fp: error: {one_line(error)}", err=True)


class _FpGroup(TyperGroup):
    """The root command group: a user error from any subcommand is printed as one line, exit status 2."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:  # typer's own exit and usage exceptions are not user errors: re-raised
            if not is_user_error(error) or ctx.meta.get(_DEBUG_KEY) or debug_requested():
                raise
            report_user_error(error)
            raise typer.Exit(USER_ERROR_EXIT_CODE) from error


app = typer.Typer(
    name="fp",
    cls=_FpGroup,
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
app.add_typer(recognition_app, name="recognition")
app.add_typer(qdgs_app, name="qdgs")
app.add_typer(gan_app, name="gan")
app.add_typer(controlnet_app, name="controlnet")
app.add_typer(fairhuman_app, name="fairhuman")

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
VariantArgument = Annotated[str, typer.Option("--variant", help="Variant name: a key of parsing.variants.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Training seed: one of parsing.seeds.")]


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the full traceback of data and config errors (also: FP_DEBUG=1)."),
    ] = False,
) -> None:
    """fp: fair and robust face parsing, and the generators and recognisers built on it."""
    ctx.meta[_DEBUG_KEY] = debug


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
    workers: Annotated[int, typer.Option(help="Processes decoding in parallel (0: this one).")] = 0,
    progress: ProgressOption = True,
) -> None:
    """Decode every image and part mask of every split, as training reads them; list every problem found."""
    from fp_pipeline.stages.data import check_stage

    check_stage(params_path=params, root=root, num_workers=workers, progress=progress)


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
