"""How one training step turns the three objectives into a gradient: a homotopy schedule or an fp-gradagg method.

* ``weighting: schedule``: ``loss = α(t)·L_acc + β(t)·L_rob + γ(t)·L_fair`` with the schedule's weights, one
  ordinary backward.
* any fp-gradagg method (``mpd``, ``nash_mtl``, ``mgda``, ``cagrad``, ``pcgrad``, ``linear``, ``dwa``, ``uw``,
  ``rlw``, ``si``): :func:`fp_gradagg.backward` on ``[L_acc, L_rob, L_fair]`` writes the method's direction.
  The method sees each objective's distance from perfect, ``d_i = L_i - min_i >= 0``
  (:data:`fp_parsing.losses.OBJECTIVE_MINIMA`; robustness is ``-soft mIoU`` in ``[-1, 0]``): the same gradients,
  and values that the loss-based methods can take ratios (DWA) and logarithms (SI) of. Gramian methods balance
  log-losses ``log d_i`` by default (``balance: log``, :class:`fp_gradagg.LogLosses`): MPD weights follow
  gradient size, and the fairness loss (a variance of mIoU, ~1e-4) has a gradient orders of magnitude below
  Dice's, so on raw losses it would take almost all of the step.

Under fp16 the losses are scaled by the GradScaler before the per-objective gradients are taken
(``scaler.scale``, which also initialises the scaler) and fp-gradagg solves on the unscaled Gramian, so the
weights do not depend on the loss scale. The weights logged as ``weights/{alpha,beta,gamma}`` are, for every
method, the shares of the weights in effect on the raw losses, comparable with a schedule's (α, β, γ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from fp_parsing.losses import OBJECTIVE_MINIMA, combine

__all__ = [
    "GRADIENT_WEIGHTINGS",
    "OBJECTIVE_NAMES",
    "WEIGHTINGS",
    "ObjectiveWeighting",
]

OBJECTIVE_NAMES = ("accuracy", "robustness", "fairness")
WEIGHT_NAMES = ("alpha", "beta", "gamma")
GRADIENT_WEIGHTINGS = ("mpd", "nash_mtl", "mgda", "cagrad", "pcgrad", "linear", "dwa", "uw", "rlw", "si")
WEIGHTINGS = ("schedule", *GRADIENT_WEIGHTINGS)
BALANCES = ("log", "raw")


class ObjectiveWeighting:
    """Combines one batch's objectives into ``.grad`` and says which weights it used.

    Args:
        name: one of :data:`WEIGHTINGS`.
        schedule: ``t -> (α, β, γ)`` (used by ``"schedule"``).
        options: keyword options of the fp-gradagg method (e.g. ``{"mode": "epoch"}`` for DWA).
        balance: ``"log"`` (log-losses for the Gramian methods) or ``"raw"``.
        path: fp-gradagg's per-objective gradient path, ``"fast"`` or ``"naive"``.
    """

    def __init__(
        self,
        name: str,
        schedule: Any,
        *,
        options: Mapping[str, Any] | None = None,
        balance: str = "log",
        path: str = "fast",
    ) -> None:
        if name not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {list(WEIGHTINGS)}, got {name!r}")
        if balance not in BALANCES:
            raise ValueError(f"balance must be one of {list(BALANCES)}, got {balance!r}")
        self.name = name
        self.schedule = schedule
        self.path = path
        self.method: Any = None
        self.balance: Any = None
        if name != "schedule":
            from fp_gradagg import GramianWeighting, LogLosses, build_weighting

            self.method = build_weighting(name, len(OBJECTIVE_NAMES), **dict(options or {}))
            if balance == "log" and isinstance(self.method, GramianWeighting):
                self.balance = LogLosses([0.0] * len(OBJECTIVE_NAMES))  # on d_i = L_i - min_i

    @property
    def adaptive(self) -> bool:
        """Whether the weights come from an fp-gradagg method (every term is then needed every step)."""
        return self.method is not None

    def parameters(self) -> list[torch.nn.Parameter]:
        """Learnable parameters of the method (uncertainty weighting's log-variances), for the optimiser."""
        if isinstance(self.method, torch.nn.Module):
            return [p for p in self.method.parameters() if p.requires_grad]
        return []

    def stateful(self) -> Any | None:
        """The object to checkpoint (``state_dict`` / ``load_state_dict``), or None."""
        method = self.method
        if method is not None and hasattr(method, "state_dict") and hasattr(method, "load_state_dict"):
            return method
        return None

    def needs(self, progress: float) -> dict[str, bool]:
        """Which terms this step must compute (a schedule skips terms whose weight is 0)."""
        if self.adaptive:
            return {"robustness": True, "fairness": True}
        _, beta, gamma = self.schedule(progress)
        return {"robustness": beta > 0, "fairness": gamma > 0}

    def end_epoch(self) -> None:
        """Tell an epoch-averaging method (DWA) that an epoch ended."""
        for hook in ("end_epoch", "step_epoch"):
            if hasattr(self.method, hook):
                getattr(self.method, hook)()
                return

    def backward(
        self,
        terms: Mapping[str, torch.Tensor],
        params: Sequence[torch.Tensor],
        progress: float,
        harness: Any,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Write this step's direction into ``.grad``; returns the combined loss (detached) and what to log.

        Args:
            terms: ``{"accuracy", "robustness", "fairness"}`` scalar losses of one graph.
            params: the parameters to update (the model's and the method's own).
            progress: the schedule's time (epochs, fractional).
            harness: the :class:`fp_core.training.TrainingHarness` (its accelerator backward and GradScaler).
        """
        if not self.adaptive:
            weights = tuple(float(w) for w in self.schedule(progress))
            loss = combine(terms, weights)
            harness.backward(loss)
            return loss.detach(), dict(zip((f"weights/{n}" for n in WEIGHT_NAMES), weights, strict=True))
        from fp_gradagg import backward, scale_losses

        scaler = harness.scaler  # scaling the losses also initialises it (else scaler.step fails)
        distances = [terms[name].float() - OBJECTIVE_MINIMA[name] for name in OBJECTIVE_NAMES]
        scaled = scale_losses(distances, scaler)
        result = backward(
            scaled, params, self.method, path=self.path, grad_scale=scaler, balance=self.balance
        )
        record = {f"{self.name}/{k}": v for k, v in result.diagnostics(names=WEIGHT_NAMES).items()}
        effective = result.effective_weights.double().cpu().tolist()
        total = sum(effective)
        shares = [w / total for w in effective] if total > 0 else [1.0, 0.0, 0.0]
        record.update(dict(zip((f"weights/{n}" for n in WEIGHT_NAMES), shares, strict=True)))
        loss = combine({k: v.detach() for k, v in terms.items()}, shares)
        return loss, record
