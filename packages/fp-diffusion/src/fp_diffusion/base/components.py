"""The frozen parts of a text-to-image latent diffusion base, as one object the fine-tuners take.

Real scale these come from Stable Diffusion 1.5 (or SDXL for FairHuman) in the local Hugging Face cache; by
default from the small base the pipeline trains itself (``diffusion-base``). Either way they are stored in
diffusers' ``StableDiffusionPipeline.save_pretrained`` layout (``vae/``, ``unet/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``; SDXL adds ``text_encoder_2/`` and ``tokenizer_2/``), so diffusers' pipelines
load them as users expect.

Prompt conditioning (:meth:`BaseComponents.encode_prompt`, :meth:`BaseComponents.added_cond_kwargs`):

* SD 1.x: the text encoder's last hidden states ``[B, T, D]``; no pooled embedding, no added conditions.
* SDXL (diffusers' ``StableDiffusionXLPipeline.encode_prompt`` convention): the penultimate hidden states
  (``hidden_states[-2]``) of both encoders concatenated ``[B, T, D1 + D2]``, the second encoder's pooled
  projection ``text_embeds [B, D2]``, and the UNet's added conditions ``text_embeds`` plus ``time_ids [B, 6]``
  = (original height, width, crop top, crop left, target height, width) = ``(R, R, 0, 0, R, R)`` for square
  uncropped images at resolution ``R``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BaseComponents"]


def _token_ids(tokenizer: Any, prompts: Sequence[str], device: torch.device | str) -> torch.Tensor:
    """``[B, T]`` ids, padded / truncated to ``tokenizer.model_max_length``."""
    tokens = tokenizer(
        list(prompts),
        max_length=tokenizer.model_max_length,
        padding="max_length",
        truncation=True,
        return_tensors="pt",
    )
    return tokens.input_ids.to(device)


@dataclass
class BaseComponents:
    """A latent diffusion base: ``vae`` (AutoencoderKL), ``unet`` (UNet2DConditionModel), ``text_encoder``
    (transformers CLIPTextModel), ``tokenizer`` (CLIPTokenizer), ``noise_scheduler`` (DDPMScheduler, whose
    config's ``prediction_type`` sets the training target) and ``name`` (a path or hub id, for provenance).

    ``resolution`` is the image size the base was trained at (pixels, square). An SDXL base also has
    ``text_encoder_2`` (CLIPTextModelWithProjection) and ``tokenizer_2``; both are None for SD 1.x.
    """

    vae: Any
    unet: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any
    name: str
    resolution: int
    text_encoder_2: Any | None = None
    tokenizer_2: Any | None = None

    def __post_init__(self) -> None:
        if (self.text_encoder_2 is None) != (self.tokenizer_2 is None):
            raise ValueError(
                "an SDXL base needs both text_encoder_2 and tokenizer_2 (got only "
                f"{'text_encoder_2' if self.text_encoder_2 is not None else 'tokenizer_2'})"
            )

    @property
    def is_sdxl(self) -> bool:
        """True for a two-encoder (SDXL) base."""
        return self.text_encoder_2 is not None

    @property
    def latent_scale(self) -> float:
        """The factor latents are multiplied by before the UNet sees them (``vae.config.scaling_factor``)."""
        return float(self.vae.config.scaling_factor)

    def _networks(self) -> tuple[Any, ...]:
        networks = (self.vae, self.unet, self.text_encoder)
        return networks + ((self.text_encoder_2,) if self.text_encoder_2 is not None else ())

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> BaseComponents:
        """Move the networks (three, SDXL four) to ``device`` (and ``dtype`` when given); returns ``self``."""
        for module in self._networks():
            module.to(device=device, dtype=dtype)
        return self

    def freeze(self) -> BaseComponents:
        """Turn off gradients and put the networks (three, SDXL four) in eval mode; returns ``self``."""
        for module in self._networks():
            module.requires_grad_(False)
            module.eval()
        return self

    def encode_prompt(
        self, prompts: Sequence[str], device: torch.device | str
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(states, pooled)`` of ``prompts`` (B strings) on ``device``, as the UNet takes them.

        SD 1.x: ``(last hidden states [B, T, D], None)``. SDXL: ``(penultimate hidden states of both
        encoders concatenated [B, T, D1 + D2], the second encoder's pooled projection [B, D2])`` (module
        docstring). Gradients flow only where the encoders have them; wrap in ``torch.no_grad()`` for a frozen
        base.
        """
        if isinstance(prompts, str):
            raise ValueError(f"prompts must be a sequence of strings, got the string {prompts!r}")
        ids = _token_ids(self.tokenizer, prompts, device)
        if self.text_encoder_2 is None:
            return self.text_encoder(ids, return_dict=False)[0], None
        first = self.text_encoder(ids, output_hidden_states=True)
        second = self.text_encoder_2(_token_ids(self.tokenizer_2, prompts, device), output_hidden_states=True)
        if first.hidden_states[-2].shape[1] != second.hidden_states[-2].shape[1]:
            raise ValueError(
                f"the SDXL tokenizers give {first.hidden_states[-2].shape[1]} and "
                f"{second.hidden_states[-2].shape[1]} tokens; both must pad to the same model_max_length"
            )
        states = torch.cat([first.hidden_states[-2], second.hidden_states[-2]], dim=-1)
        return states, second.text_embeds

    def added_cond_kwargs(
        self, pooled: torch.Tensor | None, resolution: int | None = None
    ) -> dict[str, torch.Tensor] | None:
        """The UNet's ``added_cond_kwargs`` for a batch: None for SD 1.x; SDXL ``{"text_embeds": pooled
        [B, D2], "time_ids": [B, 6]}`` with ``time_ids`` = ``(R, R, 0, 0, R, R)`` (original size, crop top-left,
        target size) at ``resolution`` R (default the base's), in ``pooled``'s dtype and device."""
        if not self.is_sdxl:
            return None
        if pooled is None or pooled.dim() != 2:
            shape = None if pooled is None else tuple(pooled.shape)
            raise ValueError(f"an SDXL base needs the pooled text embeddings [B, D2], got {shape}")
        size = int(resolution or self.resolution)
        row = torch.tensor([size, size, 0, 0, size, size], dtype=pooled.dtype, device=pooled.device)
        return {"text_embeds": pooled, "time_ids": row.expand(pooled.shape[0], 6)}
