"""``fairhuman-eval@<variant>`` (every seed of ``fairhuman.seeds``, each its own MLflow run
``fairhuman-eval@<variant>-<seed>``) and the base-alone evaluation ``fairhuman-base`` writes.

For the test split's prompts (and, for a ControlNet, the test pose images) one image per prompt with a fixed
seed per prompt (``derive_seed(fairhuman.seed, "fairhuman-eval", i)``: the same for the base and every
variant), then the metrics of :mod:`fp_pipeline.stages.fairhuman_scores`. Speed: in the same process the base
alone and the module each generate the first ``fairhuman.eval.speed_images`` prompts after one warm-up
image, each image timed on its own and the median kept; the LoRA is fused into the base UNet first
(``fuse_lora``), so it runs at the base's speed and adds no memory at inference; ``extra_parameters`` / ``extra_megabytes`` are what the module adds to store (fp32).
Writes ``eval/seed-<s>/metrics.json`` (flat floats), ``eval/seed-<s>/evaluation.json``,
``samples/seed-<s>.png`` (pose | generated | real) and the variant's ``metrics.json`` over its seeds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.fairhuman_common import (
    BASE_EVAL_DIR,
    clip_model,
    eval_dir,
    fairhuman_seeds,
    load_fairhuman_base,
    load_test_scenes,
    model_dir,
    samples_file,
    stage_seeds,
    train_config,
    train_dir,
    variant_metrics_file,
)
from fp_pipeline.stages.fairhuman_scores import features_label, real_vs_real, score_images, unavailable
from fp_pipeline.stages.gan_common import torch_threads
from fp_pipeline.stages.generative_eval import blas_threads, grid_figure
from fp_pipeline.tracking import save_figure, stage_run

__all__ = [
    "METRIC_KEYS",
    "TRAIN_KEYS",
    "base_eval",
    "eval_stage",
    "generate_test",
    "load_module",
    "timed_images",
    "write_evaluation",
]

#: the keys of eval/metrics.json every run and the base alone carry (the base: no TRAIN_KEYS)
METRIC_KEYS = (
    "clip_score", "clip_score_se", "fd_global", "fd_global_se", "fd_face", "fd_face_se", "fd_hand",
    "fd_hand_se", "seconds_per_image", "base_seconds_per_image", "speed_ratio", "extra_parameters",
    "extra_megabytes",
)  # fmt: skip
TRAIN_KEYS = (
    "train_loss_global", "train_loss_face", "train_loss_hand", "weight_global", "weight_face", "weight_hand",
)  # fmt: skip


def generate_test(
    base: Any, module: Any, test: dict[str, Any], ecfg: dict[str, Any], seed: int, start: int, stop: int
) -> Any:
    """Images ``[stop - start, 3, R, R]`` in [0, 1] for test prompts ``start..stop-1`` (ControlNet: with
    their pose images)."""
    from diffusers import ControlNetModel

    from fp_core.seeds import derive_seed
    from fp_diffusion.fairhuman import generate_scenes

    conditions = test["pose"][start:stop] if isinstance(module, ControlNetModel) else None
    return generate_scenes(
        base,
        module,
        test["prompts"][start:stop],
        conditions,
        seeds=[derive_seed(seed, "fairhuman-eval", i) for i in range(start, stop)],
        steps=int(ecfg["steps"]),
        guidance_scale=float(ecfg["guidance_scale"]),
        scheduler=str(ecfg["scheduler"]),
    )


def timed_images(
    base: Any, module: Any, test: dict[str, Any], ecfg: dict[str, Any], seed: int, start: int, stop: int
) -> tuple[Any, float]:
    """``(images of prompts start..stop-1, median seconds per image)``: each image timed on its own, and the
    median taken, so a stall of the (shared) machine during one image does not move the speed."""
    import statistics

    import torch

    images, seconds = [], []
    for index in range(start, stop):
        began = time.perf_counter()
        images.append(generate_test(base, module, test, ecfg, seed, index, index + 1))
        seconds.append(time.perf_counter() - began)
    return torch.cat(images), float(statistics.median(seconds))


def load_module(base: Any, config: Any, folder: Path) -> tuple[Any, int]:
    """``(module to generate with, parameters it adds)``: the base UNet with the LoRA fused in, or the
    ControlNet of ``folder``."""
    from fp_diffusion.controlnet import load_controlnet
    from fp_diffusion.fairhuman import fuse_lora, load_lora, lora_parameters

    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: run the fairhuman-train stage of this variant first")
    if config.module == "controlnet":
        controlnet = load_controlnet(folder).to(base.unet.device).eval()
        return controlnet, int(sum(p.numel() for p in controlnet.parameters()))
    load_lora(base.unet, folder)
    count = int(sum(p.numel() for p in lora_parameters(base.unet)))
    return fuse_lora(base.unet).eval(), count


def _samples(test: dict[str, Any], generated: Any, count: int, title: str, path: Path, run: Any) -> None:
    import torch

    k = min(count, len(generated))
    rows = [test["pose"][:k], generated[:k], test["real"][:k]]
    strips = [torch.cat(list(r.clamp(0, 1)), dim=-1) for r in rows]
    grid = (torch.cat(strips, dim=-2).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    save_figure(grid_figure(grid, f"{title}: pose | generated | real"), path, run)


def write_evaluation(
    out: Path, metrics: dict[str, float], info: dict[str, Any], clip: Any, test: dict[str, Any]
) -> None:
    """``out/metrics.json`` (flat floats) and ``out/evaluation.json`` (schema: docs/fairhuman.md)."""
    from fp_core.atomic import write_json

    evaluation = {
        **info,
        "images": len(test["prompts"]),
        "features": features_label(clip),
        "fd_floor": real_vs_real(clip, test),
        "unavailable": unavailable(),
    }
    write_json(out / "metrics.json", {k: float(v) for k, v in metrics.items()})
    write_json(out / "evaluation.json", evaluation)


def _train_metrics(variant: str, seed: int) -> dict[str, float]:
    file = train_dir(variant, seed) / "train.json"
    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is missing: run `fp fairhuman train --variant {variant} --seed {seed}`"
        )
    last = json.loads(file.read_text(encoding="utf-8"))["last_epoch"]
    return {key: float(last[key]) for key in TRAIN_KEYS}


def _speed(
    base: Any, config: Any, folder: Path, test: dict[str, Any], ecfg: dict[str, Any], seed: int
) -> Any:
    """Base then module timings (same process, same prompts) and the module's images of every prompt."""
    import torch

    k = max(1, min(int(ecfg["speed_images"]), len(test["prompts"])))
    generate_test(base, None, test, ecfg, seed, 0, 1)  # warm-up
    _, base_time = timed_images(base, None, test, ecfg, seed, 0, k)
    module, extra = load_module(base, config, folder)
    generate_test(base, module, test, ecfg, seed, 0, 1)  # warm-up
    first, module_time = timed_images(base, module, test, ecfg, seed, 0, k)
    rest = (
        [generate_test(base, module, test, ecfg, seed, k, len(test["prompts"]))]
        if k < len(test["prompts"])
        else []
    )
    speed = {
        "seconds_per_image": module_time,
        "base_seconds_per_image": base_time,
        "speed_ratio": module_time / base_time,
        "extra_parameters": float(extra),
        "extra_megabytes": extra * 4 / 1e6,
    }
    return torch.cat([first, *rest]), speed


