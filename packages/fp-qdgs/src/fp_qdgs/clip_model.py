"""What the CLIP scorer needs from a CLIP-like model, and differentiable CLIP image preprocessing.

Any object with ``encode_image(images [B, 3, S, S]) -> [B, D]`` (preprocessed images in, embeddings out) plugs
in: an ``open_clip`` model, real or tiny. Text is embedded once, up front (:func:`embed_texts`), so the scorer
only ever sees ``[P, D]`` text embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

from fp_metrics.clip_models import OPENAI_MEAN, OPENAI_STD, preprocess_images

__all__ = ["CLIP_MEAN", "CLIP_STD", "CLIPLike", "embed_texts", "preprocess_for_clip", "unit"]

#: OpenAI CLIP's per-channel pixel mean and standard deviation (RGB, images in [0, 1]).
CLIP_MEAN: tuple[float, float, float] = OPENAI_MEAN
CLIP_STD: tuple[float, float, float] = OPENAI_STD


@runtime_checkable
class CLIPLike(Protocol):
    """``encode_image(images [B, 3, S, S] normalised) -> [B, D]`` (not necessarily unit length)."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...


def unit(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``x / ||x||`` along the last dimension."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def preprocess_for_clip(
    images: torch.Tensor,
    size: int = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """Differentiable CLIP preprocessing: ``[B, 3, H, W]`` in ``[0, 1]`` -> ``[B, 3, size, size]`` normalised.

    Resize so the shorter side is ``size`` (bicubic, antialiased when shrinking, like CLIP's PIL resize), centre
    crop to ``size x size``, then ``(x - mean) / std`` per channel: ``fp_metrics.clip_models.preprocess_images``,
    the preprocessing a loaded CLIP applies, so scores and metrics see the same pixels.
    """
    return preprocess_images(images, size, mean, std)


@torch.no_grad()
def embed_texts(
    model: object, tokenizer: Callable[[list[str]], torch.Tensor], prompts: Sequence[str]
) -> torch.Tensor:
    """Unit text embeddings ``[P, D]`` of ``prompts`` with an open_clip-style ``model.encode_text``."""
    encode = getattr(model, "encode_text", None)
    if encode is None:
        raise TypeError(
            f"{type(model).__name__} has no encode_text; pass precomputed text embeddings instead"
        )
    device = next(iter(model.parameters())).device if hasattr(model, "parameters") else "cpu"
    return unit(encode(tokenizer(list(prompts)).to(device)).float())
