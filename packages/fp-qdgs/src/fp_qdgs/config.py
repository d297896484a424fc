"""The sampler's settings: one frozen dataclass, checked when it is built and against the scorer's ``k``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["SamplerConfig"]


@dataclass(frozen=True)
class SamplerConfig:
    """Settings of a QDGS run (CMA-MAEGA: CMA-MAE archive + gradient-arborescence emitters).

    Archive:
        measure_dims: cells per measure, one entry per measure (``len == k``).
        measure_ranges: ``(low, high)`` per measure, in the measures' own units; measures outside are clipped
            into the edge cells by ribs (the sampler logs the share clipped).
        learning_rate: CMA-MAE archive learning rate ``alpha`` (0.02 in the public code; 1.0 is CMA-MEGA).
        threshold_min: CMA-MAE initial cell threshold; an objective at or below it never enters the search
            archive, so it should sit below every objective the scorer can return.
        objective_offset: subtracted from every objective in the QD score (ribs' ``qd_score_offset``), so the QD
            score counts ``objective - offset`` per elite; set it to a lower bound of the objective.

    Emitters (``ribs.emitters.GradientArborescenceEmitter``):
        num_emitters, batch_size (solutions per emitter per ``ask``, besides the one ``ask_dqd`` point),
        sigma0 (initial std of the gradient coefficients), step_size_lr (learning rate of the gradient
        optimiser ``grad_opt`` that moves the solution point), ranker, normalize_grad,
        selection_rule ("mu": the better half are parents; "filter": the archive-accepted ones are, see
        :mod:`fp_qdgs.emitters` for its trap), restart_rule ("basic", "no_improvement" or an iteration count).

    Run:
        iterations, seed, x0_samples (prior draws scored to choose the emitters' start, best objective wins;
        these count as generator evaluations), eval_batch (batch size of those draws and of the random
        baseline), checkpoint_every (iterations between checkpoints; 0 never).
    """

    measure_dims: tuple[int, ...]
    measure_ranges: tuple[tuple[float, float], ...]
    learning_rate: float = 0.02
    threshold_min: float = 0.0
    objective_offset: float = 0.0
    num_emitters: int = 1
    batch_size: int = 36
    sigma0: float = 0.5
    step_size_lr: float = 0.5
    grad_opt: str = "adam"
    ranker: str = "imp"
    normalize_grad: bool = True
    selection_rule: Literal["mu", "filter"] = "mu"
    restart_rule: Literal["basic", "no_improvement"] | int = "basic"
    iterations: int = 1000
    seed: int = 0
    x0_samples: int = 512
    eval_batch: int = 64
    checkpoint_every: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, saved with checkpoints

    def __post_init__(self) -> None:
        object.__setattr__(self, "measure_dims", tuple(int(d) for d in self.measure_dims))
        object.__setattr__(
            self, "measure_ranges", tuple((float(lo), float(hi)) for lo, hi in self.measure_ranges)
        )
        if not self.measure_dims:
            raise ValueError("measure_dims is empty; give one cell count per measure")
        if len(self.measure_dims) != len(self.measure_ranges):
            raise ValueError(
                f"measure_dims has {len(self.measure_dims)} entries but measure_ranges has "
                f"{len(self.measure_ranges)}; give one (low, high) range per measure"
            )
        for i, d in enumerate(self.measure_dims):
            if d < 1:
                raise ValueError(f"measure_dims[{i}] = {d}; every measure needs at least one cell")
        for i, (lo, hi) in enumerate(self.measure_ranges):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"measure_ranges[{i}] = ({lo}, {hi}) is not finite")
            if not lo < hi:
                raise ValueError(
                    f"measure_ranges[{i}] = ({lo}, {hi}) is reversed or empty; expected low < high"
                )
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {self.learning_rate}")
        if not math.isfinite(self.threshold_min):
            raise ValueError(f"threshold_min must be finite for CMA-MAE, got {self.threshold_min}")
        if self.selection_rule not in ("mu", "filter"):
            raise ValueError(f"selection_rule must be 'mu' or 'filter', got {self.selection_rule!r}")
        if isinstance(self.restart_rule, bool) or not (
            self.restart_rule in ("basic", "no_improvement")
            or (isinstance(self.restart_rule, int) and self.restart_rule >= 1)
        ):
            raise ValueError(
                f"restart_rule must be 'basic', 'no_improvement' or an int >= 1, got {self.restart_rule!r}"
            )
        for name in ("num_emitters", "batch_size", "iterations", "x0_samples", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2 and self.selection_rule == "mu":
            raise ValueError("selection_rule 'mu' needs batch_size >= 2 (the better half are the parents)")
        if self.sigma0 <= 0 or self.step_size_lr <= 0:
            raise ValueError(
                f"sigma0 and step_size_lr must be > 0, got {self.sigma0} and {self.step_size_lr}"
            )
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def num_measures(self) -> int:
        """``k``."""
        return len(self.measure_dims)

    @property
    def num_cells(self) -> int:
        """Cells in each archive: ``prod(measure_dims)``."""
        return math.prod(self.measure_dims)

    @property
    def evaluations_per_iteration(self) -> int:
        """Generator evaluations per iteration: ``num_emitters * (1 + batch_size)`` (DQD point + ask batch)."""
        return self.num_emitters * (1 + self.batch_size)

    def check_measures(self, num_measures: int) -> None:
        """Raise if the archive has a different number of dimensions than the scorer has measures."""
        if num_measures != self.num_measures:
            raise ValueError(
                f"the scorer has k={num_measures} measures but the archive config has {self.num_measures} "
                f"dimensions (measure_dims={self.measure_dims}); give one dim and one range per measure"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        out = asdict(self)
        out["measure_dims"] = list(self.measure_dims)
        out["measure_ranges"] = [list(r) for r in self.measure_ranges]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplerConfig:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["measure_dims"] = tuple(data["measure_dims"])
        data["measure_ranges"] = tuple(tuple(r) for r in data["measure_ranges"])
        return cls(**data)
