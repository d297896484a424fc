"""Per-objective gradients and their Gramian, by K backward passes (naive) or one batched backward (fast).

Both paths start from ``K`` scalar losses that share one forward graph and return, per parameter, the stacked
gradients ``[K, *p.shape]``; :func:`gramian_from_gradients` accumulates ``A = Σ_p G_p G_pᵀ`` parameter by
parameter (``G_p`` ``[K, numel(p)]``; small ones in chunks of at most 2^24 entries) in float64. The pieces
(``K × P`` numbers in all) live until the direction is written; no concatenated ``[K, P]`` copy is made.

* ``"naive"``: ``K`` calls of ``torch.autograd.grad``, one per loss (as public FairGrad / Nash-MTL code does).
* ``"fast"``: one ``torch.autograd.grad`` of the stacked losses with the ``K × K`` identity as batched
  cotangents (``is_grads_batched=True``: the backward runs once under ``torch.vmap``), so every backward
  kernel sees ``K`` cotangents at once instead of being launched ``K`` times.

The two paths compute the same gradients (up to float round-off in the batched kernels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

__all__ = ["Path", "combine_gradients", "gramian_from_gradients", "objective_gradients", "stack_losses"]

Path = Literal["naive", "fast"]


def stack_losses(losses: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ``K`` scalar losses as one tensor ``[K]`` (common floating dtype), with their graphs.

    Raises:
        ValueError: if ``losses`` is empty, an entry is not a one-element floating tensor, or none has
            a graph.
    """
    if isinstance(losses, torch.Tensor):
        if losses.dim() != 1:
            raise ValueError(
                f"losses must be K scalar tensors or a tensor [K], got shape {tuple(losses.shape)}"
            )
        losses = list(losses.unbind(0))
    losses = list(losses)
    if not losses:
        raise ValueError("losses must hold at least one scalar tensor, got an empty sequence")
    for i, loss in enumerate(losses):
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.dtype.is_floating_point:
            what = (
                f"shape {tuple(loss.shape)}, dtype {loss.dtype}"
                if isinstance(loss, torch.Tensor)
                else type(loss).__name__
            )
            raise ValueError(f"losses[{i}] must be a scalar floating tensor, got {what}")
    if not any(loss.requires_grad for loss in losses):
        raise ValueError(
            "none of the losses requires grad: they must come from a forward pass with autograd on"
        )
    dtype = torch.promote_types(losses[0].dtype, torch.float32)
    for loss in losses[1:]:
        dtype = torch.promote_types(dtype, loss.dtype)
    return torch.stack([loss.reshape(()).to(dtype) for loss in losses])


def objective_gradients(
    stacked: torch.Tensor, params: Sequence[torch.Tensor], *, path: Path = "fast", retain_graph: bool = False
) -> list[torch.Tensor | None]:
    """Per-parameter stacked gradients ``[K, *p.shape]`` of ``stacked`` ``[K]`` with respect to ``params``.

    ``None`` for a parameter that no loss reaches (as ``loss.backward()`` leaves its ``.grad`` alone); zeros
    for the objectives that do not reach a reached parameter. ``retain_graph=False`` frees the graph after the
    last pass.
    """
    k = stacked.shape[0]
    if path == "fast":
        cotangents = torch.eye(k, dtype=stacked.dtype, device=stacked.device)
        grads = torch.autograd.grad(
            stacked,
            params,
            grad_outputs=cotangents,
            is_grads_batched=True,
            retain_graph=retain_graph,
            allow_unused=True,
        )
        return list(grads)
    if path == "naive":
        stacked_grads: list[torch.Tensor | None] = [None] * len(params)
        for i in range(k):
            grads = torch.autograd.grad(
                stacked[i], params, retain_graph=retain_graph or i < k - 1, allow_unused=True
            )
            for j, (p, grad) in enumerate(zip(params, grads)):
                if grad is None:
                    continue
                buffer = stacked_grads[j]
                if buffer is None:
                    buffer = stacked_grads[j] = torch.zeros((k, *p.shape), dtype=p.dtype, device=p.device)
                buffer[i].copy_(grad)
        return stacked_grads
    raise ValueError(f"path must be 'naive' or 'fast', got {path!r}")


def gramian_from_gradients(
    gradients: Sequence[torch.Tensor | None], *, chunk_numel: int = 1 << 24
) -> torch.Tensor:
    """``A = Σ_p G_p G_pᵀ`` ``[K, K]`` (float64, on the gradients' device) from per-parameter ``[K, ...]``.

    ``None`` entries (parameters no loss reaches) are skipped.
    Small parameters are concatenated into chunks of at most ``chunk_numel`` entries (one matmul per chunk
    instead of one per tensor); a larger parameter is its own chunk, so at most one chunk is copied at a time.
    """
    present = [g for g in gradients if g is not None]
    if not present:
        raise ValueError("gradients holds no tensor: no loss reaches any parameter")
    k = present[0].shape[0]
    gramian = torch.zeros((k, k), dtype=torch.float64, device=present[0].device)
    pending: list[torch.Tensor] = []
    pending_numel = 0

    def flush() -> None:
        nonlocal pending, pending_numel
        if not pending:
            return
        block = pending[0] if len(pending) == 1 else torch.cat(pending, dim=1)
        if block.dtype in (torch.float16, torch.bfloat16):
            block = block.float()
        gramian.add_((block @ block.T).to(gramian.device, torch.float64))
        pending, pending_numel = [], 0

    for grad in present:
        flat = grad.reshape(k, -1)
        if pending and (
            pending_numel + flat.numel() > chunk_numel
            or flat.dtype != pending[0].dtype
            or flat.device != pending[0].device
        ):
            flush()
        pending.append(flat)
        pending_numel += flat.numel()
    flush()
    return gramian


def combine_gradients(
    gradients: Sequence[torch.Tensor | None], weights: torch.Tensor
) -> list[torch.Tensor | None]:
    """``d_p = Σ_k w_k G_p[k]`` ``[*p.shape]`` per parameter, from ``[K, *p.shape]`` gradients, ``w [K]``."""
    cast: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
    out: list[torch.Tensor | None] = []
    for grad in gradients:
        if grad is None:
            out.append(None)
            continue
        key = (grad.dtype, grad.device)
        if key not in cast:
            cast[key] = weights.to(grad.device, grad.dtype)
        out.append(torch.matmul(cast[key], grad.reshape(grad.shape[0], -1)).view(grad.shape[1:]))
    return out
