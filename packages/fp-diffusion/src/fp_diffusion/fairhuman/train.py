"""FairHuman fine-tuning on :class:`fp_core.training.TrainingHarness`: LoRA on the UNet, or a pose ControlNet.

Each micro-batch of :class:`~fp_diffusion.fairhuman.HumanScenes` items (:func:`collate_scenes`):

1. captions become ``""`` with probability ``caption_dropout``; for the ControlNet, the pose condition is
   zeroed with probability ``condition_dropout`` (paper 0.3);
2. ``latents = vae.encode(pixels).latent_dist.sample() * scaling_factor`` (frozen VAE), Gaussian noise,
   uniform timesteps, ``noise_scheduler.add_noise``; prompt states from the frozen text encoder;
3. the prediction: the UNet with its LoRA adapters, or the ControlNet's residuals into the frozen UNet;
4. the face / hand masks to the latent grid (:func:`~fp_diffusion.fairhuman.masks.mask_to_latent`, the any
   rule) and the three losses (:func:`~fp_diffusion.fairhuman.objectives.fairhuman_losses`) against the noise
   (or the velocity for a ``v_prediction`` base);
5. ONE :class:`~fp_diffusion.fairhuman.step.FairHumanStep` call on the trained parameters (a materialised
   list) in place of ``harness.backward``: it divides by the accumulation steps itself and, under fp16, takes
   the losses scaled by the harness's GradScaler (``grad_scale=harness.scaler``) so the scaler's unscale /
   skip logic in ``harness.step`` applies unchanged. ``mpd_output`` gets the prediction tensor.

``harness.step`` then clips, checks and applies AdamW (only on the accumulation boundary, as accelerate's
optimizer wrapper does). The weighting is registered with the harness (its ``state_dict``: DWA's history and
epoch sums, RLW's generator, UW's log-variances), so a resumed run continues exactly; ``weighting.end_epoch()``
runs at each epoch end (DWA), before the harness's epoch checkpoint. Every random draw of a step comes from
``torch_generator(seed, "fairhuman-step", global step)`` and the order from ``EpochPermutation``, so a resumed
run ends with the weights of an uninterrupted one (tested for ``mpd`` and ``dwa``).

Logged per batch: ``train/loss`` (= the global loss), ``train/loss_global|face|hand``, ``train/lr``, the
step's ``fairhuman/w_*`` weights and diagnostics, and ``train/grad_norm`` on optimiser steps. Outputs: LoRA
with :func:`~fp_diffusion.fairhuman.lora.save_lora` (diffusers' LoRA file + manifest), the ControlNet with
``save_pretrained``, into ``output_dir/final`` (and ``epoch-<e>/`` for ``snapshot_epochs``); each checkpoint
also holds ``lora/`` or ``controlnet/``.

Single process only: ``FairHumanStep`` writes ``.grad`` itself, past DDP's gradient hooks, so with several
processes the gradients would not be averaged; the trainer refuses that case.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fp_core.atomic import atomic_output_dir
from fp_core.logging import LogFn
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed, torch_generator
from fp_diffusion.base.components import BaseComponents
from fp_diffusion.controlnet.config import ControlNetTrainConfig
from fp_diffusion.controlnet.pipeline import vae_factor
from fp_diffusion.controlnet.train import check_controlnet, controlnet_from_base
from fp_diffusion.fairhuman.evaluate import generate_scenes
from fp_diffusion.fairhuman.lora import LoraSettings, add_lora, lora_parameters, save_lora
from fp_diffusion.fairhuman.masks import mask_to_latent
from fp_diffusion.fairhuman.objectives import OBJECTIVES, fairhuman_losses
from fp_diffusion.fairhuman.step import FairHumanStep
from fp_diffusion.fairhuman.train_config import FairHumanConfigError, FairHumanTrainConfig
from fp_diffusion.fairhuman.weighting import FairHumanWeighting, build_fairhuman_weighting
from fp_gradagg import scale_losses

__all__ = [
    "FairHumanTrainConfig",
    "SamplesFn",
    "collate_scenes",
    "fairhuman_forward",
    "lora_settings",
    "train_fairhuman",
    "trained_module",
]

SamplesFn = Callable[[np.ndarray, int], None]
PREDICTION_TYPES = ("epsilon", "v_prediction")


def lora_settings(config: FairHumanTrainConfig) -> LoraSettings:
    """The adapters' :class:`~fp_diffusion.fairhuman.lora.LoraSettings` of ``config``."""
    return LoraSettings(rank=config.lora_rank, alpha=config.lora_alpha, dropout=float(config.lora_dropout))


