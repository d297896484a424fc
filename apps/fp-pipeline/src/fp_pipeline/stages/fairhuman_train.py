"""``fairhuman-train@<variant>``: FairHuman fine-tuning (LoRA or a pose ControlNet) of the base, per seed.

One stage per variant trains every seed of ``fairhuman.seeds`` in turn (``--seed`` picks one), each seed its
own MLflow run ``fairhuman-train@<variant>-<seed>`` from a freshly loaded base.

``train_fairhuman`` (fp_diffusion.fairhuman, on the fp-core harness: checkpoints every epoch and every
``checkpoint_every`` steps, resume from the newest, AMP, accumulation) with
``{**fairhuman.train, **fairhuman.variants[variant], seed}`` on the train scenes (masks from the boxes,
``mask_dilation`` growth; the pose images as the ControlNet's condition). Validation grids (the first train
prompts, ControlNet: with their poses) go to MLflow every ``fairhuman.sample_every`` steps and at the end.
Writes ``model/final`` (and ``epoch-<e>`` snapshots) and ``train.json``: the config, the step count and
the last epoch's mean losses and weights (the harness's epoch means, restored on resume).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.fairhuman_common import (
    base_model,
    load_fairhuman_base,
    model_dir,
    split_dir,
    stage_seeds,
    train_config,
    train_dir,
)
from fp_pipeline.stages.gan_common import checkpoint_dir, torch_threads
from fp_pipeline.stages.generative_eval import grid_figure
from fp_pipeline.tracking import stage_run

__all__ = ["last_epoch_means", "train_checkpoint_dir", "train_stage"]

_EPOCH_KEYS = {
    "train_loss_global": "epoch/loss_global",
    "train_loss_face": "epoch/loss_face",
    "train_loss_hand": "epoch/loss_hand",
    "weight_global": "epoch/fairhuman/w_global",
    "weight_face": "epoch/fairhuman/w_face",
    "weight_hand": "epoch/fairhuman/w_hand",
}


def train_checkpoint_dir(variant: str, seed: int) -> Path:
    """``outputs/checkpoints/fairhuman-<variant>-seed-<seed>``."""
    return checkpoint_dir(f"fairhuman-{variant}-seed-{int(seed)}")


def last_epoch_means(logged: list[dict[str, float]]) -> dict[str, float]:
    """The schema's ``train_loss_*`` / ``weight_*`` from the last logged epoch means (the harness's
    ``epoch/...`` records); an error when no epoch ended in this process."""
    ends = [m for m in logged if "epoch/loss_global" in m]
    if not ends:
        raise RuntimeError("no epoch ended during this training run: its epoch means were not logged")
    last = ends[-1]
    missing = [k for k in _EPOCH_KEYS.values() if k not in last]
    if missing:
        raise RuntimeError(f"the last epoch's means lack {missing} (logged: {sorted(last)})")
    return {key: float(last[name]) for key, name in _EPOCH_KEYS.items()}


def train_stage(
    *, params_path: Path, variant: str, seed: int | None = None, progress: bool = True
) -> list[Path]:
    """Train the variant with ``seed`` (None: every seed of ``fairhuman.seeds``); each resumes from its
    checkpoints; returns the model folders."""
    params = load_params(params_path)
    torch_threads(params, "fairhuman")
    return [_train_seed(params, variant, s, progress) for s in stage_seeds(params, seed)]


def _train_seed(params: dict[str, Any], variant: str, seed: int, progress: bool) -> Path:
    from fp_core.atomic import write_json
    from fp_diffusion.fairhuman import HumanScenes, train_fairhuman

    config = train_config(params, variant, seed)
    base = load_fairhuman_base(params)  # fresh per seed: a LoRA is injected into the base's UNet
    data = HumanScenes(
        split_dir("train"), size=config.resolution or base.resolution, conditions=["pose"],
        dilation=config.mask_dilation, seed=config.seed,
    )  # fmt: skip
    ckpt, name = train_checkpoint_dir(variant, seed), f"fairhuman-train@{variant}-{seed}"
    logged: list[dict[str, float]] = []
    started = time.perf_counter()
    params_logged = {"fairhuman.train": config.to_dict(), "base": base_model(params)}
    with stage_run(name, params=params_logged, variant=variant, seed=seed, dataset=split_dir("train")) as run:

        def log(metrics: Any, step: int) -> None:
            logged.append(dict(metrics))
            run(metrics, step)

        def on_samples(grid: np.ndarray, step: int) -> None:
            run.log_figure(
                grid_figure(grid, f"{variant} seed {seed}, step {step}"), f"samples/step-{step:06d}.png"
            )

        train_fairhuman(
            config, base, data, output_dir=model_dir(variant, seed), checkpoint_dir=ckpt, log=log,
            on_samples=on_samples, sample_every=int(section(params, "fairhuman").get("sample_every", 0) or 0),
            progress=progress, tracking_id=run.run_id,
        )  # fmt: skip
        summary = {
            "variant": variant,
            "seed": int(seed),
            "config": config.to_dict(),
            "base": base_model(params),
            "images": len(data),
            "last_epoch": last_epoch_means(logged),
            "seconds": time.perf_counter() - started,
        }
        write_json(train_dir(variant, seed) / "train.json", summary)
        run.log_artifact(train_dir(variant, seed) / "train.json")
    shutil.rmtree(ckpt, ignore_errors=True)  # trained and saved: the next run of this stage starts afresh
    typer.echo(
        f"{name}: {len(data)} scenes, last epoch {summary['last_epoch']} -> {model_dir(variant, seed)}"
    )
    return model_dir(variant, seed)
