"""AdaFace's quality-adaptive margin (Kim et al., CVPR 2022), with the feature norm as the image quality.

For a batch with feature norms ``n [B]`` (the L2 norms of the backbone embeddings):

* ``n' = clip(n, 0.001, 100)``, detached (the norm gets no gradient through the margin);
* in training mode the batch statistics update the EMA buffers, ``batch_mean <- a * mean(n') + (1 - a) *
  batch_mean`` and ``batch_std <- a * std(n') + (1 - a) * batch_std`` (``a = t_alpha``, ``std`` unbiased as
  ``torch.std``; the buffers start at 20 and 100 as in AdaFace), and the updated values are used at once;
* ``scaler = clip((n' - batch_mean) / (batch_std + eps) * h, -1, 1)``, ``eps = 1e-3``;
* the target becomes ``cos(clip(theta - m * scaler, eps, pi - eps)) - (m + m * scaler)`` with
  ``theta = arccos(clip(cos, -1 + eps, 1 - eps))``: an angular margin ``-m * scaler`` and an additive one
  ``m + m * scaler``; all logits are scaled by ``s``.

Differences from AdaFace's module: the EMA is updated only in training mode (AdaFace updates it on every
forward call), a batch of one sample leaves ``batch_std`` unchanged (its std is undefined), and only the
target cosines are clamped (AdaFace clamps every cosine to ``[-1 + eps, 1 - eps]``), so a row with label -1
is only scaled. The gradient flows through the margin into ``cos``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fp_recognition.margins._targets import replace_targets, target_index

__all__ = ["AdaFaceMargin"]


class AdaFaceMargin(nn.Module):
    """``forward(cos [B, C], labels [B], norms [B]) -> logits [B, C]``; buffers ``batch_mean``, ``batch_std`` [1].

    Args:
        m: margin (0.4). h: concentration of the scaler (0.333). s: scale (64). t_alpha: EMA weight of the
        current batch (0.01, AdaFace's training setting).
    """

    batch_mean: torch.Tensor
    batch_std: torch.Tensor

    def __init__(self, m: float = 0.4, h: float = 0.333, s: float = 64.0, t_alpha: float = 0.01) -> None:
        super().__init__()
        if not 0 < t_alpha <= 1:
            raise ValueError(f"t_alpha must be in (0, 1], got {t_alpha}")
        self.m, self.h, self.s, self.t_alpha = float(m), float(h), float(s), float(t_alpha)
        self.eps = 1e-3
        self.register_buffer("batch_mean", torch.full((1,), 20.0))
        self.register_buffer("batch_std", torch.full((1,), 100.0))

    @torch.no_grad()
    def _update_statistics(self, safe_norms: torch.Tensor) -> None:
        a = self.t_alpha
        self.batch_mean.mul_(1 - a).add_(a * safe_norms.mean())
        if safe_norms.numel() > 1:
            self.batch_std.mul_(1 - a).add_(a * safe_norms.std())

    def margin_scaler(self, norms: torch.Tensor) -> torch.Tensor:
        """``norms [B] -> clip((clip(n, 0.001, 100) - mean) / (std + eps) * h, -1, 1)`` ``[B]`` (no EMA update)."""
        safe = norms.detach().clamp(0.001, 100.0)
        return ((safe - self.batch_mean) / (self.batch_std + self.eps) * self.h).clamp(-1.0, 1.0)

    def forward(
        self, cos: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cos [B, C], labels [B], norms [B]`` -> logits ``[B, C]``; updates the EMA in training mode."""
        if norms is None:
            raise ValueError("AdaFaceMargin needs the feature norms [B] (embeddings.norm(dim=1))")
        if norms.shape != (cos.shape[0],):
            raise ValueError(f"norms must have shape [B] with B={cos.shape[0]}, got {tuple(norms.shape)}")
        rows, cols = target_index(cos, labels)
        if self.training:
            self._update_statistics(norms.detach().clamp(0.001, 100.0).to(self.batch_mean.dtype))
        scaler = self.margin_scaler(norms).to(cos.dtype)[rows]
        theta = torch.acos(cos[rows, cols].clamp(-1.0 + self.eps, 1.0 - self.eps))
        theta_m = (theta - self.m * scaler).clamp(self.eps, math.pi - self.eps)
        target = torch.cos(theta_m) - (self.m + self.m * scaler)
        return replace_targets(cos, rows, cols, target) * self.s
