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
  With a ``GradScaler`` the losses must be scaled *by the scaler* (``scaler.scale(torch.stack(losses))``, or
  :func:`scale_losses`): that call also initialises the scaler's scale tensor, without which
  ``scaler.step`` fails ("... but _scale is None"); an enabled scaler whose scale was never initialised is
  rejected here with that advice.
  If the (scaled) gradients overflow, nothing is solved: ``w = 1`` is applied so the inf/NaN reaches ``.grad``
  and the scaler skips the step; ``result.nonfinite`` is True.
* **Balancing** (``balance=LogLosses(minima)``, :mod:`fp_gradagg.balance`): the method weights the balanced
  losses ``l_i / c_i`` (``c_i`` detached); ``result.weights`` are its weights on them and
  ``result.effective_weights = w_i / c_i`` the weights in effect on the raw losses.
* **accelerate / DDP** (:mod:`fp_gradagg.distributed`). Only autograd and ``.grad`` are touched, so wrapped
  (accelerate-prepared) models work. The per-objective gradients come from ``torch.autograd.grad`` (no
  ``.grad`` writes, no DDP hooks). Under ``torch.distributed`` with ``distributed="global"`` (default) they are
  averaged over ranks (``K × P`` numbers all-reduced), so every rank solves the same weights on the global
  batch's Gramian and writes the same direction ``Σ_i w_i ḡ_i``; that write is one
  ``torch.autograd.backward`` call, which fires DDP's gradient hooks once: DDP then averages ``R`` identical
  tensors, which returns them (up to round-off in the sum; exact for ``R = 2``). Wrap the call in
  ``model.no_sync()`` to skip that redundant all-reduce. The fast path cannot batch a graph holding a
  differentiable collective (``torch.distributed.nn.functional.all_reduce`` has no vmap batching rule):
  under ``torch.distributed`` the fast path keeps the graph for one retry, and on that error warns once and
  uses the naive path from then on (:class:`FastPathFallbackWarning`).

Paths (Gramian methods): ``"fast"`` (one batched backward over the K objectives) or ``"naive"``
(K backward passes), see :mod:`fp_gradagg.gradients`. Then ``combine="reuse"`` (default) writes
``Σ_i w_i g_i`` from the per-objective gradients already computed (one ``backward`` on the parameters
themselves, no second pass through the model); ``combine="recompute"`` runs a single weighted backward
``Σ_i w_i l_i`` through the model instead (what the gradient-free hooks of some wrappers may need).
Linear scalarisation and loss-based methods need no per-objective gradients: one ordinary backward; so does
:class:`~fp_gradagg.Amortised` on the calls where it reuses its last weights. Under ``torch.distributed`` those
write each rank's local direction, which DDP's own averaging turns into the global one (so does
``combine="recompute"``); a loss weighting computes its weights from the rank-averaged loss values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from fp_gradagg.amortised import Amortised
from fp_gradagg.balance import LogLosses
from fp_gradagg.base import GramianWeighting, LossWeighting
from fp_gradagg.distributed import Distributed, average_gradients, average_values, world_size
from fp_gradagg.gradients import (
    Path,
    combine_gradients,
    gramian_from_gradients,
    objective_gradients,
    stack_losses,
)
from fp_gradagg.linear import LinearScalarization

__all__ = [
    "BackwardResult",
    "FastPathFallbackWarning",
    "backward",
    "resolve_grad_scale",
    "scale_losses",
]


class FastPathFallbackWarning(UserWarning):
    """The fast (vmap) path could not batch the backward (e.g. a differentiable collective): naive is used."""


_FAST_PATH_FAILED = False  # set once the fast path failed under torch.distributed in this process


