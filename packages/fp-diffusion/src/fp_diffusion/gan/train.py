"""Pix2PixHD training on :class:`fp_core.training.TrainingHarness` (two optimisers: G and D).

The loop reads like upstream's::

    config = Pix2PixHDConfig.toy()
    data = PairedMaps(export, "train", resolution=config.resolution, flip=config.flip, seed=config.seed)
    generator = train_pix2pixhd(config, data, checkpoint_dir="ckpt/", log=log)
    save_generator(generator, config, "generator/")

Each step: ``fake = G(x)`` for the encoded maps ``x``; the discriminator scores ``cat(x, fake.detach())``,
``cat(x, real)`` and ``cat(x, fake)``; the generator's loss (LSGAN + feature matching + VGG + optional L1,
:class:`~fp_diffusion.gan.losses.Pix2PixHDLosses`) is back-propagated and G stepped, then D's gradients are
zeroed and D's LSGAN loss back-propagated and D stepped (D's parameters do not change in between, so this
equals upstream's order). Both use Adam (``lr``, ``(beta1, beta2)``) and a ``LambdaLR`` that keeps the rate
for ``niter`` epochs and decays it linearly to 0 over ``niter_decay`` (stepped at each epoch end).

Checkpoints (both networks, both optimisers, both schedulers, RNG) go through the harness; a run started
again with the same config resumes and ends with the same weights as an uninterrupted one, because the
initialisation, the data order and the flips all derive from ``config.seed`` (:mod:`fp_core.seeds`).
Logged every step (main process): ``train/loss_G_GAN``, ``train/loss_G_FM``, ``train/loss_G_VGG``,
``train/loss_G_L1``, ``train/loss_D_real``, ``train/loss_D_fake``, ``train/loss`` (G's total), ``train/l1``
(unweighted mean |fake - real| in [-1, 1] units) and ``train/lr``; per epoch the means as ``epoch/...``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fp_core.logging import LogFn
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed
from fp_diffusion.gan.config import ConfigError, Pix2PixHDConfig, lr_factor
from fp_diffusion.gan.encoding import encode_input
from fp_diffusion.gan.losses import Pix2PixHDLosses
from fp_diffusion.gan.networks import Pix2PixHDGenerator, build_discriminator, build_generator
from fp_diffusion.gan.sampling import generate, sample_grid

__all__ = ["SamplesFn", "gan_step", "train_pix2pixhd"]

_LOG = logging.getLogger(__name__)
SamplesFn = Callable[[np.ndarray, int], None]
LOSS_NAMES = ("loss_G_GAN", "loss_G_FM", "loss_G_VGG", "loss_G_L1", "loss_D_real", "loss_D_fake")


def _describe(batch: Any) -> list[str]:
    return [str(name) for name in batch[2]]


def gan_step(
    harness: Any,
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    losses: Pix2PixHDLosses,
    batch: tuple[torch.Tensor, torch.Tensor, list[str]],
    config: Pix2PixHDConfig,
) -> dict[str, float]:
    """One G step and one D step on ``batch = (labels [B, H, W], images [B, 3, H, W] in [-1, 1], names)``;
    returns what to log."""
    labels, real, names = batch
    config.check_size(int(labels.shape[-2]), int(labels.shape[-1]))
    where = f"batch {names[0]}" + (f" (+{len(names) - 1} more)" if len(names) > 1 else "")
    x = encode_input(labels, config.label_nc, edge_channel=config.edge_channel, where=where)
    with harness.autocast():
        fake = generator(x)
        pred_fake_d = discriminator(torch.cat([x, fake.detach()], dim=1))
        pred_real = discriminator(torch.cat([x, real], dim=1))
        pred_fake_g = discriminator(torch.cat([x, fake], dim=1))
        g_terms = losses.generator(pred_fake_g, pred_real, fake, real)
        d_terms = losses.discriminator(pred_fake_d, pred_real)
    harness.check_finite({"loss_G": g_terms["loss_G"], "loss_D": d_terms["loss_D"]}, batch)
    optimizer_g, optimizer_d = optimizers
    harness.backward(g_terms["loss_G"])
    harness.step(optimizer_g, generator.parameters(), batch)
    optimizer_d.zero_grad(set_to_none=True)  # drop what G's loss put into D's gradients
    harness.backward(d_terms["loss_D"])
    harness.step(optimizer_d, discriminator.parameters(), batch)
    record = {f"train/{name}": float({**g_terms, **d_terms}[name].detach()) for name in LOSS_NAMES}
    record["train/loss"] = float(g_terms["loss_G"].detach())
    record["train/l1"] = float(g_terms["l1"])
    record["train/lr"] = float(optimizer_g.param_groups[0]["lr"])
    return record


def _objects(config: Pix2PixHDConfig, dataset: Dataset) -> tuple[Any, ...]:
    """Seeded G and D, their Adam optimisers and LambdaLR schedulers, and the loader."""
    torch.manual_seed(derive_seed(config.seed, "pix2pixhd-init"))
    generator, discriminator = build_generator(config), build_discriminator(config)
    betas = (config.beta1, config.beta2)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas)
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas)

    def factor(epoch: int) -> float:
        return lr_factor(epoch, config.niter, config.niter_decay)

    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (optimizer_g, optimizer_d)]
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=EpochPermutation(len(dataset), config.seed, "pix2pixhd-order"),
        drop_last=True,
        num_workers=config.num_workers,
    )
    if len(loader) == 0:
        raise ConfigError(f"the dataset has {len(dataset)} pairs, fewer than batch_size={config.batch_size}")
    return generator, discriminator, optimizer_g, optimizer_d, schedulers, loader


def _fixed_samples(dataset: Dataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(labels [N, H, W], real images [N, 3, H, W] in [0, 1])`` of the first ``count`` pairs."""
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    return torch.stack([item[0] for item in items]), (torch.stack([item[1] for item in items]) + 1) / 2


