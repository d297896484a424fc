"""Training the small diffusion base: the VAE first, then the UNet and the text encoder jointly.

Both runs are on :class:`fp_core.training.TrainingHarness` (checkpoints, exact resume, non-finite checks,
main-process logging) and follow the standard recipes:

* :func:`train_vae`: ``AutoencoderKL`` on images [N, 3, R, R] in [-1, 1]; loss = mean |x - x_hat| +
  mean (x - x_hat)^2 + ``vae_kl_weight`` x KL (summed over the latent and divided by the pixel count, LDM's
  normalisation), AdamW. At the end the VAE's ``scaling_factor`` is set to 1 / std of the sampled latents of
  the training set, as Stable Diffusion did (its 0.18215), so the UNet sees latents of unit variance.
* :func:`train_denoiser`: diffusers' ``train_text_to_image`` recipe. The frozen VAE encodes every image once
  (and its mirror image when ``flip``); each step samples ``latents = (mean + std * eps) * scaling_factor``,
  noise, timesteps uniform in [0, T), ``noisy = scheduler.add_noise(latents, noise, t)``; the target is the
  noise (``epsilon``) or ``scheduler.get_velocity`` (``v_prediction``); MSE in fp32; AdamW over the UNet and
  the text encoder, warm-up + ``lr_schedule``, gradient accumulation and clipping; captions are replaced by
  ``""`` with probability ``caption_dropout`` (for classifier-free guidance).
  The ``CLIPTextModel`` is trained from scratch together with the UNet, as LDM trained its text transformer
  jointly (Rombach et al. 2022, the LAION text-to-image model); Stable Diffusion instead froze a pretrained
  CLIP ViT-L/14, which offline we do not have.

Every random draw of a step (flips, posterior samples, noise, timesteps, dropped captions) comes from a
generator seeded by ``(config.seed, run, global step)`` and the data order from ``(config.seed, epoch)``,
so a run resumed from a checkpoint ends with the same weights as an uninterrupted one.
Logged per step: ``train/loss``, ``train/lr`` (and ``train/l1``, ``train/kl`` for the VAE); at the end of
the VAE run ``vae/latent_std`` and ``vae/scaling_factor``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from fp_core.logging import LogFn
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed, torch_generator
from fp_diffusion.base.components import BaseComponents
from fp_diffusion.base.config import (
    ConfigError,
    DiffusionBaseConfig,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)
from fp_diffusion.base.sampling import generate, sample_grid, tokenize

__all__ = [
    "SamplesFn",
    "encode_latent_stats",
    "measure_scaling_factor",
    "train_denoiser",
    "train_vae",
]

SamplesFn = Callable[[np.ndarray, int], None]
_VAE_KEYS = (
    "resolution",
    "seed",
    "flip",
    "max_grad_norm",
    "mixed_precision",
    "max_steps_per_epoch",
    "dataset_repeats",
)


def _index_loader(count: int, batch_size: int, seed: int, tag: str, repeats: int) -> DataLoader:
    if count < batch_size:
        raise ConfigError(f"the training set has {count} images, fewer than the batch size {batch_size}")
    sampler = EpochPermutation(count, seed, tag, repeats=repeats)
    return DataLoader(
        TensorDataset(torch.arange(count)), batch_size=batch_size, sampler=sampler, drop_last=True
    )


def _harness(config: DiffusionBaseConfig, checkpoint_dir: Any, run_config: dict, **kwargs: Any) -> Any:
    from fp_core.training import HarnessConfig, TrainingHarness

    settings = HarnessConfig.from_settings(config, checkpoint_dir, progress=kwargs.pop("progress"))
    settings = dataclasses.replace(settings, gradient_accumulation_steps=kwargs.pop("accumulation", 1))
    describe = lambda batch: [f"training item {int(i)}" for i in batch[0]]  # noqa: E731
    return TrainingHarness(settings, run_config=run_config, describe_batch=describe, **kwargs)


def _check_images(images: torch.Tensor, resolution: int) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [N, 3, {resolution}, {resolution}], got {shape}")
    if tuple(images.shape[-2:]) != (resolution, resolution):
        raise ValueError(f"images are {tuple(images.shape[-2:])}, the config's resolution is {resolution}")
    if images.numel() and (images.min() < -1.001 or images.max() > 1.001):
        raise ValueError(
            f"images must be in [-1, 1], got [{float(images.min()):.3f}, {float(images.max()):.3f}]"
        )


def _flip(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(-1), images)


def _vae_step(harness: Any, vae: Any, optimizer: Any, images: torch.Tensor, batch: Any, config: Any) -> dict:
    generator = torch_generator(config.seed, "vae-step", harness.state.global_step)
    x = images[batch[0]]
    if config.flip:
        x = _flip(x, torch.rand(len(x), generator=generator) < 0.5)
    x = x.to(harness.device)
    with harness.autocast():
        posterior = vae.encode(x).latent_dist
        eps = torch.randn(posterior.mean.shape, generator=generator).to(harness.device)
        recon = vae.decode(posterior.mean + posterior.std * eps).sample
    recon = recon.float()
    l1, mse = (recon - x).abs().mean(), ((recon - x) ** 2).mean()
    kl = posterior.kl().float().mean() / x[0].numel()
    loss = l1 + mse + config.vae_kl_weight * kl
    harness.check_finite({"loss": loss}, batch)
    harness.backward(loss)
    harness.step(optimizer, vae.parameters(), batch)
    lr = optimizer.param_groups[0]["lr"]
    return {
        "train/loss": float(loss.detach()),
        "train/l1": float(l1.detach()),
        "train/kl": float(kl.detach()),
        "train/lr": lr,
    }


@torch.no_grad()
def encode_latent_stats(
    vae: Any, images: torch.Tensor, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior ``(mean, std)``, each [N, C, R/f, R/f] on the CPU, of images [N, 3, R, R] in [-1, 1]."""
    device = next(vae.parameters()).device
    dtype = next(vae.parameters()).dtype
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        posterior = vae.encode(images[start : start + batch_size].to(device, dtype)).latent_dist
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
    return torch.cat(means), torch.cat(stds)


