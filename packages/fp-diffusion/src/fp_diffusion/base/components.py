"""The frozen parts of a text-to-image latent diffusion base, as one object the fine-tuners take.

Real scale these come from Stable Diffusion 1.5 (or SDXL for FairHuman) in the local Hugging Face cache; by
default from the small base the pipeline trains itself (``diffusion-base``). Either way they are stored in
diffusers' ``StableDiffusionPipeline.save_pretrained`` layout (``vae/``, ``unet/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``), so diffusers' pipelines load them as users expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BaseComponents"]


@dataclass
class BaseComponents:
    """A latent diffusion base: ``vae`` (AutoencoderKL), ``unet`` (UNet2DConditionModel), ``text_encoder``
    (transformers CLIPTextModel), ``tokenizer`` (CLIPTokenizer), ``noise_scheduler`` (DDPMScheduler, whose
    config's ``prediction_type`` sets the training target) and ``name`` (a path or hub id, for provenance).

    ``resolution`` is the image size the base was trained at (pixels, square).
    """

    vae: Any
    unet: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any
    name: str
    resolution: int

    @property
    def latent_scale(self) -> float:
        """The factor latents are multiplied by before the UNet sees them (``vae.config.scaling_factor``)."""
        return float(self.vae.config.scaling_factor)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> BaseComponents:
        """Move the three networks to ``device`` (and ``dtype`` when given); returns ``self``."""
        for module in (self.vae, self.unet, self.text_encoder):
            module.to(device=device, dtype=dtype)
        return self

    def freeze(self) -> BaseComponents:
        """Turn off gradients and put the three networks in eval mode; returns ``self``."""
        for module in (self.vae, self.unet, self.text_encoder):
            module.requires_grad_(False)
            module.eval()
        return self
