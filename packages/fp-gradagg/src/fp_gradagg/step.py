"""The optimiser-facing step: weight ``K`` losses by a method and write the combined direction into ``.grad``.

``backward(losses, params, method)`` is the multi-objective ``loss.backward()``. Convention (explicit):

* **Direction.** It adds ``d_p = Σ_i w_i ∂l_i/∂p`` to ``p.grad`` for every parameter ``p`` in ``params`` that
  requires grad, where ``l_i`` are the losses *as given* and ``w`` the method's weights. With all
  ``w_i = 1`` this is exactly ``sum(losses).backward()`` (the *loss-sum* scale); MGDA, CAGrad, RLW put their
  weights on the simplex (the *mean* scale); FairGrad / MPD / Nash-MTL weights are not normalised at all
  (their size follows the gradients' size, see :mod:`fp_gradagg.fairgrad`). Nothing is rescaled behind your
  back; ``result.weights`` says what was applied.
* **Accumulation.** It adds to ``.grad`` (like ``loss.backward()``), so gradient accumulation works; each call
  solves its own weights from its own micro-batch.
* **Scaled losses** (AMP loss scaling, ``1 / accumulation_steps``). If the given losses are ``S · l_i^true``,
  pass ``grad_scale=S`` (a float, or the ``GradScaler`` itself). The weights are then solved on the *unscaled*
  Gramian ``A / S²`` (on the scaled ``S² A`` FairGrad's weights, hence the unscaled step, would shrink by
  ``S^(-2 alpha/(alpha+1))``: ``2^-21`` for MPD at ``S = 65536``), and
  ``.grad`` receives ``S · Σ_i w_i ∇l_i^true``, which the scaler's ``unscale_`` / ``step`` undoes as usual.
  If the (scaled) gradients overflow, nothing is solved: ``w = 1`` is applied so the inf/NaN reaches ``.grad``
  and the scaler skips the step; ``result.nonfinite`` is True.
* **accelerate / DDP.** Only autograd and ``.grad`` are touched, so wrapped (accelerate-prepared) models work.
  The per-objective gradients come from ``torch.autograd.grad`` (no ``.grad`` writes, no DDP hooks); the
  direction is then written by one ``torch.autograd.backward`` call, which fires DDP's gradient hooks
  (all-reduce) once. Under ``torch.distributed`` the Gramian is averaged over ranks first
  (``sync_gramian=True``) so every rank applies the same weights.

Paths (Gramian methods): ``"fast"`` (one batched backward over the K objectives) or ``"naive"``
(K backward passes), see :mod:`fp_gradagg.gradients`. Then ``combine="reuse"`` (default) writes
``Σ_i w_i g_i`` from the per-objective gradients already computed (one ``backward`` on the parameters
themselves, no second pass through the model); ``combine="recompute"`` runs a single weighted backward
``Σ_i w_i l_i`` through the model instead (what the gradient-free hooks of some wrappers may need).
Linear scalarisation and loss-based methods need no per-objective gradients: one ordinary backward; so does
:class:`~fp_gradagg.Amortised` on the calls where it reuses its last weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from fp_gradagg.amortised import Amortised
from fp_gradagg.base import GramianWeighting, LossWeighting
from fp_gradagg.gradients import (
    Path,
    combine_gradients,
    gramian_from_gradients,
    objective_gradients,
    stack_losses,
)
from fp_gradagg.linear import LinearScalarization

__all__ = ["BackwardResult", "backward", "resolve_grad_scale"]


@dataclass(frozen=True)
class BackwardResult:
    """What :func:`backward` applied.

    Attributes:
        weights: ``[K]`` weights applied to the (given) losses, float32 (or the losses' wider dtype), on their
            device; always finite.
        residual: relative residual of the method's fixed point (FairGrad / MPD / Nash-MTL), ``0.0`` for
            the other methods.
        losses: ``[K]`` detached, unscaled losses (given losses divided by ``grad_scale``).
        gramian: ``[K, K]`` unscaled Gramian (float64) for Gramian methods, else ``None``.
        nonfinite: the (scaled) gradients held inf/NaN; no weights were solved (``w = 1`` was applied).
        dropped: objectives given weight 0 by the degenerate-Gramian rule (zero gradient).
        ridge: the relative ridge the degenerate-Gramian rule added (``A + ridge · diag(A)``), else 0.
        extra: method-specific scalars (e.g. solver iterations).
    """

    weights: torch.Tensor
    residual: float
    losses: torch.Tensor
    gramian: torch.Tensor | None = None
    nonfinite: bool = False
    dropped: tuple[int, ...] = ()
    ridge: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def resolve_grad_scale(grad_scale: float | Any | None) -> float:
    """The loss scale ``S`` as a float: ``None`` -> 1, a positive finite number, or a ``GradScaler``'s scale.

    A ``GradScaler`` (anything with ``get_scale()``) that is disabled counts as 1.
    """
    if grad_scale is None:
        return 1.0
    if hasattr(grad_scale, "get_scale"):
        enabled = grad_scale.is_enabled() if hasattr(grad_scale, "is_enabled") else True
        value = float(grad_scale.get_scale()) if enabled else 1.0
    elif isinstance(grad_scale, int | float) and not isinstance(grad_scale, bool):
        value = float(grad_scale)
    else:
        raise ValueError(
            f"grad_scale must be None, a positive number or a GradScaler, got {type(grad_scale).__name__}"
        )
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"grad_scale must be a finite number > 0, got {value!r}")
    return value


def _trainable(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    found = []
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"params[{i}] must be a tensor, got {type(p).__name__}")
        if p.requires_grad:
            found.append(p)
    if not found:
        raise ValueError("params holds no tensor that requires grad: pass e.g. model.parameters()")
    return found


def _distributed_mean(gramian: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return gramian
    synced = gramian.clone()
    dist.all_reduce(synced, op=dist.ReduceOp.SUM)
    return synced / dist.get_world_size()


def _output_weights(weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
    return weights.detach().to(like.device, dtype)


def backward(
    losses: Sequence[torch.Tensor] | torch.Tensor,
    params: Iterable[torch.Tensor],
    method: GramianWeighting | LossWeighting,
    *,
    path: Path = "fast",
    grad_scale: float | Any | None = None,
    combine: Literal["reuse", "recompute"] = "reuse",
    retain_graph: bool = False,
    sync_gramian: bool = True,
) -> BackwardResult:
    """Add ``Σ_i w_i ∇l_i`` to the ``.grad`` of ``params`` with ``w`` from ``method`` (module docstring).

    Args:
        losses: ``K`` scalar tensors sharing one forward graph (or a tensor ``[K]``).
        params: the parameters to update (those not requiring grad are skipped), e.g. ``model.parameters()``.
        method: a Gramian weighting (``MPD()``, ``FairGrad(alpha)``, ``NashMTL()``, ``MGDA()``, ``CAGrad()``,
            ``PCGrad()``, ``LinearScalarization()``, ``Amortised(MPD(), every)``) or a loss weighting
            (``DWA()``, ``UncertaintyWeighting(K)``, ``RLW()``, ``ScaleInvariant()``).
        path: ``"fast"`` (one batched backward) or ``"naive"`` (``K`` backward passes); Gramian methods only.
        grad_scale: the factor the losses were multiplied by (AMP scale and/or ``1/accumulation_steps``), or a
            ``GradScaler``; the weights are solved on unscaled gradients, ``.grad`` stays scaled.
        combine: ``"reuse"`` the per-objective gradients or ``"recompute"`` a weighted backward.
        retain_graph: keep the forward graph after the call (as in ``loss.backward``).
        sync_gramian: average the Gramian across ``torch.distributed`` ranks (when initialised).

    Returns:
        :class:`BackwardResult` (``weights`` ``[K]``, ``residual`` float, ...).
    """
    if path not in ("naive", "fast"):
        raise ValueError(f"path must be 'naive' or 'fast', got {path!r}")
    if combine not in ("reuse", "recompute"):
        raise ValueError(f"combine must be 'reuse' or 'recompute', got {combine!r}")
    stacked = stack_losses(losses)
    trainable = _trainable(params)
    scale = resolve_grad_scale(grad_scale)
    unscaled = stacked.detach() / scale
    k = stacked.shape[0]

    if isinstance(method, LossWeighting):
        own = [p for p in method.parameters() if p.requires_grad]
        combination = method.combine(stacked / scale)
        inputs = trainable + [p for p in own if all(p is not q for q in trainable)]
        torch.autograd.backward(combination.loss * scale, inputs=inputs, retain_graph=retain_graph)
        return BackwardResult(
            weights=_output_weights(combination.weights, stacked),
            residual=0.0,
            losses=unscaled,
            extra=dict(combination.extra),
        )
    if not isinstance(method, GramianWeighting):
        raise ValueError(f"method must be a GramianWeighting or a LossWeighting, got {type(method).__name__}")

    if isinstance(method, LinearScalarization):
        weights = method.weights_for(k, dtype=stacked.dtype, device=stacked.device)
        torch.autograd.backward((weights * stacked).sum(), inputs=trainable, retain_graph=retain_graph)
        return BackwardResult(weights=_output_weights(weights, stacked), residual=0.0, losses=unscaled)
    if isinstance(method, Amortised):
        cached = method.cached_solution(k)
        if cached is not None:  # reuse the last weights: one ordinary backward, no per-objective gradients
            applied = cached.weights.to(stacked.device, stacked.dtype)
            torch.autograd.backward((applied * stacked).sum(), inputs=trainable, retain_graph=retain_graph)
            return BackwardResult(
                weights=_output_weights(cached.weights, stacked),
                residual=float(cached.residual),
                losses=unscaled,
                dropped=cached.dropped,
                ridge=float(cached.ridge),
                extra={"reused_weights": 1.0},
            )

    gradients = objective_gradients(
        stacked, trainable, path=path, retain_graph=retain_graph or combine == "recompute"
    )
    if all(g is None for g in gradients):
        raise ValueError("no loss reaches any of params: check that params are the model's parameters")
    gramian = gramian_from_gradients(gradients) / (scale * scale)
    if sync_gramian:
        gramian = _distributed_mean(gramian)
    nonfinite = not bool(torch.isfinite(gramian).all())
    if nonfinite:
        weights = torch.ones(k, dtype=torch.float64)
        residual, dropped, ridge, extra = 0.0, (), 0.0, {}
    else:
        solution = method.solve(gramian)
        weights, residual = solution.weights, solution.residual
        dropped, ridge, extra = solution.dropped, solution.ridge, {"iterations": float(solution.iterations)}

    if combine == "reuse":
        directions = combine_gradients(gradients, weights)
        del gradients
        reached = [(p, d) for p, d in zip(trainable, directions) if d is not None]
        torch.autograd.backward([p for p, _ in reached], grad_tensors=[d for _, d in reached])
    else:
        del gradients
        applied = weights.to(stacked.device, stacked.dtype)
        torch.autograd.backward((applied * stacked).sum(), inputs=trainable, retain_graph=retain_graph)
    return BackwardResult(
        weights=_output_weights(weights, stacked),
        residual=float(residual),
        losses=unscaled,
        gramian=gramian.detach().to("cpu"),
        nonfinite=nonfinite,
        dropped=dropped,
        ridge=float(ridge),
        extra=extra,
    )