@dataclass(frozen=True)
class BackwardResult:
    """What :func:`backward` applied.

    Attributes:
        weights: ``[K]`` the method's weights on the losses it weighted (the balanced losses when
            ``balance`` was given), float32 (or the losses' wider dtype), on their device; always finite.
        residual: relative residual of the method's fixed point (FairGrad / MPD / Nash-MTL), ``0.0`` for
            the other methods.
        losses: ``[K]`` detached, unscaled raw losses (given losses divided by ``grad_scale``; this rank's).
        gramian: ``[K, K]`` unscaled Gramian (float64, CPU) of the objectives solved on (global under
            ``distributed="global"``) for Gramian methods, else ``None``.
        nonfinite: the (scaled) gradients held inf/NaN; no weights were solved (``w = 1`` was applied).
        dropped: objectives given weight 0 by the degenerate-Gramian rule (zero gradient).
        ridge: the relative ridge the degenerate-Gramian rule added (``A + ridge · diag(A)``), else 0.
        extra: method-specific scalars (e.g. solver iterations).
        effective_weights: ``[K]`` weights in effect on the raw losses, ``weights / divisors`` (equal to
            ``weights`` without balancing).
        divisors: ``[K]`` float64 balancing divisors ``c_i`` (``None`` without balancing).
        iterations: solver iterations (0 for closed-form methods and reused weights).
        reused: :class:`~fp_gradagg.Amortised` reused its last weights (no Gramian this call).
        path: the path the per-objective gradients took (``"naive"`` / ``"fast"``; ``None`` if none needed).
    """

    weights: torch.Tensor
    residual: float
    losses: torch.Tensor
    gramian: torch.Tensor | None = None
    nonfinite: bool = False
    dropped: tuple[int, ...] = ()
    ridge: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    effective_weights: torch.Tensor | None = None
    divisors: torch.Tensor | None = None
    iterations: int = 0
    reused: bool = False
    path: str | None = None

    def diagnostics(self, prefix: str = "", names: Sequence[str] | None = None) -> dict[str, float]:
        """Every diagnostic as one flat ``{name: float}`` dict for a logger.

        Keys (each prefixed with ``prefix``): ``weight_<n>``, ``effective_weight_<n>``, ``loss_<n>`` per
        objective (``<n>`` from ``names`` or ``0 … K-1``), ``divisor_<n>`` when balanced, ``residual``,
        ``ridge``, ``dropped`` (how many), ``nonfinite`` and ``reused`` (0 / 1), ``iterations``, then the
        method's ``extra`` scalars under their own names.
        """
        k = int(self.weights.numel())
        labels = [str(i) for i in range(k)] if names is None else [str(n) for n in names]
        if len(labels) != k or len(set(labels)) != k:
            raise ValueError(f"names must be {k} distinct names, got {names!r}")
        out: dict[str, float] = {}
        effective = self.weights if self.effective_weights is None else self.effective_weights
        columns = {"weight": self.weights, "effective_weight": effective, "loss": self.losses}
        if self.divisors is not None:
            columns["divisor"] = self.divisors
        for column, values in columns.items():
            for label, value in zip(labels, values.detach().to("cpu", torch.float64).tolist(), strict=True):
                out[f"{prefix}{column}_{label}"] = float(value)
        out[f"{prefix}residual"] = float(self.residual)
        out[f"{prefix}ridge"] = float(self.ridge)
        out[f"{prefix}dropped"] = float(len(self.dropped))
        out[f"{prefix}nonfinite"] = float(self.nonfinite)
        out[f"{prefix}iterations"] = float(self.iterations)
        out[f"{prefix}reused"] = float(self.reused)
        for key, value in self.extra.items():
            if key not in ("iterations", "reused_weights"):
                out.setdefault(f"{prefix}{key}", float(value))
        return out


def resolve_grad_scale(grad_scale: float | Any | None) -> float:
    """The loss scale ``S`` as a float: ``None`` -> 1, a positive finite number, or a ``GradScaler``'s scale.

    A ``GradScaler`` (anything with ``get_scale()``) that is disabled counts as 1. An enabled one whose scale
    tensor was never initialised (``scaler.scale(...)`` not called yet) is rejected: its ``step`` would fail.
    """
    if grad_scale is None:
        return 1.0
    if hasattr(grad_scale, "get_scale"):
        enabled = grad_scale.is_enabled() if hasattr(grad_scale, "is_enabled") else True
        if enabled and getattr(grad_scale, "_scale", 1.0) is None:
            raise ValueError(
                "grad_scale is a GradScaler whose scale was never initialised (scaler.scale(...) was not "
                "called), so scaler.step would fail with '_scale is None': scale the losses with the scaler "
                "(losses = scaler.scale(torch.stack(losses)), or fp_gradagg.scale_losses(losses, scaler)) "
                "and pass those with grad_scale=scaler"
            )
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


