"""Loss-based weightings: weights from the loss values (and state), one ordinary backward per step.

None needs per-objective gradients, so each costs one backward, like linear scalarisation. Each keeps its
state on the instance (create one per training run; checkpoint it with ``state_dict`` / ``load_state_dict``).

* :class:`DWA` (Liu et al. 2019, dynamic weight average): ``w_i = K softmax_i(r / T)`` with
  ``r_i = L̄_i(t-1) / L̄_i(t-2)``, the ratio of the epoch-averaged losses of the two previous epochs
  (``mode="epoch"``, default; the trainer calls ``end_epoch()`` at each epoch's end), ``w = 1`` during the
  first two epochs; or of the last two *calls*' losses (``mode="step"``). ``Σ w = K``.
* :class:`UncertaintyWeighting` (Kendall et al. 2018): learnable ``s_i = log σ_i²``, combined loss
  ``Σ_i exp(-s_i) l_i + s_i``; its optimum is ``s_i = log l_i``. Weights ``exp(-s_i)``, ``1`` at the start.
  The log-variances are parameters: give them to the optimiser (``list(weighting.parameters())``).
* :class:`RLW` (Lin et al. 2022, random loss weighting): ``w = softmax(z)``, ``z ~ N(0, I)`` each call.
  ``Σ w = 1``. Its generator's state is in ``state_dict`` (a resumed run draws what the straight run draws).
* :class:`ScaleInvariant` (SI): combined loss ``Σ_i log l_i``, whose gradient is ``Σ_i ∇l_i / l_i``
  (weights ``1 / l_i``); invariant to rescaling any loss. Needs positive losses.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from fp_gradagg.base import LossCombination, LossWeighting

__all__ = ["DWA", "RLW", "ScaleInvariant", "UncertaintyWeighting"]


def _check_losses(losses: torch.Tensor, name: str) -> None:
    if not isinstance(losses, torch.Tensor) or losses.dim() != 1 or losses.numel() == 0:
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"{name} expects the losses as a tensor [K] with K >= 1, got {shape}")


class DWA(LossWeighting):
    """Dynamic weight average (Liu et al. 2019) with temperature ``T``: ``w = K softmax(r / T)``. ``Σ w = K``.

    Args:
        temperature: ``T > 0`` (the paper's 2).
        mode: ``"epoch"`` (the paper): ``r_i = L̄_i(t-1) / L̄_i(t-2)``, the ratio of the *epoch-averaged* losses
            of the two previous epochs, ``w = 1`` during the first two epochs; the trainer calls
            :meth:`end_epoch` after each epoch's last step. ``"step"``: ``r_i = l_i(s-1) / l_i(s-2)``, the last
            two calls' losses, ``w = 1`` for the first two calls (:meth:`end_epoch` does nothing).

    State (``state_dict`` / ``load_state_dict``, for checkpoints): the last two closed epoch means (or step
    losses), the running sum and count of the current epoch, and the number of closed epochs.
    """

    def __init__(self, temperature: float = 2.0, mode: Literal["epoch", "step"] = "epoch") -> None:
        if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if mode not in ("epoch", "step"):
            raise ValueError(f"mode must be 'epoch' or 'step', got {mode!r}")
        self.temperature = float(temperature)
        self.mode = mode
        self.history: list[torch.Tensor] = []  # last two epoch means (or step losses) [K], float64 on the CPU
        self.epoch_sum: torch.Tensor | None = None  # Σ of this epoch's losses [K] (epoch mode)
        self.epoch_count = 0  # calls in this epoch (epoch mode)
        self.epochs = 0  # closed epochs (epoch mode)

    def current_weights(self, k: int) -> torch.Tensor:
        """The ``[K]`` weights the next call will use (float64)."""
        if len(self.history) < 2:
            return torch.ones(k, dtype=torch.float64)
        ratios = self.history[-1] / self.history[-2].clamp_min(1e-12)
        return k * torch.softmax(ratios / self.temperature, dim=0)

    def _check_k(self, k: int) -> None:
        seen = self.history[-1] if self.history else self.epoch_sum
        if seen is not None and seen.numel() != k:
            raise ValueError(f"DWA was called with {seen.numel()} losses before and {k} now")

    def combine(self, losses: torch.Tensor, values: torch.Tensor | None = None) -> LossCombination:
        """``Σ_i w_i l_i`` for ``losses`` ``[K]``; records ``values`` (default ``losses.detach()``) ``[K]``."""
        _check_losses(losses, "DWA")
        k = losses.numel()
        self._check_k(k)
        weights = self.current_weights(k)
        recorded = (losses if values is None else values).detach().to("cpu", torch.float64).reshape(-1)
        if recorded.numel() != k:
            raise ValueError(f"DWA got {k} losses but {recorded.numel()} values")
        if self.mode == "step":
            self.history = [*self.history[-1:], recorded]
        else:
            self.epoch_sum = recorded.clone() if self.epoch_sum is None else self.epoch_sum + recorded
            self.epoch_count += 1
        return LossCombination((weights.to(losses) * losses).sum(), weights)

    def end_epoch(self) -> None:
        """Close the current epoch: its mean losses become ``L̄(t-1)`` for the next epoch's weights.

        Epoch mode only (a no-op in step mode). Raises ``ValueError`` if no call was made since the last one.
        """
        if self.mode == "step":
            return
        if self.epoch_sum is None or self.epoch_count == 0:
            raise ValueError("DWA.end_epoch() was called with no losses recorded since the last epoch end")
        self.history = [*self.history[-1:], self.epoch_sum / self.epoch_count]
        self.epoch_sum, self.epoch_count = None, 0
        self.epochs += 1

    def state_dict(self) -> dict[str, Any]:
        """The state to checkpoint (tensors are float64 CPU copies)."""
        return {
            "temperature": self.temperature,
            "mode": self.mode,
            "history": [h.clone() for h in self.history],
            "epoch_sum": None if self.epoch_sum is None else self.epoch_sum.clone(),
            "epoch_count": self.epoch_count,
            "epochs": self.epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a state without ``mode`` is the older per-step DWA)."""
        self.temperature = float(state["temperature"])
        mode = state.get("mode", "step")
        if mode not in ("epoch", "step"):
            raise ValueError(f"mode must be 'epoch' or 'step', got {mode!r}")
        self.mode = mode
        self.history = [torch.as_tensor(h, dtype=torch.float64).clone() for h in state["history"]]
        epoch_sum = state.get("epoch_sum")
        self.epoch_sum = (
            None if epoch_sum is None else torch.as_tensor(epoch_sum, dtype=torch.float64).clone()
        )
        self.epoch_count = int(state.get("epoch_count", 0))
        self.epochs = int(state.get("epochs", 0))

    def __repr__(self) -> str:
        return f"DWA(temperature={self.temperature:g}, mode={self.mode!r})"


class UncertaintyWeighting(nn.Module, LossWeighting):
    """Homoscedastic-uncertainty weighting with learnable log-variances ``s`` ``[K]`` (module docstring)."""

    def __init__(self, num_objectives: int) -> None:
        super().__init__()
        if isinstance(num_objectives, bool) or not isinstance(num_objectives, int) or num_objectives < 1:
            raise ValueError(f"num_objectives must be a positive int, got {num_objectives!r}")
        self.log_variances = nn.Parameter(torch.zeros(num_objectives))

    def combine(self, losses: torch.Tensor, values: torch.Tensor | None = None) -> LossCombination:
        """``Σ_i exp(-s_i) l_i + s_i`` for ``losses`` ``[K]``; differentiable in the losses and in ``s``.

        ``values`` is ignored: the weights are the parameters ``exp(-s)``, not a function of the losses.
        """
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

    def combine(self, losses: torch.Tensor, values: torch.Tensor | None = None) -> LossCombination:
        """``Σ_i w_i l_i`` with fresh random simplex weights ``[K]`` (``values`` is unused)."""
        _check_losses(losses, "RLW")
        draw = torch.randn(losses.numel(), generator=self.generator, dtype=torch.float64)
        weights = torch.softmax(draw, dim=0)
        return LossCombination((weights.to(losses) * losses).sum(), weights)

    def state_dict(self) -> dict[str, Any]:
        """The generator's state (a ``uint8`` tensor), to checkpoint."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next draws continue the saved sequence."""
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))


