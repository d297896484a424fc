"""Refresh a Gramian weighting's weights every ``N`` steps and reuse them in between (an explicit trade-off).

Per-objective gradients cost about ``K`` backward passes' worth of compute (batched or not), so an exact
FairGrad / MPD step costs roughly ``(F + K B) / (F + B)`` plain steps (forward ``F``, backward ``B``).
Official Nash-MTL code offers the same knob (``update_weights_every``). ``Amortised(MPD(), every=4)`` solves
on steps ``0, 4, 8, …`` and, in between, applies the last weights with one ordinary backward of
``Σ_i w_i l_i``, so the mean step costs about ``((F + K B) + (every - 1)(F + B)) / every``. The weights are
then up to ``every - 1`` steps stale; ``every=1`` is the exact method.
"""

from __future__ import annotations

from typing import Any

import torch

from fp_gradagg.base import GramianWeighting, Solution

__all__ = ["Amortised"]


class Amortised(GramianWeighting):
    """Wraps a Gramian weighting; :func:`fp_gradagg.backward` reuses its last weights for ``every - 1`` calls.

    Args:
        method: the weighting to refresh (e.g. ``MPD()``).
        every: refresh period in :func:`~fp_gradagg.backward` calls, ``>= 1``.
    """

    def __init__(self, method: GramianWeighting, every: int = 4) -> None:
        if not isinstance(method, GramianWeighting) or isinstance(method, Amortised):
            raise ValueError(
                f"method must be a (non-amortised) GramianWeighting, got {type(method).__name__}"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.method = method
        self.every = every
        self.calls = 0
        self.last: Solution | None = None

    def cached_solution(self, k: int) -> Solution | None:
        """The last solution if it is to be reused for this call (and count the call), else ``None``."""
        due = self.last is None or self.calls % self.every == 0 or self.last.weights.numel() != k
        self.calls += 1
        return None if due else self.last

    def solve(self, gramian: torch.Tensor) -> Solution:
        """Solve with the wrapped method and remember the solution."""
        self.last = self.method.solve(gramian)
        return self.last

    def state_dict(self) -> dict[str, Any]:
        """Calls counted, the last solution (CPU tensors) and the wrapped method's state."""
        last = None
        if self.last is not None:
            last = {
                "weights": self.last.weights.detach().to("cpu").clone(),
                "residual": self.last.residual,
                "dropped": list(self.last.dropped),
                "ridge": self.last.ridge,
                "iterations": self.last.iterations,
            }
        return {"calls": self.calls, "last": last, "method": self.method.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: a resumed run refreshes on the same calls as the straight run."""
        self.calls = int(state["calls"])
        last = state["last"]
        self.last = (
            None
            if last is None
            else Solution(
                weights=torch.as_tensor(last["weights"]).clone(),
                residual=float(last["residual"]),
                dropped=tuple(int(i) for i in last["dropped"]),
                ridge=float(last["ridge"]),
                iterations=int(last["iterations"]),
            )
        )
        self.method.load_state_dict(state.get("method", {}))

    def __repr__(self) -> str:
        return f"Amortised({self.method!r}, every={self.every})"
