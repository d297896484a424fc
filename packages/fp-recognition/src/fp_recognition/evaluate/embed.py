"""Batched embedding of image lists with the flip test (insightface's evaluation): plain and mirrored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from fp_metrics.verification import flip_fuse

__all__ = ["ImageEmbeddings", "embed_images"]


@dataclass(frozen=True)
class ImageEmbeddings:
    """Embeddings of ``N`` images: ``plain [N, E]`` and, with the flip test, ``flipped [N, E]`` (float64).

    ``fused`` is what verification compares: ``plain + flipped`` (``fp_metrics.flip_fuse``), or ``plain``.
    ``xnorm`` is insightface's XNorm, the mean L2 norm over all unnormalised embeddings (plain and flipped).
    """

    plain: np.ndarray
    flipped: np.ndarray | None

    @property
    def fused(self) -> np.ndarray:
        """``[N, E]``: the flip-fused embeddings (not normalised)."""
        return self.plain if self.flipped is None else flip_fuse(self.plain, self.flipped)

    @property
    def xnorm(self) -> float:
        """Mean L2 norm of the plain (and flipped) embeddings."""
        parts = [self.plain] if self.flipped is None else [self.plain, self.flipped]
        return float(np.mean(np.linalg.norm(np.concatenate(parts), axis=1)))

    def __len__(self) -> int:
        return int(self.plain.shape[0])


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def embed_images(
    model: nn.Module,
    images: Sequence[torch.Tensor] | torch.Tensor,
    *,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    flip: bool = True,
    num_workers: int = 0,
) -> ImageEmbeddings:
    """Embed ``images`` (``N`` tensors ``[3, S, S]``, e.g. a :class:`~fp_recognition.data.LazyImages`, or one
    ``[N, 3, S, S]`` tensor) in eval mode, ``batch_size`` at a time; with ``flip`` also their mirrors.

    ``device=None`` runs where the model is; another device moves the model there. The model's training
    mode is restored afterwards. ``num_workers`` decode in DataLoader workers.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if device is not None:
        model.to(device)
    target = _model_device(model)
    was_training = model.training
    model.eval()
    plain: list[np.ndarray] = []
    flipped: list[np.ndarray] = []
    try:
        loader = DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=num_workers)  # type: ignore[arg-type]
        for batch in loader:
            x = batch.to(target, non_blocking=True).float()
            if x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"images must be [3, S, S] each, got a batch of shape {tuple(x.shape)}")
            plain.append(model(x).double().cpu().numpy())
            if flip:
                flipped.append(model(x.flip(-1)).double().cpu().numpy())
    finally:
        model.train(was_training)
    if not plain:
        raise ValueError("no image to embed")
    return ImageEmbeddings(np.concatenate(plain), np.concatenate(flipped) if flip else None)
