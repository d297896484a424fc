"""``fairhuman-base`` (default only): the small base and the embedded scene CLIP, then the base-alone eval.

Default: the diffusion base machinery of ``diffusion-base`` (``fp_diffusion.base``: VAE, then UNet + CLIP
text encoder, ``fairhuman.base`` overriding :class:`~fp_diffusion.base.DiffusionBaseConfig`, and the stage's
``captioned_images`` dataset) trained on the train scenes and their captions, saved to
``outputs/fairhuman/base``; and a small open_clip CLIP (:mod:`fp_qdgs.embedded_clip`, ``fairhuman.clip``)
trained contrastively on the same train scenes and captions, saved to ``outputs/fairhuman/clip``: the CLIP
score needs a CLIP that has seen scene captions, and the face CLIP of the QDGS stages has not. Then the base
alone is evaluated on the test prompts (:func:`fp_pipeline.stages.fairhuman_eval.base_eval`):
``outputs/fairhuman/base-eval``.

Real scale: ``fairhuman.base_model: stabilityai/stable-diffusion-xl-base-1.0`` (``fairhuman.vae_model:
madebyollin/sdxl-vae-fp16-fix``) and ``fairhuman.eval.clip: ViT-L-14/openai``, all from the local cache: no
training here; the stage only loads them (an error names every missing file) and evaluates the base alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.fairhuman_common import (
    BASE_DIR,
    BASE_EVAL_DIR,
    CLIP_DIR,
    clip_model,
    load_fairhuman_base,
    split_dir,
    uses_default_base,
)
from fp_pipeline.stages.gan_common import checkpoint_dir, torch_threads
from fp_pipeline.stages.generative_eval import grid_figure
from fp_pipeline.tracking import stage_run

__all__ = ["base_config", "base_stage", "train_scenes"]


def base_config(params: dict[str, Any]) -> Any:
    """``DiffusionBaseConfig`` from ``fairhuman.base``; a bad setting is a :class:`ParamsError`."""
    from fp_diffusion.base import DiffusionBaseConfig

    try:
        return DiffusionBaseConfig.from_dict(dict(section(params, "fairhuman.base") or {}))
    except (ValueError, TypeError) as err:
        raise ParamsError(f"fairhuman.base: {err}") from err


def train_scenes(resolution: int) -> tuple[Any, list[str]]:
    """The train scenes ``[N, 3, R, R]`` in [0, 1] and their captions."""
    import torch

    from fp_diffusion.fairhuman import HumanScenes

    data = HumanScenes(split_dir("train"), size=resolution, conditions=[])
    items = [data[i] for i in range(len(data))]
    return (torch.stack([it["pixel_values"] for it in items]) + 1) / 2, [str(it["caption"]) for it in items]


def _train_base(config: Any, images: Any, captions: list[str], run: Any, progress: bool, every: int) -> Any:
    from fp_diffusion.base import (
        BaseComponents,
        build_clip_tokenizer,
        build_scheduler,
        train_denoiser,
        train_vae,
    )
    from fp_pipeline.stages.diffusion_base import captioned_images

    vae = train_vae(
        config, images * 2 - 1, checkpoint_dir=checkpoint_dir("fairhuman-base-vae"), log=run,
        progress=progress, tracking_id=run.run_id,
    )  # fmt: skip
    tokenizer = build_clip_tokenizer(config.text_max_length)

    def on_samples(grid: np.ndarray, step: int) -> None:
        run.log_figure(grid_figure(grid, f"fairhuman base, step {step}"), f"samples/step-{step:06d}.png")

    unet, text_encoder = train_denoiser(
        config, vae, captioned_images(images, [[c] for c in captions]), tokenizer,
        checkpoint_dir=checkpoint_dir("fairhuman-base-unet"), log=run, on_samples=on_samples,
        sample_every=every, progress=progress, tracking_id=run.run_id,
    )  # fmt: skip
    return BaseComponents(
        vae=vae, unet=unet, text_encoder=text_encoder, tokenizer=tokenizer,
        noise_scheduler=build_scheduler(config), name=str(BASE_DIR), resolution=int(config.resolution),
    )  # fmt: skip


def _train_clip(params: dict[str, Any], images: Any, captions: list[str], run: Any, progress: bool) -> None:
    from fp_metrics.clip_models import save_clip
    from fp_qdgs.embedded_clip import CLIPTrainConfig, EmbeddedCLIPConfig, build_embedded_clip, train_clip

    cfg, seed = dict(section(params, "fairhuman.clip")), int(section(params, "fairhuman.seed"))
    try:
        model_cfg = EmbeddedCLIPConfig(**(cfg.get("model") or {}))
        train_cfg = CLIPTrainConfig(seed=seed, **(cfg.get("train") or {}))
    except (ValueError, TypeError) as err:
        raise ParamsError(f"fairhuman.clip: {err}") from err
    model = train_clip(
        build_embedded_clip(model_cfg, seed=seed), images, captions, train_cfg,
        checkpoint_dir=checkpoint_dir("fairhuman-clip"), log=lambda m, s: run({f"clip/{k}": v for k, v in m.items()}, s),
        tracking_id=run.run_id, progress=progress,
    )  # fmt: skip
    save_clip(
        model, CLIP_DIR, context_length=model_cfg.context_length,
        extra={"trained_on": f"{split_dir('train')} scenes + captions", "images": len(images), "seed": seed},
    )  # fmt: skip


def base_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the base and the scene CLIP (default), then evaluate the base alone; returns the base-eval dir."""
    from fp_diffusion.base import save_base
    from fp_metrics.clip_models import load_clip
    from fp_pipeline.stages.fairhuman_eval import base_eval

    params = load_params(params_path)
    torch_threads(params, "fairhuman")
    config = base_config(params)
    logged = {"fairhuman.base": config.to_dict(), "fairhuman.clip": section(params, "fairhuman.clip")}
    with stage_run("fairhuman-base", params=logged, dataset=split_dir("train")) as run:
        if uses_default_base(params):
            images, captions = train_scenes(config.resolution)
            every = int(section(params, "fairhuman").get("sample_every", 0) or 0)
            base = _train_base(config, images, captions, run, progress, every)
            save_base(
                base,
                BASE_DIR,
                config=config,
                extra={"trained_on": str(split_dir("train")), "images": len(images)},
            )
            for name in ("fairhuman-base-vae", "fairhuman-base-unet"):
                shutil.rmtree(checkpoint_dir(name), ignore_errors=True)  # saved: the next run trains afresh
        if Path(clip_model(params)) == CLIP_DIR:
            clip_size = int((section(params, "fairhuman.clip").get("model") or {}).get("image_size", 64))
            images, captions = train_scenes(clip_size)
            _train_clip(params, images, captions, run, progress)
            shutil.rmtree(checkpoint_dir("fairhuman-clip"), ignore_errors=True)
        metrics = base_eval(params, load_fairhuman_base(params), load_clip(clip_model(params)), run)
        run({f"base/{k}": v for k, v in metrics.items()}, 0)
        run.log_artifact(BASE_EVAL_DIR / "metrics.json")
    typer.echo(
        f"fairhuman-base: base alone: CLIP score {metrics['clip_score']:.3g}, FD global {metrics['fd_global']:.3g}, "
        f"{metrics['seconds_per_image']:.3g} s / image -> {BASE_EVAL_DIR}"
    )
    return BASE_EVAL_DIR