def eval_stage(*, params_path: Path, variant: str, seed: int | None = None, progress: bool = True) -> Path:
    """Evaluate the variant's final module of ``seed`` (None: every seed of ``fairhuman.seeds``) on the test
    prompts; returns the variant's ``metrics.json`` (every evaluated seed's metrics)."""
    from fp_core.atomic import write_json

    params = load_params(params_path)
    torch_threads(params, "fairhuman")
    seeds = stage_seeds(params, seed)
    for s in seeds:
        _eval_seed(params, variant, s)
    gathered = {}
    for s in fairhuman_seeds(params):  # every seed evaluated so far (a --seed run keeps the others)
        file = eval_dir(variant, s) / "metrics.json"
        if file.is_file():
            gathered[f"seed-{s}"] = json.loads(file.read_text(encoding="utf-8"))
    write_json(variant_metrics_file(variant), gathered)
    return variant_metrics_file(variant)


def _eval_seed(params: dict[str, Any], variant: str, seed: int) -> Path:
    """Generate for the test prompts with the seed's final module; write metrics, evaluation, samples."""
    from fp_metrics.clip_models import load_clip

    config, ecfg = train_config(params, variant, seed), dict(section(params, "fairhuman.eval"))
    eval_seed = int(section(params, "fairhuman.seed"))
    base = load_fairhuman_base(params)  # fresh per seed: the LoRA is fused into it
    test = load_test_scenes(base.resolution)
    name = f"fairhuman-eval@{variant}-{seed}"
    with stage_run(name, params={"fairhuman.eval": ecfg}, variant=variant, seed=seed) as run:
        clip = load_clip(clip_model(params))
        generated, speed = _speed(base, config, model_dir(variant, seed) / "final", test, ecfg, eval_seed)
        with blas_threads(params, "fairhuman"):
            scores = score_images(clip, generated, test, bootstrap=int(ecfg["bootstrap"]), seed=eval_seed)
            metrics = {**scores, **speed, **_train_metrics(variant, seed)}
            info = {
                "variant": variant,
                "module": config.module,
                "weighting": config.weighting,
                "seed": int(seed),
                "lora_rank": config.lora_rank if config.module == "lora" else None,
            }
            write_evaluation(eval_dir(variant, seed), metrics, info, clip, test)
        _samples(test, generated, int(ecfg["grid_images"]), name, samples_file(variant, seed), run)
        run({f"eval/{k}": v for k, v in metrics.items()}, 0)
        run.log_artifact(eval_dir(variant, seed) / "metrics.json")
        run.log_artifact(eval_dir(variant, seed) / "evaluation.json")
    typer.echo(
        f"{name}: CLIP score {metrics['clip_score']:.3g}, FD global / face / hand {metrics['fd_global']:.3g} / "
        f"{metrics['fd_face']:.3g} / {metrics['fd_hand']:.3g}, speed ratio {metrics['speed_ratio']:.3g}"
    )
    return eval_dir(variant, seed) / "metrics.json"