def collate_scenes(items: Sequence[Mapping[str, Any]], condition: str | None = None) -> dict[str, Any]:
    """HumanScenes items -> ``pixel_values [B, 3, S, S]``, ``face_mask`` / ``hand_mask [B, S, S]``,
    ``condition [B, 3, S, S]`` (when ``condition`` is named), ``caption`` and ``file_name`` lists."""
    batch: dict[str, Any] = {
        key: torch.stack([item[key] for item in items]) for key in ("pixel_values", "face_mask", "hand_mask")
    }
    if condition is not None:
        missing = [str(item.get("file_name", "?")) for item in items if condition not in item["conditions"]]
        if missing:
            raise FairHumanConfigError(f"items {missing[:4]} have no condition {condition!r}")
        batch["condition"] = torch.stack([item["conditions"][condition] for item in items])
    batch["caption"] = [str(item["caption"]) for item in items]
    batch["file_name"] = [str(item.get("file_name", "")) for item in items]
    return batch


def _encode_prompts(
    base: BaseComponents, captions: Sequence[str], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(states [B, T, D], pooled [B, D2] or None)``: :meth:`BaseComponents.encode_prompt` (SD 1.x: the
    text encoder's last hidden states and None; SDXL: both encoders' penultimate states and the pooled one)."""
    return base.encode_prompt(list(captions), device)


def _predict(
    base: BaseComponents, module: Any, noisy: torch.Tensor, steps: torch.Tensor, states: torch.Tensor,
    condition: torch.Tensor | None, added: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:  # fmt: skip
    """The denoiser's output ``[B, 4, h, w]``: the adapted UNet, or the ControlNet's residuals into the UNet.

    ``added``: SDXL's ``added_cond_kwargs`` (``text_embeds``, ``time_ids``), given to the UNet and the
    ControlNet alike; None for SD 1.x."""
    extra: dict[str, Any] = {} if added is None else {"added_cond_kwargs": added}
    if condition is None:
        return module(noisy, steps, encoder_hidden_states=states, return_dict=False, **extra)[0]
    down, mid = module(
        noisy,
        steps,
        encoder_hidden_states=states,
        controlnet_cond=condition.to(noisy.dtype),
        return_dict=False,
        **extra,
    )
    return base.unet(
        noisy,
        steps,
        encoder_hidden_states=states,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
        return_dict=False,
        **extra,
    )[0]


def fairhuman_forward(
    base: BaseComponents,
    module: Any,
    batch: Mapping[str, Any],
    config: FairHumanTrainConfig,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({"global", "face", "hand"} losses, prediction [B, 4, h, w])`` of one batch (module docstring, 1-4).

    Every random draw comes from ``generator`` (CPU) in a fixed order; call it inside the autocast you want.
    ``module`` is the UNet with adapters (``config.module == "lora"``) or the ControlNet.
    """
    pixels = batch["pixel_values"]
    device, count = pixels.device, int(pixels.shape[0])
    keep_caption = torch.rand(count, generator=generator) >= config.caption_dropout
    captions = [c if keep else "" for c, keep in zip(batch["caption"], keep_caption.tolist(), strict=True)]
    keep_condition = torch.rand(count, generator=generator) >= config.condition_dropout
    condition = None
    if config.module == "controlnet":
        condition = batch["condition"] * keep_condition.to(device).view(-1, 1, 1, 1)
    scheduler = base.noise_scheduler
    with torch.no_grad():
        latents = base.vae.encode(pixels).latent_dist.sample(generator=generator) * base.latent_scale
        states, pooled = _encode_prompts(base, captions, device)
        added = base.added_cond_kwargs(pooled, int(pixels.shape[-1]))
    noise = torch.randn(latents.shape, generator=generator).to(device=device, dtype=latents.dtype)
    steps = torch.randint(0, scheduler.config.num_train_timesteps, (count,), generator=generator).to(device)
    noisy = scheduler.add_noise(latents, noise, steps)
    prediction = _predict(base, module, noisy, steps, states, condition, added)
    if scheduler.config.prediction_type == "epsilon":
        target = noise
    else:
        target = scheduler.get_velocity(latents, noise, steps)
    hw = tuple(latents.shape[-2:])
    face = mask_to_latent(batch["face_mask"].to(device), hw).unsqueeze(1)
    hand = mask_to_latent(batch["hand_mask"].to(device), hw).unsqueeze(1)
    losses = fairhuman_losses(prediction.float(), target.float(), face, hand, normalise=config.normalise)  # type: ignore[arg-type]
    return losses, prediction


def _check_setup(base: BaseComponents, config: FairHumanTrainConfig, resolution: int) -> None:
    kind = base.noise_scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise FairHumanConfigError(
            f"the base's noise scheduler has prediction_type {kind!r}; FairHuman training supports "
            f"{PREDICTION_TYPES}"
        )
    multiple = vae_factor(base.vae) * 2 ** (len(base.unet.config.down_block_types) - 1)
    if resolution % multiple:
        raise FairHumanConfigError(
            f"resolution {resolution} is not a multiple of {multiple} (the VAE factor x the UNet's "
            f"2**(down blocks - 1)); resize the data (HumanScenes(size=...)) to a multiple of {multiple}"
        )


def _prepare_module(
    base: BaseComponents, config: FairHumanTrainConfig, controlnet: Any | None, device: torch.device
) -> Any:
    """Freeze the base, move it to ``device`` and return the module to train (fp32, train mode)."""
    base.freeze()
    for network in (base.vae, base.unet, base.text_encoder, base.text_encoder_2):
        if network is not None:
            network.to(device)
    if config.module == "lora":
        if getattr(base.unet, "peft_config", None):
            raise FairHumanConfigError(
                f"the base UNet already carries adapters {sorted(base.unet.peft_config)}: give a clean base"
            )
        torch.manual_seed(derive_seed(config.seed, "fairhuman-lora-init"))
        add_lora(base.unet, lora_settings(config))
        for p in lora_parameters(base.unet):
            p.data = p.data.float()
        return base.unet.train()
    if controlnet is None:
        settings = ControlNetTrainConfig(
            seed=config.seed, conditioning_embedding_out_channels=config.conditioning_embedding_out_channels
        )
        controlnet = controlnet_from_base(base, settings)
    check_controlnet(controlnet, base)
    controlnet.to(device)
    if controlnet.dtype != torch.float32:
        controlnet.to(dtype=torch.float32)
    return controlnet.train()


def trained_module(module: Any, config: FairHumanTrainConfig) -> list[torch.Tensor]:
    """The trained parameters as a list: the LoRA tensors, or every ControlNet parameter that trains."""
    if config.module == "lora":
        return list(lora_parameters(module))
    return [p for p in module.parameters() if p.requires_grad]


def _objects(
    config: FairHumanTrainConfig, params: list[torch.Tensor], weighting: FairHumanWeighting, dataset: Dataset
) -> tuple[Any, Any, Any]:
    """AdamW over the trained parameters (+ the weighting's own, UW), its schedule and the loader."""
    from diffusers.optimization import get_scheduler

    condition = config.condition if config.module == "controlnet" else None
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=EpochPermutation(len(dataset), config.seed, "fairhuman-order"),  # type: ignore[arg-type]
        drop_last=True,
        num_workers=config.num_workers,
        collate_fn=lambda items: collate_scenes(items, condition),
    )
    if len(loader) == 0:
        raise FairHumanConfigError(
            f"the dataset has {len(dataset)} items, fewer than batch_size={config.batch_size}"  # type: ignore[arg-type]
        )
    batches = len(loader) if not config.max_steps_per_epoch else min(len(loader), config.max_steps_per_epoch)
    total = config.epochs * math.ceil(batches / config.gradient_accumulation_steps)
    optimizer = torch.optim.AdamW(
        [*params, *weighting.parameters()],
        lr=config.lr,
        betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.adam_weight_decay,
        eps=config.adam_epsilon,
    )
    name = "constant_with_warmup" if config.lr_scheduler == "constant" else "cosine"
    schedule = get_scheduler(
        name, optimizer, num_warmup_steps=config.lr_warmup_steps, num_training_steps=total
    )
    return optimizer, schedule, loader


