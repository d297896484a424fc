"""The uniform interface every weighting implements, and the result and warning types they share.

Three families, each mapping what it needs to one weight per objective:

* :class:`GramianWeighting`: a Gramian ``A = G Gᵀ`` ``[K, K]`` (``G`` stacks the per-objective gradients as
  rows, ``[K, P]``) to weights ``[K]``; the update is ``d = Gᵀ w``. Calling the weighting returns the weights;
  :meth:`GramianWeighting.solve` also returns the solver's residual and what the degenerate-Gramian rule did.
* :class:`LossWeighting`: the ``K`` loss values (and the weighting's own state) to a combined scalar loss that
  is backpropagated once; it needs no per-objective gradients.
* Jacobian-based methods (PCGrad) also act on ``G`` itself; PCGrad's result is a combination of the original
  gradients, so it is a :class:`GramianWeighting` too and runs on the fast path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "DegenerateGramianWarning",
    "GramianWeighting",
    "LossCombination",
    "LossWeighting",
    "Solution",
]


class DegenerateGramianWarning(UserWarning):
    """A Gramian had a zero-gradient objective, no common descent direction, or was all zero."""


@dataclass(frozen=True)
class Solution:
    """What a Gramian weighting computed.

    Attributes:
        weights: ``[K]`` weights, in the dtype and device of the Gramian; finite and ``>= 0``.
        residual: relative residual of the method's optimality equation for the system actually solved
            (FairGrad / Nash-MTL: ``‖B w - w^(-1/alpha)‖ / ‖w^(-1/alpha)‖`` on the kept objectives, with
            ``B`` the Gramian plus any ridge); ``0.0`` for methods without one.
        dropped: objectives given weight 0 because their gradient is (numerically) zero.
        ridge: the relative ridge ``ρ`` of the degenerate-Gramian rule (the Gramian solved is
            ``A + ρ diag(A)`` on the kept objectives), else 0.
        iterations: solver iterations (0 for closed-form methods).
    """

    weights: torch.Tensor
    residual: float = 0.0
    dropped: tuple[int, ...] = ()
    ridge: float = 0.0
    iterations: int = 0


class GramianWeighting(ABC):
    """Maps a Gramian ``[K, K]`` (PSD, symmetric) to weights ``[K]``; the step is ``d = Σ_i w_i g_i``."""

    @abstractmethod
    def solve(self, gramian: torch.Tensor) -> Solution:
        """Weights and diagnostics for ``gramian`` ``[K, K]``."""

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        """The weights ``[K]`` for ``gramian`` ``[K, K]``."""
        return self.solve(gramian).weights

    def state_dict(self) -> dict[str, Any]:
        """The state a resumed run needs (random generators, caches); empty for stateless methods."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (stateless methods accept only an empty dict)."""
        if state:
            raise ValueError(f"{type(self).__name__} is stateless but got state keys {sorted(state)}")


@dataclass(frozen=True)
class LossCombination:
    """A loss weighting's output: the scalar to backpropagate and the ``[K]`` weights it put on the losses."""

    loss: torch.Tensor
    weights: torch.Tensor
    extra: dict[str, float] = field(default_factory=dict)


class LossWeighting(ABC):
    """Maps the ``K`` losses (with their graph) to one scalar loss; keeps state across steps."""

    @abstractmethod
    def combine(self, losses: torch.Tensor, values: torch.Tensor | None = None) -> LossCombination:
        """Combine ``losses`` ``[K]`` (differentiable) into a scalar; the weights are reported detached.

        Args:
            losses: the ``K`` losses, with their graph.
            values: the ``[K]`` loss values the weights (and recorded history) are computed from, when they
                should differ from ``losses.detach()``; :func:`fp_gradagg.backward` passes the mean over
                ``torch.distributed`` ranks so every rank computes the same weights.
        """

    def parameters(self) -> list[torch.Tensor]:
        """Learnable tensors of the weighting itself (uncertainty weighting's log-variances), else none."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """The state a resumed run needs (loss history, random generator); empty for stateless methods."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (stateless methods accept only an empty dict)."""
        if state:
            raise ValueError(f"{type(self).__name__} is stateless but got state keys {sorted(state)}")
