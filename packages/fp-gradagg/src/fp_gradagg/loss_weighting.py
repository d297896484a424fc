"""Loss-based weightings: weights from the loss values (and state), one ordinary backward per step.

None needs per-objective gradients, so each costs one backward, like linear scalarisation. Each keeps its
state on the instance (create one per training run; checkpoint it with ``state_dict`` / ``load_state_dict``).

* :class:`DWA` (Liu et al. 2019, dynamic weight average): ``w_i = K softmax_i(r / T)`` with
  ``r_i = l_i(t-1) / l_i(t-2)``, the last two *calls*' losses; ``w = 1`` for the first two calls. ``Σ w = K``.
* :class:`UncertaintyWeighting` (Kendall et al. 2018): learnable ``s_i = log σ_i²``, combined loss
  ``Σ_i exp(-s_i) l_i + s_i``; its optimum is ``s_i = log l_i``. Weights ``exp(-s_i)``, ``1`` at the start.
  The log-variances are parameters: give them to the optimiser (``list(weighting.parameters())``).
* :class:`RLW` (Lin et al. 2022, random loss weighting): ``w = softmax(z)``, ``z ~ N(0, I)`` each call.
  ``Σ w = 1``.
* :class:`ScaleInvariant` (SI): combined loss ``Σ_i log l_i``, whose gradient is ``Σ_i ∇l_i / l_i``
  (weights ``1 / l_i``); invariant to rescaling any loss. Needs positive losses.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fp_gradagg.base import LossCombination, LossWeighting

__all__ = ["DWA", "RLW", "ScaleInvariant", "UncertaintyWeighting"]


def _check_losses(losses: torch.Tensor, name: str) -> None:
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1 or losses.numel() == 0:
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"{name} expects the losses as a tensor [K] with K >= 1, got {shape}")


class DWA(LossWeighting):
    """Dynamic weight average with temperature ``T`` (module docstring). ``Σ w = K``."""

    def __init__(self, temperature: float = 2.0) -> None:
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.history: list[torch.Tensor] = []  # the last two calls' losses, float64 on the CPU

    def current_weights(self, k: int) -> torch.Tensor:
        """The ``[K]`` weights the next call will use (float64)."""
        if len(self.history) < 2:
            return torch.ones(k, dtype=torch.float64)
        ratios = self.history[-1] / self.history[-2].clamp_min(1e-12)
        return k * torch.softmax(ratios / self.temperature, dim=0)

    def combine(self, losses: torch.Tensor) -> LossCombination:
        """``Σ_i w_i l_i`` with the weights from the two previous calls; records ``losses`` ``[K]``."""
        _check_losses(losses, "DWA")
        k = losses.numel()
        if self.history and self.history[-1].numel() != k:
            raise ValueError(f"DWA was called with {self.history[-1].numel()} losses before and {k} now")
        weights = self.current_weights(k)
        self.history = [*self.history[-1:], losses.detach().to("cpu", torch.float64)]
        return LossCombination((weights.to(losses) * losses).sum(), weights)

    def state_dict(self) -> dict[str, object]:
        """The state to checkpoint."""
        return {"temperature": self.temperature, "history": [h.clone() for h in self.history]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`."""
        self.temperature = float(state["temperature"])  # type: ignore[arg-type]
        history = state["history"]
        self.history = [torch.as_tensor(h, dtype=torch.float64) for h in history]  # type: ignore[union-attr]


class UncertaintyWeighting(nn.Module, LossWeighting):
    """Homoscedastic-uncertainty weighting with learnable log-variances ``s`` ``[K]`` (module docstring)."""

    def __init__(self, num_objectives: int) -> None:
        super().__init__()
        if isinstance(num_objectives, bool) or not isinstance(num_objectives, int) or num_objectives < 1:
            raise ValueError(f"num_objectives must be a positive int, got {num_objectives!r}")
        self.log_variances = nn.Parameter(torch.zeros(num_objectives))

    def combine(self, losses: torch.Tensor) -> LossCombination:
        """``Σ_i exp(-s_i) l_i + s_i`` for ``losses`` ``[K]``; differentiable in the losses and in ``s``."""
        _check_losses(losses, "UncertaintyWeighting")
        if losses.numel() != self.log_variances.numel():
            raise ValueError(
                f"UncertaintyWeighting has {self.log_variances.numel()} log-variances "
                f"but got {losses.numel()} losses"
            )
        log_variances = self.log_variances.to(losses.device, losses.dtype)
        precision = torch.exp(-log_variances)
        loss = (precision * losses + log_variances).sum()
        return LossCombination(loss, precision.detach().to("cpu", torch.float64))


class RLW(LossWeighting):
    """Random loss weighting: ``softmax`` of a standard normal draw per call. ``Σ w = 1``.

    Args:
        seed: seed of the draws (give every data-parallel rank the same seed so they agree).
    """

    def __init__(self, seed: int | None = None) -> None:
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def combine(self, losses: torch.Tensor) -> LossCombination:
        """``Σ_i w_i l_i`` with fresh random simplex weights ``[K]``."""
        _check_losses(losses, "RLW")
        draw = torch.randn(losses.numel(), generator=self.generator, dtype=torch.float64)
        weights = torch.softmax(draw, dim=0)
        return LossCombination((weights.to(losses) * losses).sum(), weights)


class ScaleInvariant(LossWeighting):
    """``Σ_i log l_i``: gradient ``Σ_i ∇l_i / l_i`` (module docstring).

    Args:
        eps: losses are clamped at ``eps`` (an objective at exactly 0 then contributes no gradient).
    """

    def __init__(self, eps: float = 1e-12) -> None:
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.eps = float(eps)

    def combine(self, losses: torch.Tensor) -> LossCombination:
        """``Σ_i log max(l_i, eps)`` for positive ``losses`` ``[K]``; weights ``1 / l_i``."""
        _check_losses(losses, "ScaleInvariant")
        detached = losses.detach()
        if bool((detached < 0).any()):
            raise ValueError(
                f"ScaleInvariant needs losses >= 0 (it takes their logarithm), got {detached.tolist()}"
            )
        clamped = losses.clamp_min(self.eps)
        weights = (1.0 / clamped.detach().to("cpu", torch.float64)).where(
            detached.to("cpu") > self.eps, torch.zeros((), dtype=torch.float64)
        )
        return LossCombination(torch.log(clamped).sum(), weights)