class ScaleInvariant(LossWeighting):
    """``Σ_i log l_i``: gradient ``Σ_i ∇l_i / l_i`` (module docstring).

    Args:
        eps: losses are clamped at ``eps`` (an objective at exactly 0 then contributes no gradient).
    """

    def __init__(self, eps: float = 1e-12) -> None:
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        self.eps = float(eps)

    def combine(self, losses: torch.Tensor, values: torch.Tensor | None = None) -> LossCombination:
        """``Σ_i l_i / max(v_i, eps)`` for positive ``losses`` ``[K]`` (``v = values``, default the losses).

        With ``v = l`` its gradient is that of ``Σ_i log l_i``; weights ``1 / v_i`` (0 where ``v_i <= eps``).
        """
        _check_losses(losses, "ScaleInvariant")
        detached = (losses if values is None else values).detach().to("cpu", torch.float64).reshape(-1)
        if detached.numel() != losses.numel():
            raise ValueError(f"ScaleInvariant got {losses.numel()} losses but {detached.numel()} values")
        if bool((detached < 0).any()):
            raise ValueError(
                f"ScaleInvariant needs losses >= 0 (it takes their logarithm), got {detached.tolist()}"
            )
        weights = (1.0 / detached.clamp_min(self.eps)).where(
            detached > self.eps, torch.zeros((), dtype=torch.float64)
        )
        return LossCombination((weights.to(losses) * losses).sum(), weights)
