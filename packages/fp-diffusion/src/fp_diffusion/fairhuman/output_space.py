"""Output-space MPD: MPD weights from the Gramian of the losses' gradients w.r.t. the denoiser's OUTPUT.

The exact FairHuman step solves MPD, ``(G Gᵀ) w = w^(-1/2)``, on the Gramian of the per-objective gradients
with respect to the trained parameters (``G`` ``[K, P]``): ``K`` gradients through the whole UNet. The speed
option here (in the spirit of MGDA-UB, Sener & Koltun 2018) takes the gradients with respect to the
network's output ``ε̂`` ``[B, C, h, w]`` instead: ``z_i = ∂l_i/∂ε̂`` is cheap (the losses are elementwise
functions of ``ε̂``: one batched ``autograd.grad`` through the loss ops only, not the network), and

    ``A^out_ij = <z_i, z_j>``  (float64, ``[K, K]``),

is solved by fp-gradagg's :class:`~fp_gradagg.MPD` (same degenerate-Gramian rule), then ONE backward of
``Σ_i w_i l_i`` goes through the network. Cost: one ordinary backward plus ``K`` tiny ones.

**It is an approximation.** The parameter gradients are ``g_i = Jᵀ z_i`` with ``J = ∂ε̂/∂θ``, so the exact
Gramian is ``Z J Jᵀ Zᵀ``, and the two agree only when ``J Jᵀ`` is (a multiple of) the identity, which a
UNet's Jacobian is not. Two consequences: the *relative* weights differ from exact MPD's (the benchmark
``benchmarks/fairhuman_step.py`` reports the cosine of the two combined directions), and so does their
*size*: MPD's weights scale as ``A^(-2/3)``, and ``‖z_i‖`` is not ``‖g_i‖``, so the step size differs from
exact MPD's by a factor that depends on the network (tune the learning rate for this option separately).
Under ``torch.distributed`` each rank's output-space Gramian covers its own samples; the global batch's is
``(1/R²) Σ_r A_r`` (the gradients w.r.t. disjoint outputs are orthogonal), which is what is solved, so every
rank gets the same weights; the local weighted backward is then averaged by DDP as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from fp_gradagg import MPD, BackwardResult
from fp_gradagg.gradients import stack_losses
from fp_gradagg.step import resolve_grad_scale

__all__ = ["OutputSpaceMPD", "output_gramian", "output_space_backward"]


def output_gramian(stacked: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``A_ij = <∂l_i/∂ε̂, ∂l_j/∂ε̂>`` ``[K, K]`` (float64) for losses ``[K]`` and the output ``[B, C, h, w]``.

    One batched ``torch.autograd.grad`` (identity cotangents) through the loss ops; the graph is kept for the
    weighted backward that follows. An objective that does not reach ``output`` has a zero row.
    """
    if not isinstance(output, torch.Tensor) or not output.requires_grad:
        raise ValueError(
            "output must be the denoiser's prediction eps_hat [B, C, h, w] with its graph (requires_grad), "
            f"got {type(output).__name__}"
            + ("" if not isinstance(output, torch.Tensor) else f" with requires_grad={output.requires_grad}")
        )
    k = stacked.shape[0]
    cotangents = torch.eye(k, dtype=stacked.dtype, device=stacked.device)
    (grads,) = torch.autograd.grad(
        stacked,
        [output],
        grad_outputs=cotangents,
        is_grads_batched=True,
        retain_graph=True,
        allow_unused=True,
    )
    if grads is None:
        raise ValueError("no loss reaches output: pass the eps_hat the losses were computed from")
    flat = grads.reshape(k, -1).to(torch.float64)
    return flat @ flat.T


def _global_gramian(gramian: torch.Tensor) -> torch.Tensor:
    """``(1/R²) Σ_r A_r`` under ``torch.distributed`` (module docstring), else ``gramian``."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return gramian
    ranks = dist.get_world_size()
    total = gramian.clone()
    dist.all_reduce(total)
    return total / (ranks * ranks)


class OutputSpaceMPD:
    """MPD solved on the output-space Gramian (module docstring); ``solver`` is the MPD used (default ``MPD()``).

    Keyword options are :class:`~fp_gradagg.MPD`'s (``zero_tol``, ``stationary_tol``, ``tol``, ``max_iter``).
    Stateless (``state_dict`` is empty).
    """

    def __init__(self, solver: MPD | None = None, **options: Any) -> None:
        if solver is not None and options:
            raise ValueError(f"give either solver or MPD options, not both (got options {sorted(options)})")
        self.solver = solver if solver is not None else MPD(**options)

    def state_dict(self) -> dict[str, Any]:
        """Empty: nothing to checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Accept only the empty state."""
        if state:
            raise ValueError(f"OutputSpaceMPD is stateless but got state keys {sorted(state)}")

    def __repr__(self) -> str:
        return f"OutputSpaceMPD({self.solver!r})"


def output_space_backward(
    losses: Sequence[torch.Tensor] | torch.Tensor,
    output: torch.Tensor,
    params: Iterable[torch.Tensor],
    method: OutputSpaceMPD,
    *,
    grad_scale: float | Any | None = None,
    retain_graph: bool = False,
) -> BackwardResult:
    """Add ``Σ_i w_i ∇l_i`` to ``.grad`` of ``params`` with ``w`` = MPD on the output-space Gramian.

    Same conventions as :func:`fp_gradagg.backward`: the losses as given (``S · l_i`` with
    ``grad_scale=S``, weights solved on the unscaled ``A / S²``); ``.grad`` accumulates; a non-finite Gramian
    applies ``w = 1`` (so the inf/NaN reaches ``.grad`` and a ``GradScaler`` skips the step) and sets
    ``nonfinite``. ``result.gramian`` is the unscaled OUTPUT-space Gramian, ``result.path`` is ``"output"``.
    """
    if not isinstance(method, OutputSpaceMPD):
        raise ValueError(f"method must be an OutputSpaceMPD, got {type(method).__name__}")
    stacked = stack_losses(losses)
    trainable = [p for p in params if isinstance(p, torch.Tensor) and p.requires_grad]
    if not trainable:
        raise ValueError("params holds no tensor that requires grad: pass the trained parameters as a list")
    scale = resolve_grad_scale(grad_scale)
    gramian = _global_gramian(output_gramian(stacked, output) / (scale * scale))
    k = stacked.shape[0]
    nonfinite = not bool(torch.isfinite(gramian).all())
    if nonfinite:
        weights = torch.ones(k, dtype=torch.float64)
        residual, dropped, ridge, iterations = 0.0, (), 0.0, 0
    else:
        solution = method.solver.solve(gramian.cpu())
        weights, residual = solution.weights, solution.residual
        dropped, ridge, iterations = solution.dropped, solution.ridge, solution.iterations
    applied = weights.to(stacked.device, stacked.dtype)
    torch.autograd.backward((applied * stacked).sum(), inputs=trainable, retain_graph=retain_graph)
    return BackwardResult(
        weights=applied.detach(),
        residual=float(residual),
        losses=stacked.detach() / scale,
        gramian=gramian.detach().cpu(),
        nonfinite=nonfinite,
        dropped=tuple(dropped),
        ridge=float(ridge),
        extra={"iterations": float(iterations)},
        effective_weights=applied.detach(),
        iterations=int(iterations),
        path="output",
    )