def base_eval(params: dict[str, Any], base: Any, clip: Any, run: Any) -> dict[str, float]:
    """The base alone on the test prompts: ``outputs/fairhuman/base-eval`` (speed ratio 1, nothing extra)."""
    ecfg, seed = dict(section(params, "fairhuman.eval")), int(section(params, "fairhuman.seed"))
    test = load_test_scenes(base.resolution)
    generate_test(base, None, test, ecfg, seed, 0, 1)  # warm-up, as in the variants' timing
    generated, per_image = timed_images(base, None, test, ecfg, seed, 0, len(test["prompts"]))
    with blas_threads(params, "fairhuman"):
        metrics = {
            **score_images(clip, generated, test, bootstrap=int(ecfg["bootstrap"]), seed=seed),
            "seconds_per_image": per_image,
            "base_seconds_per_image": per_image,
            "speed_ratio": 1.0,
            "extra_parameters": 0.0,
            "extra_megabytes": 0.0,
        }
        info = {"variant": "base", "module": None, "weighting": None, "seed": None, "lora_rank": None}
        write_evaluation(BASE_EVAL_DIR, metrics, info, clip, test)
    _samples(test, generated, int(ecfg["grid_images"]), "the base alone", BASE_EVAL_DIR / "samples.png", run)
    return metrics