def _freeze_global(generator: Pix2PixHDGenerator, config: Pix2PixHDConfig, epoch: int) -> None:
    """With the local enhancer, train only its local part for the first ``niter_fix_global`` epochs."""
    if config.generator == "local":
        generator.net.global_model.requires_grad_(epoch >= config.niter_fix_global)


def train_pix2pixhd(
    config: Pix2PixHDConfig,
    dataset: Dataset,
    *,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None = None,
    on_samples: SamplesFn | None = None,
    sample_every: int = 0,
    tracking_id: str | None = None,
    progress: bool = True,
    losses: Pix2PixHDLosses | None = None,
) -> Pix2PixHDGenerator:
    """Train a Pix2PixHD generator on ``dataset`` and return it (unwrapped, on the training device).

    Args:
        config: the run's settings; it runs ``config.epochs`` epochs.
        dataset: items ``(labels [H, W] int64, image [3, H, W] in [-1, 1], name)`` (e.g.
            :class:`fp_diffusion.data.PairedMaps`; its ``set_epoch`` and ``palette`` are used when present).
        checkpoint_dir: the harness's checkpoints; the newest one is resumed from.
        log: ``log(metrics, step)``, main process only.
        on_samples: ``on_samples(grid uint8 [3H, N*W, 3], global step)`` with the first ``num_samples`` pairs
            (label colours | generated | real), every ``sample_every`` steps (0: only at the end).
        tracking_id: stored in the checkpoints (a resumed run keeps its own).
        progress: tqdm bars.
        losses: the objectives (default ``Pix2PixHDLosses(config)``, which finds the VGG weights or turns
            the term off with a note).

    The returned generator carries ``training_notes`` (e.g. that the VGG term was off).
    """
    from fp_core.training import HarnessConfig, TrainingHarness

    harness = TrainingHarness(
        HarnessConfig.from_settings(config, checkpoint_dir, progress=progress),
        run_config=config.to_dict(),
        log=log,
        tracking_id=tracking_id,
        describe_batch=_describe,
    )
    generator, discriminator, optimizer_g, optimizer_d, schedulers, loader = _objects(config, dataset)
    losses = (losses or Pix2PixHDLosses(config)).to(harness.device)
    generator, discriminator, optimizer_g, optimizer_d, loader = harness.prepare(
        generator, discriminator, optimizer_g, optimizer_d, loader
    )
    harness.register(*schedulers)
    harness.resume()
    harness.log({"train/vgg_enabled": float(losses.vgg_enabled)})
    samples = _fixed_samples(dataset, config.num_samples) if on_samples is not None else None
    palette = getattr(dataset, "palette", None)

    def emit_samples(step: int) -> None:
        if samples is not None and on_samples is not None and harness.is_main_process:
            images = generate(harness.unwrap(generator), samples[0], config.batch_size, device=harness.device)
            on_samples(sample_grid(samples[0], images, samples[1], palette), step)

    for epoch in harness.epochs(config.epochs):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        _freeze_global(harness.unwrap(generator), config, epoch)
        generator.train()
        discriminator.train()
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            record = gan_step(
                harness, generator, discriminator, (optimizer_g, optimizer_d), losses, batch, config
            )
            harness.log_step(record)
            done = harness.state.global_step + 1  # the harness counts this batch once the loop moves on
            if sample_every and done % sample_every == 0:
                emit_samples(done)
        for scheduler in schedulers:
            scheduler.step()
    emit_samples(harness.state.global_step)
    harness.wait()
    result = harness.unwrap(generator)
    result.training_notes = list(losses.notes)
    return result
