"""Gradient-arborescence emitters for QDGS, with the ``"filter"`` selection trap of ribs 0.12 closed.

The trap: with ``selection_rule="filter"`` the parents are the solutions the archive accepted. In an iteration
where none was accepted, ribs 0.12's ``GradientArborescenceEmitter.tell`` recombines an *empty* parent set into
a new mean of zeros and steps the solution point by ``0 - theta``, i.e. towards the origin of latent space
(CMA-ES itself skips the update when there are no parents). With ``restart_rule="no_improvement"`` the emitter
restarts from an elite straight after, which hides it; with ``"basic"`` or an iteration count (the public QDGS
code runs ``"basic"`` with the default ``"filter"``) the point drifts to the origin iteration after iteration.

:class:`QDGSArborescenceEmitter` undoes that step: when ``"filter"`` finds no parents and the emitter did not
restart, the gradient optimiser (point and Adam moments) is put back as it was before ``tell``. The sampler's
default is ``"mu"`` (the better half are parents), which never has an empty parent set.

Second guard: a restart draws the new point from the archive's elites; if the search archive is still empty
(every objective so far at or below ``threshold_min``) ribs raises ``IndexError``; this emitter restarts from
its ``x0`` instead.
"""

from __future__ import annotations

import copy

import numpy as np
from numpy.typing import ArrayLike
from ribs.archives import ArchiveBase
from ribs.emitters import GradientArborescenceEmitter

from fp_core.seeds import derive_seed
from fp_qdgs.config import SamplerConfig

__all__ = ["QDGSArborescenceEmitter", "make_emitters"]


class QDGSArborescenceEmitter(GradientArborescenceEmitter):
    """``GradientArborescenceEmitter`` whose ``"filter"`` rule never pulls the point to the origin.

    Same arguments as the ribs class, except that ``selection_rule`` defaults to ``"mu"`` here. Uses private attributes of ribs 0.12 (``_grad_opt``; on an empty-archive
    restart also ``_opt``, ``_ranker``, ``_restarts``); ribs is pinned to ``>=0.12,<0.13``.
    """

    def __init__(self, archive: ArchiveBase, *, selection_rule: str = "mu", **kwargs) -> None:
        super().__init__(archive, selection_rule=selection_rule, **kwargs)
        self._qdgs_selection_rule = selection_rule
        self.empty_filter_iterations = 0  # iterations where "filter" found no parents (step undone)

    def tell(
        self,
        solution: ArrayLike,
        objective: ArrayLike,
        measures: ArrayLike,
        add_info: dict[str, np.ndarray],
        **fields: ArrayLike,
    ) -> None:
        """ribs' ``tell``, with the empty-``"filter"`` step undone and an empty-archive restart from ``x0``."""
        no_parents = not np.any(np.asarray(add_info["status"]) > 0)
        saved = (
            copy.deepcopy(self._grad_opt) if no_parents and self._qdgs_selection_rule == "filter" else None
        )
        restarts = self.restarts
        try:
            super().tell(solution, objective, measures, add_info, **fields)
        except IndexError:
            if not self.archive.empty:
                raise
            self._restart_from(self.x0)  # ribs wanted an elite to restart from; there is none yet
        if saved is not None and self.restarts == restarts:
            self._grad_opt = saved
            self.empty_filter_iterations += 1

    def _restart_from(self, x: np.ndarray) -> None:
        self._grad_opt.reset(np.asarray(x))
        self._opt.reset(np.zeros(self._num_coefficients))
        self._ranker.reset(self, self.archive)
        self._restarts += 1


def make_emitters(
    config: SamplerConfig, archive: ArchiveBase, x0: np.ndarray, *, purpose: str | int = "start"
) -> list[QDGSArborescenceEmitter]:
    """``config.num_emitters`` emitters on ``archive``; ``x0 [num_emitters, n]`` (one start point each).

    Emitter ``i`` is seeded with ``derive_seed(config.seed, "emitter", i, purpose)`` (``purpose`` differs on
    resume so a resumed run does not replay the first run's draws).
    """
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 2 or x0.shape[0] != config.num_emitters:
        raise ValueError(f"x0 must have shape [num_emitters={config.num_emitters}, n], got {x0.shape}")
    return [
        QDGSArborescenceEmitter(
            archive,
            x0=x0[i],
            sigma0=config.sigma0,
            lr=config.step_size_lr,
            ranker=config.ranker,
            grad_opt=config.grad_opt,
            selection_rule=config.selection_rule,
            restart_rule=config.restart_rule,
            normalize_grad=config.normalize_grad,
            batch_size=config.batch_size,
            seed=derive_seed(config.seed, "emitter", i, purpose) % (2**32),
        )
        for i in range(config.num_emitters)
    ]
