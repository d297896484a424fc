"""ControlNet fine-tuning on :class:`fp_core.training.TrainingHarness`, after diffusers'
``examples/controlnet/train_controlnet.py``.

Each step, for a batch of (image, condition, caption):

1. captions are replaced by ``""`` with probability ``proportion_empty_prompts`` and condition images zeroed
   with probability ``condition_dropout``;
2. ``latents = vae.encode(pixels).latent_dist.sample() * scaling_factor``; Gaussian ``noise``; timesteps
   uniform in ``[0, num_train_timesteps)``; ``noisy = noise_scheduler.add_noise(latents, noise, t)``;
3. ``down, mid = controlnet(noisy, t, encoder_hidden_states, controlnet_cond=cond, return_dict=False)``,
   then ``unet(noisy, t, encoder_hidden_states, down_block_additional_residuals=down,
   mid_block_additional_residual=mid)``;
4. the MSE (fp32) against ``noise`` (``prediction_type == "epsilon"``) or ``get_velocity(latents, noise,
   t)`` (``"v_prediction"``), back-propagated into the ControlNet only.

The VAE, UNet and text encoder are frozen (``requires_grad_(False)``, eval) and stay fp32; mixed precision is
the harness's autocast around their forward passes (the ControlNet's weights and optimiser stay fp32). AdamW,
diffusers' ``get_scheduler`` (``constant_with_warmup`` or ``cosine``, counted in optimiser steps), gradient
accumulation (``harness.accumulate``) and clipping (the harness).

Reproducibility: the data order depends only on ``(seed, epoch)`` and each step's randomness (dropouts,
VAE sample, noise, timesteps) only on ``(seed, global batch index)`` (:mod:`fp_core.seeds`), so a run resumed
from a checkpoint ends with the same weights as an uninterrupted one.

Outputs: every harness checkpoint also holds ``<checkpoint>/controlnet/`` (``save_pretrained``, written by an
accelerate save-state pre-hook, so it exists exactly when the checkpoint does); ``output_dir/epoch-<e>/`` after
each epoch ``e`` (1-based) of ``config.snapshot_epochs`` (the convergence curve) and ``output_dir/final/`` at
the end, each written atomically. Logged every batch (main process): ``train/loss``, ``train/lr`` and, on
optimiser steps, ``train/grad_norm`` (before clipping).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from fp_core.atomic import atomic_output_dir
from fp_core.logging import LogFn
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed, torch_generator
from fp_diffusion.base.components import BaseComponents
from fp_diffusion.controlnet.conditioning import colorize_labels, condition_to_labels, resize_labels
from fp_diffusion.controlnet.config import (
    ControlNetConfigError,
    ControlNetTrainConfig,
    embedding_channels_for,
)
from fp_diffusion.controlnet.data import stack_items
from fp_diffusion.controlnet.pipeline import build_pipeline, generate_from_maps, vae_factor

__all__ = [
    "ControlNetTrainConfig",
    "SamplesFn",
    "check_controlnet",
    "controlnet_from_base",
    "controlnet_loss",
    "train_controlnet",
    "validation_grid",
]

SamplesFn = Callable[[np.ndarray, int], None]
PREDICTION_TYPES = ("epsilon", "v_prediction")


def check_controlnet(controlnet: Any, base: BaseComponents) -> None:
    """Raise :class:`ControlNetConfigError` unless ``controlnet``'s conditioning embedding downsamples the
    pixel-space condition by ``base``'s VAE factor (``len(conditioning_embedding_out_channels) - 1`` stride-2
    convs == log2(factor))."""
    channels = tuple(controlnet.config.conditioning_embedding_out_channels)
    embedding_channels_for(vae_factor(base.vae), channels)


def controlnet_from_base(base: BaseComponents, config: ControlNetTrainConfig) -> Any:
    """``ControlNetModel.from_unet(base.unet)`` with a conditioning embedding fitted to the VAE factor
    (:func:`~fp_diffusion.controlnet.config.embedding_channels_for`); seeded from ``config.seed``."""
    from diffusers import ControlNetModel

    channels = embedding_channels_for(vae_factor(base.vae), config.conditioning_embedding_out_channels)
    torch.manual_seed(derive_seed(config.seed, "controlnet-init"))
    return ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=channels)


def _check_setup(base: BaseComponents, config: ControlNetTrainConfig, resolution: int) -> None:
    kind = base.noise_scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise ControlNetConfigError(
            f"the base's noise scheduler has prediction_type {kind!r}; ControlNet training supports "
            f"{PREDICTION_TYPES}"
        )
    factor = vae_factor(base.vae)
    multiple = factor * 2 ** (len(base.unet.config.down_block_types) - 1)
    if resolution % multiple:
        raise ControlNetConfigError(
            f"resolution {resolution} is not a multiple of {multiple} (VAE factor {factor} x the UNet's "
            f"2**(down blocks - 1)); resize the data to e.g. {max(multiple, round(resolution / multiple) * multiple)}"
        )


def _encode_prompts(base: BaseComponents, captions: Sequence[str], device: torch.device) -> torch.Tensor:
    """``[B, tokens, dim]`` text-encoder states of ``captions``."""
    tokens = base.tokenizer(
        list(captions),
        max_length=base.tokenizer.model_max_length,
        padding="max_length",
        truncation=True,
        return_tensors="pt",
    )
    return base.text_encoder(tokens.input_ids.to(device), return_dict=False)[0]


def controlnet_loss(
    base: BaseComponents,
    controlnet: Any,
    batch: Mapping[str, Any],
    config: ControlNetTrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """The denoising MSE (fp32 scalar) of one batch (module docstring, steps 1-4); every random draw comes
    from ``generator`` (CPU), in a fixed order. Call it inside the autocast context you want."""
    pixels = batch["pixel_values"]
    device = pixels.device
    count = int(pixels.shape[0])
    keep_caption = torch.rand(count, generator=generator) >= config.proportion_empty_prompts
    captions = [c if keep else "" for c, keep in zip(batch["caption"], keep_caption.tolist(), strict=True)]
    keep_condition = torch.rand(count, generator=generator) >= config.condition_dropout
    condition = batch["conditioning_pixel_values"] * keep_condition.to(device).view(-1, 1, 1, 1)
    scheduler = base.noise_scheduler
    with torch.no_grad():
        latents = base.vae.encode(pixels).latent_dist.sample(generator=generator) * base.latent_scale
        states = _encode_prompts(base, captions, device)
    noise = torch.randn(latents.shape, generator=generator).to(device=device, dtype=latents.dtype)
    steps = torch.randint(0, scheduler.config.num_train_timesteps, (count,), generator=generator).to(device)
    noisy = scheduler.add_noise(latents, noise, steps)
    down, mid = controlnet(
        noisy,
        steps,
        encoder_hidden_states=states,
        controlnet_cond=condition.to(noisy.dtype),
        return_dict=False,
    )
    prediction = base.unet(
        noisy,
        steps,
        encoder_hidden_states=states,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
        return_dict=False,
    )[0]
    if scheduler.config.prediction_type == "epsilon":
        target = noise
    else:
        target = scheduler.get_velocity(latents, noise, steps)
    return F.mse_loss(prediction.float(), target.float())


def _grad_norm(parameters: Sequence[torch.Tensor], scaler: Any | None) -> float:
    """The total L2 norm of the gradients (unscaled when a GradScaler is active)."""
    grads = [p.grad.detach().float().norm() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norm = float(torch.linalg.vector_norm(torch.stack(grads)))
    return norm / float(scaler.get_scale()) if scaler is not None else norm


def _objects(config: ControlNetTrainConfig, controlnet: Any, dataset: Dataset) -> tuple[Any, Any, Any]:
    """The AdamW optimiser, its learning-rate schedule and the loader."""
    from diffusers.optimization import get_scheduler

    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=EpochPermutation(len(dataset), config.seed, "controlnet-order"),
        drop_last=True,
        num_workers=config.num_workers,
        collate_fn=stack_items,
    )
    if len(loader) == 0:
        raise ControlNetConfigError(
            f"the dataset has {len(dataset)} items, fewer than batch_size={config.batch_size}"
        )
    batches = len(loader) if not config.max_steps_per_epoch else min(len(loader), config.max_steps_per_epoch)
    total_steps = config.epochs * math.ceil(batches / config.gradient_accumulation_steps)
    optimizer = torch.optim.AdamW(
        [p for p in controlnet.parameters() if p.requires_grad],
        lr=config.lr,
        betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.adam_weight_decay,
        eps=config.adam_epsilon,
    )
    name = "constant_with_warmup" if config.lr_scheduler == "constant" else "cosine"
    schedule = get_scheduler(
        name, optimizer, num_warmup_steps=config.lr_warmup_steps, num_training_steps=total_steps
    )
    return optimizer, schedule, loader


def _validation_set(
    dataset: Dataset, conditions: Any, prompts: str | Sequence[str] | None, count: int = 4
) -> tuple[torch.Tensor, list[str]]:
    """``(labels [N, H, W], prompts)`` for the validation grid (default: the first ``count`` items)."""
    if conditions is None:
        items = [dataset[i] for i in range(min(count, len(dataset)))]
        labels = torch.stack([condition_to_labels(item["conditioning_pixel_values"]) for item in items])
        texts = [str(item["caption"]) for item in items]
    else:
        labels = torch.as_tensor(np.asarray(conditions)).long()
        texts = [""] * int(labels.shape[0])
    if prompts is not None:
        texts = [prompts] * len(labels) if isinstance(prompts, str) else [str(p) for p in prompts]
    if len(texts) != len(labels):
        raise ValueError(f"got {len(texts)} validation prompts for {len(labels)} validation maps")
    return labels, texts


def validation_grid(
    base: BaseComponents,
    controlnet: Any,
    labels: torch.Tensor,
    prompts: Sequence[str],
    config: ControlNetTrainConfig,
) -> np.ndarray:
    """uint8 ``[2R, N*R, 3]``: the N maps in face colours (top) over the faces generated from them."""
    was_training = controlnet.training
    controlnet.eval()
    pipeline = build_pipeline(base, controlnet)
    seeds = [derive_seed(config.seed, "controlnet-validation", i) for i in range(len(labels))]
    images = generate_from_maps(
        pipeline,
        labels,
        list(prompts),
        seeds=seeds,
        steps=config.validation_steps,
        guidance_scale=config.validation_guidance_scale,
        batch_size=config.batch_size,
    )
    controlnet.train(was_training)
    size = int(images.shape[-1])
    maps = colorize_labels(resize_labels(labels, size))
    faces = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    return np.concatenate([np.concatenate(list(maps), axis=1), np.concatenate(list(faces), axis=1)], axis=0)


def _save(controlnet: Any, path: Path) -> None:
    with atomic_output_dir(path) as tmp:
        controlnet.save_pretrained(tmp, safe_serialization=True)


def _describe(batch: Any) -> list[str]:
    return [str(name) for name in batch["name"]]


def _train_step(
    harness: Any,
    base: BaseComponents,
    controlnet: Any,
    batch: Mapping[str, Any],
    objects: tuple[torch.optim.Optimizer, Any],
    config: ControlNetTrainConfig,
) -> dict[str, float]:
    """One (micro-)batch: loss, backward, and on optimiser steps the clipped update and the schedule."""
    optimizer, schedule = objects
    generator = torch_generator(config.seed, "controlnet-step", harness.state.global_step)
    with harness.accumulate(controlnet):
        with harness.autocast():
            loss = controlnet_loss(base, controlnet, batch, config, generator)
        harness.check_finite({"loss": loss}, batch)
        harness.backward(loss)
        record = {"train/loss": float(loss.detach()), "train/lr": float(optimizer.param_groups[0]["lr"])}
        sync = bool(harness.accelerator.sync_gradients)
        params = [p for p in controlnet.parameters() if p.requires_grad]
        if sync:
            record["train/grad_norm"] = _grad_norm(params, harness.scaler)
        applied = harness.step(optimizer, params, batch)
        if applied and sync:
            schedule.step()
    return record


def _harness(
    config: ControlNetTrainConfig,
    base: BaseComponents,
    checkpoint_dir: str | os.PathLike[str],
    *,
    log: LogFn | None,
    tracking_id: str | None,
    progress: bool,
) -> Any:
    """The training harness of the run (its ``run_config``: the config and the base's name)."""
    from fp_core.training import HarnessConfig, TrainingHarness

    return TrainingHarness(
        HarnessConfig(
            checkpoint_dir=checkpoint_dir,
            mixed_precision=config.mixed_precision,
            cpu=config.cpu,
            checkpoint_every=config.checkpoint_every,
            keep=config.keep_checkpoints,
            max_grad_norm=config.max_grad_norm,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            progress=progress,
        ),
        run_config={**config.to_dict(), "base": base.name},
        log=log,
        tracking_id=tracking_id,
        describe_batch=_describe,
    )


def _prepare_models(
    base: BaseComponents, controlnet: Any | None, config: ControlNetTrainConfig, device: torch.device
) -> Any:
    """Freeze the base and move it to ``device``; the ControlNet (given or from the base), checked, fp32,
    on ``device``, in train mode."""
    controlnet = controlnet if controlnet is not None else controlnet_from_base(base, config)
    check_controlnet(controlnet, base)
    base.freeze()
    for module in (base.vae, base.unet, base.text_encoder, controlnet):
        module.to(device)
    if controlnet.dtype != torch.float32:
        controlnet.to(dtype=torch.float32)
    return controlnet.train()


def train_controlnet(
    config: ControlNetTrainConfig,
    base: BaseComponents,
    dataset: Dataset,
    *,
    output_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    controlnet: Any | None = None,
    log: LogFn | None = None,
    on_samples: SamplesFn | None = None,
    sample_every: int = 0,
    validation_conditions: torch.Tensor | np.ndarray | None = None,
    validation_prompts: str | Sequence[str] | None = None,
    progress: bool = True,
    tracking_id: str | None = None,
) -> Any:
    """Fine-tune a ControlNet on ``dataset`` over the frozen ``base`` and return it (unwrapped, fp32).

    Args:
        config: the run's settings (``config.epochs`` epochs).
        base: the frozen networks (moved to the training device and frozen in place).
        dataset: items as :class:`~fp_diffusion.controlnet.data.ConditionedFaces` gives (its ``set_epoch``
            is called each epoch when present).
        output_dir: receives ``epoch-<e>/`` snapshots and ``final/`` (``save_pretrained`` layout).
        checkpoint_dir: the harness's checkpoints (each with ``controlnet/``); the newest is resumed from.
        controlnet: a ControlNet to fine-tune (e.g. :func:`~fp_diffusion.controlnet.pipeline.load_controlnet`
            of the seg ControlNet); default :func:`controlnet_from_base`. Its conditioning embedding must
            match the VAE factor (:func:`check_controlnet`).
        log: ``log(metrics, step)``, main process only.
        on_samples: ``on_samples(grid uint8 [2R, N*R, 3], step)`` (:func:`validation_grid`) every
            ``sample_every`` batches (0: only at the end).
        validation_conditions: label maps ``[N, H, W]`` for the grid (default: the first 4 items' maps).
        validation_prompts: their prompts (one string for all; default: the items' captions, or ``""``).
        progress: tqdm bars. tracking_id: stored in the checkpoints.
    """
    resolution = config.resolution or base.resolution
    _check_setup(base, config, resolution)
    if getattr(dataset, "resolution", resolution) != resolution:
        raise ControlNetConfigError(
            f"the dataset yields {dataset.resolution}px items but the run trains at {resolution}px "
            f"(config.resolution or the base's resolution); build the dataset with resolution={resolution}"
        )
    harness = _harness(config, base, checkpoint_dir, log=log, tracking_id=tracking_id, progress=progress)
    controlnet = _prepare_models(base, controlnet, config, harness.device)
    optimizer, schedule, loader = _objects(config, controlnet, dataset)
    controlnet, optimizer, loader = harness.prepare(controlnet, optimizer, loader)
    harness.register(schedule)
    output = Path(output_dir)

    def save_with_checkpoint(models: Any, weights: Any, directory: str) -> None:
        if harness.is_main_process:
            harness.unwrap(controlnet).save_pretrained(
                Path(directory) / "controlnet", safe_serialization=True
            )

    harness.accelerator.register_save_state_pre_hook(save_with_checkpoint)
    harness.resume()
    validation = _validation_set(dataset, validation_conditions, validation_prompts) if on_samples else None

    sampled_at = [-1]

    def emit_samples(step: int) -> None:
        if (
            validation is not None
            and on_samples is not None
            and harness.is_main_process
            and step != sampled_at[0]
        ):
            sampled_at[0] = step
            on_samples(validation_grid(base, harness.unwrap(controlnet), *validation, config), step)

    for epoch in harness.epochs(config.epochs):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        controlnet.train()
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            harness.log_step(_train_step(harness, base, controlnet, batch, (optimizer, schedule), config))
            done = harness.state.global_step + 1  # the harness counts this batch once the loop moves on
            if sample_every and done % sample_every == 0:
                emit_samples(done)
        if epoch + 1 in config.snapshot_epochs and harness.is_main_process:
            _save(harness.unwrap(controlnet), output / f"epoch-{epoch + 1}")
        harness.wait()
    emit_samples(harness.state.global_step)
    result = harness.unwrap(controlnet)
    if harness.is_main_process:
        _save(result, output / "final")
    harness.wait()
    return result
