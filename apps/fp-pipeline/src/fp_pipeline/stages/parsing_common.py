"""What every face-parsing stage shares: where a (variant, seed) run lives, its settings, its datasets.

Each variant is a key of ``parsing.variants`` in params.yaml, merged over ``parsing.model`` and
``parsing.train``; every variant trains once per seed of ``parsing.seeds``. Outputs of one run live under
``outputs/parsing/<variant>/seed-<seed>/``:

- ``model/``: weights, config, per-epoch history (DVC output of ``parsing-train@<variant>-<seed>``);
- ``train/schedule.csv``, ``train/schedule.png``: the α, β, γ the run used (DVC plots);
- ``eval/metrics.json`` (DVC metrics), ``eval/evaluation.json``, ``eval/robustness.csv`` and figures.

The export of a run (predicted label maps of every split, the generators' input) lives apart, under
``outputs/parsing-export/<variant>/seed-<seed>/`` (``parsing-export@<variant>-<seed>``), so that the report,
which depends on ``outputs/parsing``, does not depend on the export trees.

Checkpoints go to ``outputs/checkpoints/parsing-<variant>-seed-<seed>/``, outside the DVC outputs, so a killed
stage resumes; they are removed once training ends. The report goes to ``outputs/parsing-report/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, deep_merge, section

__all__ = [
    "CHECKPOINT_ROOT",
    "EXPORT_ROOT",
    "OUTPUT_ROOT",
    "REPORT_DIR",
    "checkpoint_dir",
    "dataset",
    "export_dir",
    "run_dir",
    "seeds",
    "torch_threads",
    "train_config",
    "variant_names",
]

OUTPUT_ROOT = Path("outputs/parsing")
EXPORT_ROOT = Path("outputs/parsing-export")
CHECKPOINT_ROOT = Path("outputs/checkpoints")
REPORT_DIR = Path("outputs/parsing-report")


def run_dir(variant: str, seed: int) -> Path:
    """``outputs/parsing/<variant>/seed-<seed>``: everything one training run of one variant writes."""
    return OUTPUT_ROOT / variant / f"seed-{int(seed)}"


def export_dir(variant: str, seed: int) -> Path:
    """``outputs/parsing-export/<variant>/seed-<seed>``: the run's export (label maps, images, manifest)."""
    return EXPORT_ROOT / variant / f"seed-{int(seed)}"


def checkpoint_dir(variant: str, seed: int) -> Path:
    """``outputs/checkpoints/parsing-<variant>-seed-<seed>``: the run's resumable checkpoints."""
    return CHECKPOINT_ROOT / f"parsing-{variant}-seed-{int(seed)}"


def variant_names(params: dict[str, Any]) -> list[str]:
    """The variants params.yaml defines, in file order."""
    return list(section(params, "parsing.variants"))


def seeds(params: dict[str, Any]) -> list[int]:
    """``parsing.seeds``: every variant trains once per seed (a list of distinct ints >= 0)."""
    values = section(params, "parsing.seeds")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values)
        or len(set(values)) != len(values)
    ):
        raise ParamsError(f"parsing.seeds must be a non-empty list of distinct ints >= 0, got {values!r}")
    return values


def train_config(params: dict[str, Any], variant: str, seed: int) -> dict[str, Any]:
    """One run's settings: ``parsing.variants.<v>`` merged over ``parsing.train`` and ``parsing.model``,
    with ``seed``."""
    variants = section(params, "parsing.variants")
    if variant not in variants:
        raise ParamsError(f"unknown parsing variant {variant!r}; params.yaml defines: {', '.join(variants)}")
    if seed not in seeds(params):
        raise ParamsError(f"seed {seed} is not one of parsing.seeds {seeds(params)}")
    base = deep_merge(section(params, "parsing.train"), section(params, "parsing.model"))
    merged = deep_merge(base, variants[variant] or {})
    merged["seed"] = int(seed)
    return merged


def dataset(params: dict[str, Any], split: str, **kwargs: Any) -> Any:
    """The ``split`` of ``data.root`` at ``data.image_size`` (a :class:`fp_parsing.data.CelebAMaskHQ`)."""
    from fp_parsing.data import CelebAMaskHQ

    return CelebAMaskHQ(
        Path(section(params, "data.root")),
        split=split,
        image_size=section(params, "data.image_size"),
        label_order=section(params, "data.label_order"),
        **kwargs,
    )


def torch_threads(params: dict[str, Any]) -> None:
    """Apply ``runtime.torch_threads`` (0: torch's default)."""
    import torch

    threads = int(params.get("runtime", {}).get("torch_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
