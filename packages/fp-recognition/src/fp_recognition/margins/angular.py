"""ArcFace, CosFace and the combined margin on cosines, with the gradient through the margin.

Each module maps ``cos [B, C]`` (from :class:`~fp_recognition.margins.NormalisedLinear`), ``labels [B]``
and optional ``norms [B]`` (ignored here) to logits ``[B, C]`` for cross-entropy. Only the target entry
``cos[b, labels[b]]`` changes; every logit is multiplied by ``s``; a row with label -1 (its class is on
another shard) is only scaled.

**Gradient.** The margin is differentiable here: ``d logit / d cos`` at the target is the derivative of the
margin function (for ArcFace ``s * (cos m + sin m * cos(theta) / sin(theta))``). insightface's current
arcface_torch ``ArcFace`` applies ``arccos``, ``+ m`` and ``cos`` under ``torch.no_grad()`` in place, so its
gradient with respect to every cosine is just ``s``: a straight-through estimator in which the margin only
changes the forward value. The published ArcFace (and insightface's older PyTorch / MXNet code) differentiates
through the margin, as done here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fp_recognition.margins._targets import replace_targets, target_index

__all__ = ["ArcFaceMargin", "CombinedMargin", "CosFaceMargin"]


class ArcFaceMargin(nn.Module):
    """Additive angular margin: the target logit is ``s * cos(theta + m)``.

    With ``easy_margin=False`` (the default, the published ArcFace rule): when ``cos(theta) > cos(pi - m)``
    (i.e. ``theta + m < pi``) the target becomes ``cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m)``;
    otherwise (``theta >= pi - m``, where ``cos(theta + m)`` would grow again with theta) it becomes the
    CosFace-like ``cos(theta) - m * sin(m)`` (insightface's ``mm = sin(pi - m) * m``), which keeps the
    target logit decreasing in theta. It is not continuous: at ``theta = pi - m`` it jumps from ``-1`` to
    ``-cos(m) - m sin(m)`` (-1.117 for m = 0.5). With ``easy_margin=True`` the margin applies only when
    ``cos(theta) > 0`` and the target is left as ``cos(theta)`` otherwise.

    ``forward(cos [B, C], labels [B], norms [B] | None = None) -> logits [B, C]``.
    """

    def __init__(self, s: float = 64.0, m: float = 0.5, *, easy_margin: bool = False) -> None:
        super().__init__()
        if not 0 <= m < math.pi / 2:
            raise ValueError(f"ArcFace margin m must be in [0, pi/2), got {m}")
        self.s, self.m, self.easy_margin = float(s), float(m), easy_margin
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.threshold = math.cos(math.pi - m)
        self.fallback = math.sin(math.pi - m) * m

    def forward(
        self, cos: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cos [B, C], labels [B]`` -> logits ``[B, C]``; ``norms`` is ignored."""
        rows, cols = target_index(cos, labels)
        c = cos[rows, cols].clamp(-1.0, 1.0)
        sin = torch.sqrt((1.0 - c * c).clamp_min(1e-12))
        phi = c * self.cos_m - sin * self.sin_m
        if self.easy_margin:
            target = torch.where(c > 0, phi, c)
        else:
            target = torch.where(c > self.threshold, phi, c - self.fallback)
        return replace_targets(cos, rows, cols, target) * self.s


class CosFaceMargin(nn.Module):
    """Additive cosine margin: the target logit is ``s * (cos(theta) - m)``.

    ``forward(cos [B, C], labels [B], norms [B] | None = None) -> logits [B, C]``.
    """

    def __init__(self, s: float = 64.0, m: float = 0.4) -> None:
        super().__init__()
        self.s, self.m = float(s), float(m)

    def forward(
        self, cos: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cos [B, C], labels [B]`` -> logits ``[B, C]``; ``norms`` is ignored."""
        rows, cols = target_index(cos, labels)
        return replace_targets(cos, rows, cols, cos[rows, cols] - self.m) * self.s


class CombinedMargin(nn.Module):
    """insightface's combined margin: the target logit is ``s * (cos(m1 * theta + m2) - m3)``.

    ``(1, 0.5, 0)`` is ArcFace without its ``theta + m > pi`` fallback, ``(1, 0, 0.4)`` is CosFace, ``(m1, 0,
    0)`` SphereFace's multiplicative margin. As in insightface's MXNet combined-margin code there is no
    fallback: ``theta = arccos(cos)`` with ``cos`` clamped to ``[-1 + eps, 1 - eps]`` (so the gradient of
    ``arccos`` stays finite; ``eps = 1e-6``), then the formula as written.

    ``forward(cos [B, C], labels [B], norms [B] | None = None) -> logits [B, C]``.
    """

    def __init__(self, s: float = 64.0, m1: float = 1.0, m2: float = 0.5, m3: float = 0.0) -> None:
        super().__init__()
        self.s, self.m1, self.m2, self.m3 = float(s), float(m1), float(m2), float(m3)
        self.eps = 1e-6

    def forward(
        self, cos: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cos [B, C], labels [B]`` -> logits ``[B, C]``; ``norms`` is ignored."""
        rows, cols = target_index(cos, labels)
        theta = torch.acos(cos[rows, cols].clamp(-1.0 + self.eps, 1.0 - self.eps))
        target = torch.cos(self.m1 * theta + self.m2) - self.m3
        return replace_targets(cos, rows, cols, target) * self.s