def scale_losses(losses: Sequence[torch.Tensor] | torch.Tensor, scaler: Any | None) -> torch.Tensor:
    """``scaler.scale(losses)`` as one tensor ``[K]`` (with the graph); the stacked losses for ``None``.

    This is the AMP call to make before ``backward(scaled, params, method, grad_scale=scaler)``: it multiplies
    by the scaler's current scale and initialises the scaler's state, so ``scaler.step`` / ``update`` work.
    """
    stacked = stack_losses(losses)
    return stacked if scaler is None else scaler.scale(stacked)


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


def _output_weights(weights: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
    return weights.detach().to(like.device, dtype)


def _is_batching_error(error: RuntimeError) -> bool:
    message = str(error).lower()
    return "batching rule" in message or "vmap" in message or "batched" in message


def _gradients(
    stacked: torch.Tensor, trainable: list[torch.Tensor], path: Path, retain_graph: bool, ranks: int
) -> tuple[list[torch.Tensor | None], str]:
    """Per-objective gradients, with the one-time fast -> naive fallback under ``torch.distributed``."""
    global _FAST_PATH_FAILED
    if path == "fast" and ranks > 1:
        if not _FAST_PATH_FAILED:
            try:  # keep the graph so the naive path can run on it if vmap cannot batch the backward
                return objective_gradients(stacked, trainable, path="fast", retain_graph=True), "fast"
            except RuntimeError as error:
                if not _is_batching_error(error):
                    raise
                _FAST_PATH_FAILED = True
                warnings.warn(
                    "fp_gradagg.backward: the fast (vmap) path cannot batch this backward under "
                    f"torch.distributed ({str(error).splitlines()[0][:160]}); using path='naive' from now on "
                    "in this process",
                    FastPathFallbackWarning,
                    stacklevel=3,
                )
        path = "naive"
    return objective_gradients(stacked, trainable, path=path, retain_graph=retain_graph), path


def backward(
    losses: Sequence[torch.Tensor] | torch.Tensor,
    params: Iterable[torch.Tensor],
    method: GramianWeighting | LossWeighting,
    *,
    path: Path = "fast",
    grad_scale: float | Any | None = None,
    combine: Literal["reuse", "recompute"] = "reuse",
    retain_graph: bool = False,
    balance: LogLosses | None = None,
    distributed: Distributed = "global",
    group: object | None = None,
) -> BackwardResult:
    """Add ``Σ_i w_i ∇l_i`` to the ``.grad`` of ``params`` with ``w`` from ``method`` (module docstring).

    Args:
        losses: ``K`` scalar tensors sharing one forward graph (or a tensor ``[K]``).
        params: the parameters to update (those not requiring grad are skipped), e.g. ``model.parameters()``.
        method: a Gramian weighting (``MPD()``, ``FairGrad(alpha)``, ``NashMTL()``, ``MGDA()``, ``CAGrad()``,
            ``PCGrad()``, ``LinearScalarization()``, ``Amortised(MPD(), every)``) or a loss weighting
            (``DWA()``, ``UncertaintyWeighting(K)``, ``RLW()``, ``ScaleInvariant()``); see
            :func:`~fp_gradagg.build_weighting`.
        path: ``"fast"`` (one batched backward) or ``"naive"`` (``K`` backward passes); Gramian methods only.
        grad_scale: the factor the losses were multiplied by (AMP scale and/or ``1/accumulation_steps``), or a
            ``GradScaler`` (whose ``scale`` produced the losses); the weights are solved on unscaled gradients,
            ``.grad`` stays scaled.
        combine: ``"reuse"`` the per-objective gradients or ``"recompute"`` a weighted backward.
        retain_graph: keep the forward graph after the call (as in ``loss.backward``).
        balance: ``LogLosses(minima)`` to weigh ``log(l_i - m_i)`` instead of ``l_i``; ``None`` for the raw
            losses.
        distributed: under ``torch.distributed``: ``"global"`` (average the per-objective gradients over
            ranks, solve on the global Gramian), ``"gramian_mean"`` (the former, biased mean of per-rank
            Gramians) or ``"local"`` (each rank's own Gramian); ignored single-process.
        group: the ``torch.distributed`` process group (default the world).

    Returns:
        :class:`BackwardResult` (``weights`` ``[K]``, ``effective_weights`` ``[K]``, ``residual``, ...).
    """
    if path not in ("naive", "fast"):
        raise ValueError(f"path must be 'naive' or 'fast', got {path!r}")
    if combine not in ("reuse", "recompute"):
        raise ValueError(f"combine must be 'reuse' or 'recompute', got {combine!r}")
    if distributed not in ("global", "gramian_mean", "local"):
        raise ValueError(f"distributed must be 'global', 'gramian_mean' or 'local', got {distributed!r}")
    if balance is not None and not isinstance(balance, LogLosses):
        raise ValueError(f"balance must be None or a LogLosses, got {type(balance).__name__}")
    stacked = stack_losses(losses)
    trainable = _trainable(params)
    scale = resolve_grad_scale(grad_scale)
    unscaled = stacked.detach() / scale
    k = stacked.shape[0]
    ranks = world_size(group)
    values = average_values(unscaled, group) if distributed == "global" and ranks > 1 else unscaled

    divisors: torch.Tensor | None = None
    if balance is not None:
        divisors = balance.divisors(values)
        stacked = stacked / divisors.to(stacked.device, stacked.dtype)
        values = values / divisors.to(values.device, values.dtype)

    def result(weights: torch.Tensor, **fields: Any) -> BackwardResult:
        applied = _output_weights(weights, stacked)
        effective = applied if divisors is None else applied / divisors.to(applied.device, applied.dtype)
        return BackwardResult(
            weights=applied,
            losses=unscaled,
            effective_weights=effective,
            divisors=None if divisors is None else divisors.detach().to("cpu"),
            **fields,
        )

    if isinstance(method, LossWeighting):
        own = [p for p in method.parameters() if p.requires_grad]
        combination = method.combine(stacked / scale, values=values)
        extra_inputs = [p for p in own if all(p is not q for q in trainable)]
        torch.autograd.backward(
            combination.loss * scale, inputs=trainable + extra_inputs, retain_graph=retain_graph
        )
        if distributed == "global" and ranks > 1:  # e.g. UW's log-variances, which DDP does not know about
            for p in own:
                if p.grad is not None:
                    p.grad.copy_(average_values(p.grad, group))
        return result(combination.weights, residual=0.0, extra=dict(combination.extra))
    if not isinstance(method, GramianWeighting):
        raise ValueError(f"method must be a GramianWeighting or a LossWeighting, got {type(method).__name__}")

    if isinstance(method, LinearScalarization):
        weights = method.weights_for(k, dtype=stacked.dtype, device=stacked.device)
        torch.autograd.backward((weights * stacked).sum(), inputs=trainable, retain_graph=retain_graph)
        return result(weights, residual=0.0)
    if isinstance(method, Amortised):
        cached = method.cached_solution(k)
        if cached is not None:  # reuse the last weights: one ordinary backward, no per-objective gradients
            applied = cached.weights.to(stacked.device, stacked.dtype)
            torch.autograd.backward((applied * stacked).sum(), inputs=trainable, retain_graph=retain_graph)
            return result(
                cached.weights,
                residual=float(cached.residual),
                dropped=cached.dropped,
                ridge=float(cached.ridge),
                extra={"reused_weights": 1.0},
                reused=True,
            )

    gradients, used_path = _gradients(stacked, trainable, path, retain_graph or combine == "recompute", ranks)
    if all(g is None for g in gradients):
        raise ValueError("no loss reaches any of params: check that params are the model's parameters")
    if distributed == "global" and ranks > 1:
        gradients = average_gradients(gradients, trainable, group)
    gramian = gramian_from_gradients(gradients) / (scale * scale)
    if distributed == "gramian_mean" and ranks > 1:
        gramian = average_values(gramian, group)
    nonfinite = not bool(torch.isfinite(gramian).all())
    iterations = 0
    if nonfinite:
        weights = torch.ones(k, dtype=torch.float64)
        residual, dropped, ridge, extra = 0.0, (), 0.0, {}
    else:
        solution = method.solve(gramian)
        weights, residual, iterations = solution.weights, solution.residual, solution.iterations
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
    return result(
        weights,
        residual=float(residual),
        gramian=gramian.detach().to("cpu"),
        nonfinite=nonfinite,
        dropped=dropped,
        ridge=float(ridge),
        extra=extra,
        iterations=int(iterations),
        path=used_path,
    )