def _grad_norm(params: Sequence[torch.Tensor], scaler: Any | None) -> float:
    grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm = float(torch.linalg.vector_norm(torch.stack(grads)))
    return norm / float(scaler.get_scale()) if scaler is not None else norm


def _train_step(
    harness: Any,
    base: BaseComponents,
    module: Any,
    step: FairHumanStep,
    batch: Mapping[str, Any],
    objects: tuple[torch.optim.Optimizer, Any],
    config: FairHumanTrainConfig,
) -> dict[str, float]:
    """One micro-batch: the three losses, the FairHuman step into ``.grad``, and the harness's update."""
    optimizer, schedule = objects
    generator = torch_generator(config.seed, "fairhuman-step", harness.state.global_step)
    with harness.accumulate(module):
        with harness.autocast():
            losses, prediction = fairhuman_forward(base, module, batch, config, generator)
        harness.check_finite(losses, batch)
        scaler = harness.scaler
        given = scale_losses([losses[name] for name in OBJECTIVES], scaler)
        output = prediction if step.weighting.needs_output else None
        result = step(given, output=output, grad_scale=scaler)
        record = {f"train/loss_{name}": float(losses[name].detach()) for name in OBJECTIVES}
        record["train/loss"] = record["train/loss_global"]
        record["train/lr"] = float(optimizer.param_groups[0]["lr"])
        record.update(result.diagnostics)
        sync = bool(harness.accelerator.sync_gradients)
        if sync:
            record["train/grad_norm"] = _grad_norm(step.params, scaler)
        applied = harness.step(optimizer, step.params, batch)
        if applied and sync:
            schedule.step()
    return record


