"""Multi-process (``torch.distributed``) semantics of :func:`fp_gradagg.backward`.

Under data parallelism rank ``r`` holds the loss ``l_{i,r}`` of its share of the batch; the global batch's loss
is their mean ``l̄_i = (1/R) Σ_r l_{i,r}`` (equal per-rank batches), with gradient ``ḡ_i = (1/R) Σ_r g_{i,r}``.
A Gramian method must solve on the *global* Gramian ``Ḡ Ḡᵀ`` (``Ḡ`` ``[K, P]`` stacks the ``ḡ_i``). The mean of
the per-rank Gramians ``(1/R) Σ_r G_r G_rᵀ`` is a different quantity (it adds the between-rank covariance of
the gradients, ``E[g gᵀ] ≠ ḡ ḡᵀ``), biased toward the noisier objectives, and gives different weights.

``distributed="global"`` (the default of :func:`~fp_gradagg.backward`): :func:`average_gradients` all-reduces
the ``K`` per-objective gradients (``K × P`` numbers, in buckets of at most 2^24 entries), so every rank forms
the same global Gramian, solves the same weights and writes the same direction ``Σ_i w_i ḡ_i``.
``distributed="gramian_mean"`` is the former behaviour (the mean of per-rank Gramians, ``K²`` numbers), kept
only to reproduce old runs; ``distributed="local"`` solves on each rank's own Gramian.

Loss values that set weights (log-loss divisors, DWA's history, SI's ``1/l``) are averaged over ranks too
(:func:`average_values`, ``K`` numbers), so every rank balances and weighs alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

__all__ = ["Distributed", "average_gradients", "average_values", "world_size"]

Distributed = Literal["global", "gramian_mean", "local"]


def world_size(group: object | None = None) -> int:
    """The number of ranks of ``group`` (default the world) when ``torch.distributed`` is initialised, else 1."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return int(dist.get_world_size(group))


def average_values(values: torch.Tensor, group: object | None = None) -> torch.Tensor:
    """The mean over ranks of ``values`` (any shape, detached copy); ``values`` itself when single-process."""
    size = world_size(group)
    if size <= 1:
        return values
    import torch.distributed as dist

    synced = values.detach().clone()
    dist.all_reduce(synced, op=dist.ReduceOp.SUM, group=group)
    return synced / size


def average_gradients(
    gradients: Sequence[torch.Tensor | None],
    params: Sequence[torch.Tensor],
    group: object | None = None,
    *,
    bucket_numel: int = 1 << 24,
) -> list[torch.Tensor | None]:
    """The per-objective gradients averaged over ranks: ``ḡ`` per parameter, ``[K, *p.shape]``.

    Args:
        gradients: per-parameter ``[K, *p.shape]`` (or ``None`` where no loss reaches the parameter) from
            :func:`~fp_gradagg.gradients.objective_gradients`; averaged in place where possible.
        params: the parameters, in the same order (they give the shape of a ``None`` entry).
        group: the process group (default the world).
        bucket_numel: at most this many entries are all-reduced per collective (larger tensors alone).

    A parameter reached on some rank but not on another gets zeros on the latter (a presence mask is
    all-reduced first), so every rank issues the same collectives. Single-process: returned unchanged.
    """
    size = world_size(group)
    gradients = list(gradients)
    if size <= 1:
        return gradients
    import torch.distributed as dist

    present = [g for g in gradients if g is not None]
    if not present:
        raise ValueError("gradients holds no tensor: no loss reaches any parameter")
    k = present[0].shape[0]
    device = present[0].device
    mask = torch.tensor([g is not None for g in gradients], dtype=torch.int32, device=device)
    dist.all_reduce(mask, op=dist.ReduceOp.MAX, group=group)
    for j, (p, g) in enumerate(zip(params, gradients, strict=True)):
        if g is None and bool(mask[j]):
            gradients[j] = torch.zeros((k, *p.shape), dtype=p.dtype, device=p.device)
        elif g is not None and not g.is_contiguous():
            gradients[j] = g.contiguous()

    def flush(bucket: list[int]) -> None:
        if not bucket:
            return
        if len(bucket) == 1:
            tensor = gradients[bucket[0]]
            assert tensor is not None
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)
            tensor.div_(size)
            return
        pieces = [gradients[j] for j in bucket]
        flat = torch.cat([piece.reshape(-1) for piece in pieces if piece is not None])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        flat.div_(size)
        offset = 0
        for j in bucket:
            piece = gradients[j]
            assert piece is not None
            piece.copy_(flat[offset : offset + piece.numel()].view_as(piece))
            offset += piece.numel()

    bucket: list[int] = []
    numel = 0
    for j, g in enumerate(gradients):
        if g is None:
            continue
        first = gradients[bucket[0]] if bucket else None
        if bucket and (
            numel + g.numel() > bucket_numel
            or first is None
            or g.dtype != first.dtype
            or g.device != first.device
        ):
            flush(bucket)
            bucket, numel = [], 0
        bucket.append(j)
        numel += g.numel()
    flush(bucket)
    return gradients
