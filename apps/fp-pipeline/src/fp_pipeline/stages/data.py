"""Data stages: render the synthetic default, check a dataset directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.errors import FpError
from fp_pipeline.tracking import stage_run

if TYPE_CHECKING:
    from fp_parsing.data import DatasetReport

__all__ = ["DataCheckError", "check_stage", "synth_stage"]


class DataCheckError(FpError):
    """``fp data check`` found problems in the dataset (each is printed before this is raised)."""


def synth_stage(*, params_path: Path, out_dir: Path, progress: bool = True) -> dict:
    """Render the dataset described by ``synth`` in params.yaml into ``out_dir`` (replaced atomically)."""
    from fp_pipeline.synth import SynthConfig, render_dataset

    params = load_params(params_path)
    config = SynthConfig.from_dict(section(params, "synth", source=str(params_path)))
    with stage_run("synth", params={"synth": section(params, "synth")}) as run:
        start = time.perf_counter()
        manifest = render_dataset(config, out_dir, progress=progress)
        elapsed = time.perf_counter() - start
        counts = _numeric_leaves(manifest.get("counts", {}), prefix="count")
        run({**counts, "render_seconds": elapsed}, step=0)
        run.log_artifact(out_dir / "fp_synth_manifest.json")
    typer.echo(f"rendered {manifest['counts']['total']} images into {out_dir}")
    return manifest


def check_stage(
    *, params_path: Path, root: Path | None = None, num_workers: int = 0, progress: bool = True
) -> DatasetReport:
    """Decode every item of every split of a CelebAMask-HQ-layout directory, as training reads them.

    Prints the images per split and every problem found; raises :class:`DataCheckError` (one line, exit
    status 2 from ``fp``) when there is any.
    """
    from fp_parsing.data import check_dataset

    params = load_params(params_path)
    root = root or Path(section(params, "data.root", source=str(params_path)))
    report = check_dataset(
        root,
        image_size=section(params, "data.image_size", source=str(params_path)),
        label_order=section(params, "data.label_order", source=str(params_path)),
        splits=("train", "val", "test"),
        progress=progress,
        num_workers=num_workers,
    )
    typer.echo(f"{root}:")
    for line in report.lines():
        typer.echo(f"  {line}")
    if not report.ok:
        raise DataCheckError(f"{len(report.problems)} problem(s) in {root} (listed above)")
    return report


def _numeric_leaves(tree: object, prefix: str) -> dict[str, float]:
    """``{"train": 480, "groups": {"skin_tone": {"1": 60}}}`` -> ``{"count/train": 480, ...}``."""
    if isinstance(tree, bool):
        return {}
    if isinstance(tree, int | float):
        return {prefix: float(tree)}
    if isinstance(tree, dict):
        leaves: dict[str, float] = {}
        for key, value in tree.items():
            leaves.update(_numeric_leaves(value, f"{prefix}/{key}"))
        return leaves
    return {}
