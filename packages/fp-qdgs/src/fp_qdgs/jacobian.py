"""Objective, measures and their latent gradients (the DQD Jacobian) from one forward pass.

The public QDGS code runs one forward and one backward pass per output (objective, then each of the ``k``
measures). Here the ``k + 1`` outputs come from a single forward pass and their gradients from one batched
vector-Jacobian product: ``torch.autograd.grad(outputs, latents, grad_outputs=I, is_grads_batched=True)``
with the ``k + 1`` one-hot cotangents stacked, which vmaps the backward pass. Because every sample is scored
independently, the gradient of ``sum_b output[b, j]`` w.r.t. ``latents[b]`` is sample ``b``'s own gradient.

Operations without a batching rule make ``is_grads_batched`` fail; we then fall back to ``k + 1`` backward
passes over the same graph (``retain_graph=True``), still one forward pass.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from fp_qdgs.protocols import Generator, Scorer, check_scores, generate

__all__ = ["Evaluation", "evaluate", "evaluate_with_jacobian", "stacked_jacobian"]


class Evaluation(NamedTuple):
    """One evaluated batch (all detached).

    ``images [B, 3, H, W]``, ``objective [B]``, ``measures [B, k]``, ``jacobian [B, k + 1, n]`` (row 0 the
    objective gradient, rows 1..k the measure gradients; ``None`` when not computed).
    """

    images: torch.Tensor
    objective: torch.Tensor
    measures: torch.Tensor
    jacobian: torch.Tensor | None


def stacked_jacobian(outputs: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients of ``outputs [B, m]`` w.r.t. ``latents [B, n]``: ``[B, m, n]``.

    Needs each ``outputs[b]`` to depend on ``latents[b]`` only. One batched backward pass over the ``m``
    one-hot cotangents; a loop of ``m`` backward passes if the graph has an op without a vmap rule.
    """
    batch, m = outputs.shape
    eye = torch.eye(m, dtype=outputs.dtype, device=outputs.device)
    cotangents = eye[:, None, :].expand(m, batch, m)  # [m, B, m]: cotangent j selects output column j
    try:
        (grads,) = torch.autograd.grad(
            outputs, latents, grad_outputs=cotangents, is_grads_batched=True, retain_graph=True
        )
    except RuntimeError as err:  # an op without a batching rule
        warnings.warn(
            f"batched vector-Jacobian product failed ({err}); falling back to {m} backward passes",
            RuntimeWarning,
            stacklevel=2,
        )
        grads = torch.stack(
            [torch.autograd.grad(outputs[:, j].sum(), latents, retain_graph=True)[0] for j in range(m)]
        )
    return grads.transpose(0, 1)  # [B, m, n]


def evaluate_with_jacobian(generator: Generator, scorer: Scorer, latents: torch.Tensor) -> Evaluation:
    """Generate and score ``latents [B, n]`` once and return the outputs and the ``[B, k + 1, n]`` Jacobian."""
    z = latents.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        images = generate(generator, z)
        objective, measures = check_scores(*scorer(images, z), z.shape[0], scorer.num_measures)
        outputs = torch.cat([objective[:, None], measures], dim=1)  # [B, k + 1]
        jacobian = stacked_jacobian(outputs, z)
    return Evaluation(images.detach(), objective.detach(), measures.detach(), jacobian.detach())


def evaluate(generator: Generator, scorer: Scorer, latents: torch.Tensor) -> Evaluation:
    """Generate and score ``latents [B, n]`` without gradients (``jacobian`` is ``None``)."""
    with torch.no_grad():
        images = generate(generator, latents)
        objective, measures = check_scores(*scorer(images, latents), latents.shape[0], scorer.num_measures)
    return Evaluation(images, objective, measures, None)