def measure_scaling_factor(vae: Any, images: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """``(latent std, 1 / std)`` of latents sampled from the posteriors of ``images`` (SD's recipe)."""
    mean, std = encode_latent_stats(vae, images)
    generator = torch_generator(seed, "scaling-factor")
    latents = mean + std * torch.randn(mean.shape, generator=generator)
    measured = float(latents.std())
    if not measured > 0:
        raise ValueError(f"the latents of the training set have std {measured}; the VAE has collapsed")
    return measured, 1.0 / measured


def train_vae(
    config: DiffusionBaseConfig,
    images: torch.Tensor,
    *,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None = None,
    progress: bool = True,
    tracking_id: str | None = None,
) -> Any:
    """Train an ``AutoencoderKL`` on ``images`` [N, 3, R, R] in [-1, 1] for ``config.vae_epochs`` epochs and
    return it (unwrapped, eval mode) with ``scaling_factor`` set from the training set's latent std."""
    _check_images(images, config.resolution)
    run_config = {k: v for k, v in config.to_dict().items() if k.startswith("vae_") or k in _VAE_KEYS}
    harness = _harness(
        config,
        checkpoint_dir,
        {"run": "vae", **run_config},
        log=log,
        tracking_id=tracking_id,
        progress=progress,
    )
    torch.manual_seed(derive_seed(config.seed, "vae-init"))
    vae = build_vae(config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=config.weight_decay)
    loader = _index_loader(
        len(images), config.vae_batch_size, config.seed, "vae-order", config.dataset_repeats
    )
    vae, optimizer, loader = harness.prepare(vae, optimizer, loader)
    harness.resume()
    for epoch in harness.epochs(config.vae_epochs):
        vae.train()
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            harness.log_step(_vae_step(harness, vae, optimizer, images, batch, config))
    harness.wait()
    vae = harness.unwrap(vae).eval()
    latent_std, factor = measure_scaling_factor(vae, images, config.seed)
    vae.register_to_config(scaling_factor=factor)
    harness.log({"vae/latent_std": latent_std, "vae/scaling_factor": factor})
    return vae


def _dataset_tensors(dataset: Dataset, config: DiffusionBaseConfig) -> tuple[torch.Tensor, list[str]]:
    images, captions = [], []
    for index in range(len(dataset)):  # type: ignore[arg-type]
        item = dataset[index]
        if not isinstance(item[1], str):
            raise TypeError(
                f"dataset item {index}: expected (image, caption str, ...), got {type(item[1]).__name__}"
            )
        images.append(torch.as_tensor(item[0]).float())
        captions.append(item[1])
    stacked = torch.stack(images) if images else torch.zeros(0, 3, config.resolution, config.resolution)
    _check_images(stacked, config.resolution)
    return stacked, captions


class _Latents:
    """The frozen VAE's posteriors of the training set (and of its mirror images), ids of the captions."""

    def __init__(
        self, vae: Any, images: torch.Tensor, ids: torch.Tensor, empty: torch.Tensor, flip: bool
    ) -> None:
        self.mean, self.std = encode_latent_stats(vae, images)
        if flip:
            self.flip_mean, self.flip_std = encode_latent_stats(vae, images.flip(-1))
        self.ids, self.empty, self.flip = ids, empty, flip
        self.scale = float(vae.config.scaling_factor)

    def draw(
        self, index: torch.Tensor, generator: torch.Generator, dropout: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scaled latents [B, C, h, w], token ids [B, L])`` of the items ``index`` for one step."""
        mean, std = self.mean[index], self.std[index]
        if self.flip:
            mask = (torch.rand(len(index), generator=generator) < 0.5).view(-1, 1, 1, 1)
            mean = torch.where(mask, self.flip_mean[index], mean)
            std = torch.where(mask, self.flip_std[index], std)
        latents = (mean + std * torch.randn(mean.shape, generator=generator)) * self.scale
        drop = torch.rand(len(index), generator=generator) < dropout
        ids = torch.where(drop.view(-1, 1), self.empty.view(1, -1), self.ids[index])
        return latents, ids


def _denoise_step(
    harness: Any,
    models: tuple,
    optimizer: Any,
    lr_scheduler: Any,
    data: _Latents,
    batch: Any,
    config: Any,
    noise_scheduler: Any,
) -> dict:
    unet, text_encoder = models
    generator = torch_generator(config.seed, "unet-step", harness.state.global_step)
    latents, ids = data.draw(batch[0], generator, config.caption_dropout)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (len(latents),), generator=generator
    )
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    target = (
        noise
        if config.prediction_type == "epsilon"
        else noise_scheduler.get_velocity(latents, noise, timesteps)
    )
    device = harness.device
    with harness.accumulate(unet, text_encoder):
        with harness.autocast():
            states = text_encoder(ids.to(device))[0]
            prediction = unet(noisy.to(device), timesteps.to(device), states).sample
        loss = F.mse_loss(prediction.float(), target.to(device).float())
        harness.check_finite({"loss": loss}, batch)
        harness.backward(loss)
        params = [p for m in (unet, text_encoder) for p in m.parameters()]
        harness.step(optimizer, params, batch, scheduler=lr_scheduler)
    return {"train/loss": float(loss.detach()), "train/lr": optimizer.param_groups[0]["lr"]}


def _denoise_objects(config: DiffusionBaseConfig, steps_per_epoch: int) -> tuple[Any, ...]:
    from diffusers.optimization import get_scheduler

    torch.manual_seed(derive_seed(config.seed, "unet-init"))
    unet, text_encoder = build_unet(config), build_text_encoder(config)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.unet_lr, weight_decay=config.weight_decay)
    total = config.unet_epochs * max(1, steps_per_epoch // config.gradient_accumulation_steps)
    lr_scheduler = get_scheduler(
        config.lr_schedule, optimizer, num_warmup_steps=config.unet_warmup_steps, num_training_steps=total
    )
    return unet, text_encoder, optimizer, lr_scheduler


def train_denoiser(
    config: DiffusionBaseConfig,
    vae: Any,
    dataset: Dataset,
    tokenizer: Any,
    *,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None = None,
    on_samples: SamplesFn | None = None,
    sample_every: int = 0,
    progress: bool = True,
    tracking_id: str | None = None,
) -> tuple[Any, Any]:
    """Train a UNet and a text encoder on ``dataset`` items ``(image [3, R, R] in [-1, 1], caption, ...)``
    with the frozen ``vae`` (its ``scaling_factor`` set, as :func:`train_vae` returns it) and ``tokenizer``.

    ``on_samples(grid uint8 [H, W, 3], global step)`` gets samples for the first ``num_samples`` captions
    every ``sample_every`` steps (0: only at the end). Returns ``(unet, text_encoder)``, unwrapped, eval mode.
    """
    images, captions = _dataset_tensors(dataset, config)
    if tokenizer.model_max_length != config.text_max_length:
        raise ConfigError(
            f"tokenizer.model_max_length {tokenizer.model_max_length} != config.text_max_length {config.text_max_length}"
        )
    vae = vae.eval().requires_grad_(False)
    data = _Latents(vae, images, tokenize(tokenizer, captions), tokenize(tokenizer, [""])[0], config.flip)
    run_config = {"run": "denoiser", **config.to_dict(), "scaling_factor": data.scale}
    harness = _harness(
        config,
        checkpoint_dir,
        run_config,
        log=log,
        tracking_id=tracking_id,
        progress=progress,
        accumulation=config.gradient_accumulation_steps,
    )
    loader = _index_loader(
        len(images), config.unet_batch_size, config.seed, "unet-order", config.dataset_repeats
    )
    steps = min(len(loader), config.max_steps_per_epoch or len(loader))
    unet, text_encoder, optimizer, lr_scheduler = _denoise_objects(config, steps)
    noise_scheduler = build_scheduler(config)
    unet, text_encoder, optimizer, loader, lr_scheduler = harness.prepare(
        unet, text_encoder, optimizer, loader, lr_scheduler
    )
    vae.to(harness.device)
    harness.resume()
    prompts = captions[: config.num_samples]

    emitted: list[int] = []

    def emit_samples(step: int) -> None:
        if on_samples is None or not harness.is_main_process or step in emitted:
            return
        emitted.append(step)
        models = harness.unwrap(unet).eval(), harness.unwrap(text_encoder).eval()
        parts = BaseComponents(
            vae, models[0], models[1], tokenizer, noise_scheduler, "training", config.resolution
        )
        seeds = [derive_seed(config.seed, "samples", i) for i in range(len(prompts))]
        drawn = generate(
            parts, prompts, seeds=seeds, steps=config.sample_steps, guidance_scale=config.sample_guidance
        )
        on_samples(sample_grid(drawn, nrow=min(8, len(prompts))), step)

    for epoch in harness.epochs(config.unet_epochs):
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            unet.train()
            text_encoder.train()
            harness.log_step(
                _denoise_step(
                    harness,
                    (unet, text_encoder),
                    optimizer,
                    lr_scheduler,
                    data,
                    batch,
                    config,
                    noise_scheduler,
                )
            )
            done = harness.state.global_step + 1
            if sample_every and done % sample_every == 0:
                emit_samples(done)
    emit_samples(harness.state.global_step)
    harness.wait()
    return harness.unwrap(unet).eval(), harness.unwrap(text_encoder).eval()
