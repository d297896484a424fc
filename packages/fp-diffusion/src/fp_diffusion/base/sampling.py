"""Text-to-image sampling from a :class:`BaseComponents` through diffusers' ``StableDiffusionPipeline``.

``generate`` builds the pipeline from the components (no safety checker), swaps in the sampling scheduler
built from the training scheduler's config, and gives every image its own ``torch.Generator`` seeded with its
seed, so image ``i`` depends only on ``seeds[i]`` (not on the batch it shares or the batch size).
Classifier-free guidance uses the empty prompt ``""`` as the unconditional branch, the caption the trainer
drops to (``caption_dropout``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fp_diffusion.base.components import BaseComponents

__all__ = ["SCHEDULERS", "encode_prompts", "generate", "make_pipeline", "sample_grid", "tokenize"]

SCHEDULERS = ("ddim", "ddpm", "dpm", "euler", "pndm")


def tokenize(tokenizer: Any, prompts: Sequence[str]) -> torch.Tensor:
    """Token ids [B, L] (L = ``tokenizer.model_max_length``), padded and truncated as SD's pipeline does."""
    return tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def encode_prompts(
    tokenizer: Any, text_encoder: Any, prompts: Sequence[str], device: torch.device | str
) -> torch.Tensor:
    """The text encoder's last hidden states [B, L, D] for ``prompts`` (no attention mask, as SD 1.x)."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, got a single string")
    ids = tokenize(tokenizer, prompts).to(device)
    return text_encoder(ids)[0]


def _scheduler(name: str, config: Any) -> Any:
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        PNDMScheduler,
    )

    classes = {
        "ddim": DDIMScheduler,
        "ddpm": DDPMScheduler,
        "dpm": DPMSolverMultistepScheduler,
        "euler": EulerDiscreteScheduler,
        "pndm": PNDMScheduler,
    }
    if name not in classes:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {name!r}")
    return classes[name].from_config(config)


def make_pipeline(components: BaseComponents, scheduler: str = "ddim") -> Any:
    """A ``StableDiffusionPipeline`` on the components' modules (shared, not copied), no safety checker."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        vae=components.vae,
        text_encoder=components.text_encoder,
        tokenizer=components.tokenizer,
        unet=components.unet,
        scheduler=_scheduler(scheduler, components.noise_scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def generate(
    components: BaseComponents,
    prompts: Sequence[str],
    *,
    seeds: Sequence[int],
    steps: int = 25,
    guidance_scale: float = 3.0,
    scheduler: str = "ddim",
    batch_size: int = 16,
) -> torch.Tensor:
    """Images [B, 3, R, R] in [0, 1] (float32, CPU) for ``prompts``; image i is drawn from ``seeds[i]``."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, got a single string")
    if len(prompts) != len(seeds):
        raise ValueError(f"got {len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    pipe = make_pipeline(components, scheduler)
    device = next(components.unet.parameters()).device
    size = components.resolution
    out = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        generators = [torch.Generator(device).manual_seed(int(s)) for s in seeds[start : start + batch_size]]
        result = pipe(
            prompt=chunk,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=generators,
            output_type="pt",
        )
        out.append(result.images.float().cpu().clamp(0, 1))
    if not out:
        return torch.zeros(0, 3, size, size)
    return torch.cat(out)


def sample_grid(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """A uint8 grid [H', W', 3] of ``images`` [B, 3, H, W] in [0, 1], ``nrow`` images per row (no padding)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    from torchvision.utils import make_grid

    grid = make_grid(images.float().clamp(0, 1), nrow=nrow, padding=0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
