"""``diffusion-base`` (default only): the small text-to-image latent diffusion model the ControlNet fine-tunes.

There is no Stable Diffusion offline, and a ControlNet on a random base teaches nothing, so the pipeline
trains a base of its own (``fp_diffusion.base``: a diffusers ``AutoencoderKL``, a ``UNet2DConditionModel``
and a CLIP text encoder from small configs, CLIP's own BPE vocabulary offline) on the train split's faces and
the captions of what the renderer drew (:mod:`fp_pipeline.stages.face_captions`: the full description of
each image, in one of its templates). First
the VAE, then the UNet with the text encoder. The result is a diffusers ``StableDiffusionPipeline`` folder
(``outputs/diffusion-base``). What it reaches is measured, not asserted: the CLIP-FD (embedded face CLIP) of
samples drawn from the test split's captions against the real test faces, beside the real-vs-real floor
(val vs test faces), in ``outputs/diffusion-base-metrics.json``, and a sample grid in
``outputs/diffusion-base-samples.png``.

Real scale: set ``controlnet.base_model`` to ``stable-diffusion-v1-5/stable-diffusion-v1-5`` (local cache)
and leave this stage out (``dvc repro controlnet-report`` then still runs it; its output is unused).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.controlnet_common import BASE_DIR, BASE_METRICS_FILE, BASE_SAMPLES_FILE
from fp_pipeline.stages.gan_common import checkpoint_dir, fd_label, torch_threads
from fp_pipeline.stages.generative_eval import grid_figure
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["base_config", "base_stage", "captioned_images"]


def base_config(params: dict[str, Any]) -> Any:
    """``DiffusionBaseConfig`` from ``controlnet.base``; a bad setting is a :class:`ParamsError`."""
    from fp_diffusion.base import DiffusionBaseConfig

    try:
        return DiffusionBaseConfig.from_dict(dict(section(params, "controlnet.base")))
    except (ValueError, TypeError) as err:
        raise ParamsError(f"controlnet.base: {err}") from err


class captioned_images:  # noqa: N801 - a small Dataset, named for what it holds
    """``dataset[i] -> (image [3, R, R] in [-1, 1], caption)``: every caption of every image, one pair each."""

    def __init__(self, images: Any, captions: list[list[str]]) -> None:
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} caption lists")
        self.images = images * 2 - 1
        self.pairs = [(i, text) for i, texts in enumerate(captions) for text in texts]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int) -> tuple[Any, str]:
        index, text = self.pairs[item]
        return self.images[index], text


def _train(params: dict[str, Any], config: Any, root: Path, run: Any, progress: bool) -> tuple[Any, int]:
    """Train the VAE, then the UNet and text encoder; returns the ``BaseComponents`` and the image count."""
    from fp_diffusion.base import (
        BaseComponents,
        build_clip_tokenizer,
        build_scheduler,
        train_denoiser,
        train_vae,
    )
    from fp_pipeline.stages.clip_faces import face_set
    from fp_pipeline.stages.face_captions import captions_for

    order = str(section(params, "data.label_order"))
    images, _, traits = face_set(root, "train", config.resolution, order)
    seed = int(section(params, "controlnet.seed"))
    # one caption per image: the full description, in a template drawn per image (the per-trait captions the
    # CLIP also trains on would make an epoch five times longer for the same images)
    captions = [captions_for(t, seed=seed, index=i)[:1] for i, t in enumerate(traits)]
    vae = train_vae(
        config,
        images * 2 - 1,
        checkpoint_dir=checkpoint_dir("diffusion-base-vae"),
        log=run,
        progress=progress,
        tracking_id=run.run_id,
    )
    tokenizer = build_clip_tokenizer(config.text_max_length)

    def on_samples(grid: np.ndarray, step: int) -> None:
        run.log_figure(grid_figure(grid, f"diffusion base, step {step}"), f"samples/step-{step:06d}.png")

    unet, text_encoder = train_denoiser(
        config,
        vae,
        captioned_images(images, captions),
        tokenizer,
        checkpoint_dir=checkpoint_dir("diffusion-base-unet"),
        log=run,
        on_samples=on_samples,
        sample_every=int(section(params, "controlnet.sample_every")),
        progress=progress,
        tracking_id=run.run_id,
    )
    return BaseComponents(
        vae=vae,
        unet=unet,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        noise_scheduler=build_scheduler(config),
        name=str(BASE_DIR),
        resolution=int(config.resolution),
    ), len(images)


def _measure(params: dict[str, Any], base: Any, root: Path, run: Any, progress: bool) -> dict[str, Any]:
    """CLIP-FD of samples from the test captions vs the real test faces, the real-vs-real floor, a grid."""
    from fp_core.seeds import derive_seed
    from fp_diffusion.base import generate, sample_grid
    from fp_metrics.generative import fid_from_features
    from fp_pipeline.stages.clip_faces import face_set
    from fp_pipeline.stages.controlnet_common import face_captions_by_index
    from fp_pipeline.stages.generative_eval import blas_threads, fd_with_se, feature_fn

    ecfg = dict(section(params, "controlnet.eval"))
    order, seed = str(section(params, "data.label_order")), int(section(params, "controlnet.seed"))
    real, _, _ = face_set(root, "test", base.resolution, order)
    val, _, _ = face_set(root, "val", base.resolution, order)
    prompts = list(face_captions_by_index(root, ["test"], order).values())
    generated = generate(
        base,
        prompts,
        seeds=[derive_seed(seed, "diffusion-base-samples", i) for i in range(len(prompts))],
        steps=int(ecfg["steps"]),
        guidance_scale=float(ecfg["guidance_scale"]),
        scheduler=str(ecfg["scheduler"]),
        batch_size=int(ecfg["batch_size"]),
    )
    features = feature_fn(ecfg)
    with blas_threads(params, "controlnet"):
        real_feats = features(real)
        fd, se = fd_with_se(features(generated), real_feats, samples=int(ecfg["bootstrap"]), seed=seed)
        floor = fid_from_features(features(val), real_feats)
    k = min(int(ecfg["grid_maps"]) * 2, len(generated))
    grid = sample_grid(generated[:k], nrow=min(k, 8))
    save_figure(grid_figure(grid, "diffusion base: samples from test captions"), BASE_SAMPLES_FILE, run)
    label = fd_label(str(ecfg.get("features", "clip")))
    return {
        "fd_label": label,
        label: {"mean": fd, "se": se, "se_kind": "bootstrap over test captions / images"},
        "real_vs_real": {label: floor, "sets": "val vs test (real images)"},
        "samples": len(generated),
        "prompts": "the test split's captions (template 0)",
    }


def base_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the base on the train split's faces and captions; save it; measure what it reaches."""
    from fp_core.atomic import write_json
    from fp_diffusion.base import load_base, save_base

    params = load_params(params_path)
    torch_threads(params, "controlnet")
    config = base_config(params)
    root = Path(section(params, "data.root"))
    with stage_run("diffusion-base", params={"controlnet.base": config.to_dict()}, dataset=root) as run:
        base, count = _train(params, config, root, run, progress)
        save_base(base, BASE_DIR, config=config, extra={"trained_on": f"{root} train split", "images": count})
        for name in ("diffusion-base-vae", "diffusion-base-unet"):
            shutil.rmtree(checkpoint_dir(name), ignore_errors=True)  # saved: the next run trains afresh
        metrics = _measure(params, load_base(BASE_DIR), root, run, progress)
        write_json(BASE_METRICS_FILE, metrics)
        label = metrics["fd_label"]
        run({"base/fd": metrics[label]["mean"], "base/fd_floor": metrics["real_vs_real"][label]}, 0)
        run.log_artifact(BASE_METRICS_FILE)
    fd = metrics[metrics["fd_label"]]
    typer.echo(f"diffusion-base: {metrics['fd_label']} {fd['mean']:.4g} ± {fd['se']:.2g} -> {BASE_DIR}")
    return BASE_DIR
