"""The classifier of margin losses: cosines between normalised embeddings and normalised class centres."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NormalisedLinear"]


class NormalisedLinear(nn.Module):
    """``embeddings [B, E] -> cos [B, C]``, ``cos[b, c] = <x_b / |x_b|, w_c / |w_c|>`` in ``[-1, 1]``.

    The class centres ``weight [C, E]`` start ``N(0, 0.01)`` (insightface's partial-FC initialisation);
    normalisation makes their scale irrelevant.
    """

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        if embedding_size < 1 or num_classes < 1:
            raise ValueError(f"need embedding_size, num_classes >= 1, got {embedding_size}, {num_classes}")
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, 0.0, 0.01)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[B, E] -> [B, C]`` cosines (clamped to ``[-1, 1]`` against rounding)."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must have shape [B, {self.embedding_size}], got {tuple(embeddings.shape)}"
            )
        cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))
        return cos.clamp(-1.0, 1.0)