def _save(module: Any, config: FairHumanTrainConfig, path: Path, extra: Mapping[str, Any]) -> None:
    """The module in its layout: diffusers' LoRA file + manifest, or ControlNet ``save_pretrained``."""
    if config.module == "lora":
        save_lora(module, path, extra=dict(extra), settings=lora_settings(config))
        return
    with atomic_output_dir(path) as tmp:
        module.save_pretrained(tmp, safe_serialization=True)


def _validation(dataset: Dataset, config: FairHumanTrainConfig) -> tuple[list[str], torch.Tensor | None]:
    """The first ``validation_count`` items' captions and (ControlNet) conditions ``[N, 3, S, S]``."""
    items = [dataset[i] for i in range(min(config.validation_count, len(dataset)))]  # type: ignore[arg-type]
    prompts = [str(item["caption"]) for item in items]
    if config.module != "controlnet":
        return prompts, None
    return prompts, torch.stack([item["conditions"][config.condition] for item in items])


def _grid(images: torch.Tensor, conditions: torch.Tensor | None) -> np.ndarray:
    """uint8 ``[R, N*R, 3]`` (``[2R, N*R, 3]`` with the conditions above the images)."""
    rows = [images] if conditions is None else [conditions.to(images.dtype), images]
    rows = [torch.nn.functional.interpolate(r.float(), size=images.shape[-2:], mode="bilinear") for r in rows]
    strips = [torch.cat(list(r.clamp(0, 1)), dim=-1) for r in rows]
    return (torch.cat(strips, dim=-2).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _harness(
    config: FairHumanTrainConfig, base: BaseComponents, checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None, tracking_id: str | None, progress: bool,
) -> Any:  # fmt: skip
    from fp_core.training import HarnessConfig, TrainingHarness

    settings = HarnessConfig.from_settings(config, checkpoint_dir, progress=progress)
    settings.gradient_accumulation_steps = config.gradient_accumulation_steps
    harness = TrainingHarness(
        settings,
        run_config={**config.to_dict(), "base": base.name},
        log=log,
        tracking_id=tracking_id,
        describe_batch=lambda batch: [str(name) for name in batch["file_name"]],
    )
    if harness.num_processes > 1:
        raise FairHumanConfigError(
            "FairHuman training runs on one process: FairHumanStep writes .grad past DDP's hooks, so gradients "
            f"would not be averaged over the {harness.num_processes} processes"
        )
    return harness


def train_fairhuman(
    config: FairHumanTrainConfig,
    base: BaseComponents,
    dataset: Dataset,
    *,
    output_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    controlnet: Any | None = None,
    log: LogFn | None = None,
    on_samples: SamplesFn | None = None,
    sample_every: int = 0,
    progress: bool = True,
    tracking_id: str | None = None,
) -> Any:
    """Fine-tune with FairHuman's three weighted objectives and return the trained module (unwrapped).

    Args:
        config: the run's settings.
        base: the frozen networks (frozen and moved to the device in place; for LoRA its UNet gets the
            adapters and is what is returned).
        dataset: :class:`~fp_diffusion.fairhuman.HumanScenes` (or items of the same dicts) at the training
            resolution; ``set_epoch`` is called each epoch when present.
        output_dir: receives ``final/`` and ``epoch-<e>/`` (LoRA: :func:`save_lora`; ControlNet:
            ``save_pretrained``).
        checkpoint_dir: the harness's checkpoints; the newest is resumed from.
        controlnet: a ControlNet to start from (``module="controlnet"``; default from the base's UNet).
        log: ``log(metrics, step)``. on_samples: ``on_samples(grid uint8 [R or 2R, N*R, 3], step)`` every
            ``sample_every`` batches (0: only at the end). progress: tqdm bars. tracking_id: stored in
            checkpoints.
    """
    resolution = config.resolution or base.resolution
    _check_setup(base, config, resolution)
    harness = _harness(config, base, checkpoint_dir, log, tracking_id, progress)
    module = _prepare_module(base, config, controlnet, harness.device)
    weighting = build_fairhuman_weighting(config.weighting, **config.weighting_options)
    params = trained_module(module, config)
    optimizer, schedule, loader = _objects(config, params, weighting, dataset)
    module, optimizer, loader = harness.prepare(module, optimizer, loader)
    harness.register(schedule, weighting)
    step = FairHumanStep(
        weighting,
        params,
        accumulation_steps=config.gradient_accumulation_steps,
        path=config.gradient_path,  # type: ignore[arg-type]
    )
    extra = {"base": base.name, "weighting": config.weighting, "module": config.module}

    def save_with_checkpoint(models: Any, weights: Any, directory: str) -> None:
        if harness.is_main_process:
            _save(harness.unwrap(module), config, Path(directory) / config.module, extra)

    harness.accelerator.register_save_state_pre_hook(save_with_checkpoint)
    harness.resume()
    validation = _validation(dataset, config) if on_samples is not None else None
    sampled_at = [-1]

    def emit_samples(at: int) -> None:
        if validation is None or on_samples is None or not harness.is_main_process or at == sampled_at[0]:
            return
        sampled_at[0] = at
        seeds = [derive_seed(config.seed, "fairhuman-validation", i) for i in range(len(validation[0]))]
        images = generate_scenes(base, harness.unwrap(module), validation[0], validation[1], seeds=seeds,
                                 steps=config.validation_steps, guidance_scale=config.validation_guidance_scale)  # fmt: skip
        module.train()
        on_samples(_grid(images, validation[1]), at)

    output = Path(output_dir)
    for epoch in harness.epochs(config.epochs):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        module.train()
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            harness.log_step(_train_step(harness, base, module, step, batch, (optimizer, schedule), config))
            done = harness.state.global_step + 1
            if sample_every and done % sample_every == 0:
                emit_samples(done)
        weighting.end_epoch()
        if epoch + 1 in config.snapshot_epochs and harness.is_main_process:
            _save(harness.unwrap(module), config, output / f"epoch-{epoch + 1}", extra)
        harness.wait()
    emit_samples(harness.state.global_step)
    result = harness.unwrap(module)
    if harness.is_main_process:
        _save(result, config, output / "final", {**extra, "global_step": harness.state.global_step})
    harness.wait()
    return result
