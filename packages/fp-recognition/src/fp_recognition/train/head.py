"""The classification head of margin training: ``NormalisedLinear`` class centres followed by a margin."""

from __future__ import annotations

import torch
from torch import nn

from fp_recognition.margins import AdaFaceMargin, ArcFaceMargin, CosFaceMargin, NormalisedLinear
from fp_recognition.train.config import RecognitionTrainConfig

__all__ = ["MarginHead", "build_margin"]


def build_margin(config: RecognitionTrainConfig) -> nn.Module:
    """The margin module of ``config.loss`` with ``config``'s m and s (AdaFace also h and t_alpha)."""
    m, s = config.margin_value, float(config.scale)
    if config.loss == "arcface":
        return ArcFaceMargin(s=s, m=m)
    if config.loss == "cosface":
        return CosFaceMargin(s=s, m=m)
    return AdaFaceMargin(m=m, h=config.adaface_h, s=s, t_alpha=config.adaface_t_alpha)


class MarginHead(nn.Module):
    """``forward(embeddings [B, E], labels [B]) -> logits [B, C]`` for cross-entropy.

    ``cos = NormalisedLinear(embeddings)``, then ``margin(cos, labels, norms)`` with the embeddings' L2 norms
    (AdaFace's quality signal; ArcFace and CosFace ignore them). Computed in float32 even under autocast.
    """

    def __init__(self, embedding_size: int, num_classes: int, margin: nn.Module) -> None:
        super().__init__()
        self.classifier = NormalisedLinear(embedding_size, num_classes)
        self.margin = margin

    @property
    def num_classes(self) -> int:
        """C."""
        return self.classifier.num_classes

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``[B, E], [B] -> [B, C]`` logits."""
        embeddings = embeddings.float()
        cos = self.classifier(embeddings)
        return self.margin(cos, labels, embeddings.norm(dim=1))
