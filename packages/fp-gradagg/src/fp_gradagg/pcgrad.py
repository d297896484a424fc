"""PCGrad (Yu et al. 2020): project each gradient off the gradients it conflicts with, then sum.

Math. For each objective ``i``, in a random order of the others ``j``: if ``g_i^PC · g_j < 0``, set
``g_i^PC <- g_i^PC - (g_i^PC · g_j / ‖g_j‖²) g_j`` (projection onto the normal plane of the *original*
``g_j``). The step is ``d = Σ_i g_i^PC``. For ``K = 2`` the projected gradients conflict with neither original
gradient; for ``K > 2`` a later projection can reintroduce a conflict with an earlier ``g_j`` (as in the
paper).

Every projection subtracts a multiple of an original gradient, so ``g_i^PC = Σ_k C_ik g_k`` with coefficients
that need only inner products: :meth:`PCGrad.solve` computes ``C`` from the Gramian and returns
``w = Σ_i C_i`` (``d = Gᵀ w``), which runs on the fast path without the Jacobian. :meth:`PCGrad.project` is
the Jacobian form ``[K, P] -> [K, P]``, the textbook algorithm. Both draw the same orders from the same seed.

Weights: ``w_i = 1`` when nothing conflicts (the loss sum). Cost: the Gramian plus O(K³) (Gramian form) or
O(K² P) (Jacobian form).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fp_gradagg.base import GramianWeighting, Solution
from fp_gradagg.conditioning import gramian_to_numpy

__all__ = ["PCGrad"]


class PCGrad(GramianWeighting):
    """Projecting conflicting gradients (module docstring).

    Args:
        seed: seed of the random projection orders (``None``: fresh entropy). Each call draws new orders; give
            every data-parallel rank the same seed so they agree.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def state_dict(self) -> dict[str, Any]:
        """The random generator's state (a plain dict), to checkpoint."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next orders continue the saved sequence."""
        self.rng.bit_generator.state = state["rng"]

    def draw_orders(self, k: int) -> list[np.ndarray]:
        """For each objective ``i``, a random order of the other ``K - 1`` objectives."""
        orders = []
        for i in range(k):
            others = np.array([j for j in range(k) if j != i], dtype=int)
            orders.append(self.rng.permutation(others))
        return orders

    @staticmethod
    def coefficients(matrix: np.ndarray, orders: list[np.ndarray]) -> np.ndarray:
        """``C`` ``[K, K]`` with ``g_i^PC = Σ_k C_ik g_k``, from the Gramian ``[K, K]`` and the orders."""
        k = matrix.shape[0]
        coefficients = np.eye(k)
        for i in range(k):
            for j in orders[i]:
                if matrix[j, j] <= 0.0:
                    continue
                overlap = float(coefficients[i] @ matrix[:, j])  # g_i^PC · g_j
                if overlap < 0.0:
                    coefficients[i, j] -= overlap / matrix[j, j]
        return coefficients

    def solve(self, gramian: torch.Tensor) -> Solution:
        """Weights ``w = Σ_i C_i`` ``[K]`` so that ``Gᵀ w = Σ_i g_i^PC``."""
        matrix = gramian_to_numpy(gramian)
        weights = self.coefficients(matrix, self.draw_orders(matrix.shape[0])).sum(axis=0)
        return Solution(weights=torch.as_tensor(weights, dtype=gramian.dtype, device=gramian.device))

    def project(self, jacobian: torch.Tensor) -> torch.Tensor:
        """The projected gradients ``[K, P]`` from the per-objective gradients ``[K, P]``."""
        if not isinstance(jacobian, torch.Tensor) or jacobian.dim() != 2:
            shape = tuple(jacobian.shape) if isinstance(jacobian, torch.Tensor) else type(jacobian).__name__
            raise ValueError(f"jacobian must be a tensor [K, P], got {shape}")
        k = jacobian.shape[0]
        orders = self.draw_orders(k)
        projected = jacobian.clone()
        norms2 = (jacobian * jacobian).sum(dim=1)
        for i in range(k):
            for j in orders[i]:
                if norms2[j] <= 0:
                    continue
                overlap = projected[i] @ jacobian[j]
                if overlap < 0:
                    projected[i] = projected[i] - (overlap / norms2[j]) * jacobian[j]
        return projected

    def __repr__(self) -> str:
        return "PCGrad()"
