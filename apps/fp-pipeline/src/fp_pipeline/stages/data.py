"""Data stages: render the synthetic default, check a dataset directory."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.tracking import stage_run

__all__ = ["check_stage", "synth_stage"]


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


def check_stage(*, params_path: Path, root: Path | None = None) -> dict[str, int]:
    """Load every split of a CelebAMask-HQ-layout directory; print the sizes or raise a clear error."""
    from fp_parsing.data import CelebAMaskHQ

    params = load_params(params_path)
    root = root or Path(section(params, "data.root", source=str(params_path)))
    order = section(params, "data.label_order", source=str(params_path))
    sizes: dict[str, int] = {}
    for split in ("train", "val", "test"):
        dataset = CelebAMaskHQ(root, split=split, label_order=order)
        sizes[split] = len(dataset)
        if len(dataset):
            dataset[0]  # decode one item so a broken layout fails here, not mid-training
    typer.echo(f"{root}: " + ", ".join(f"{split} {size}" for split, size in sizes.items()))
    return sizes


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
