"""Fair multi-objective gradient aggregation (MPD-FairGrad and baselines).

Gramian-based weightings map ``G Gᵀ`` ``[K, K]`` to weights ``[K]`` (``FairGrad(alpha)(gramian)``); loss-based
weightings combine the losses with their own state; :func:`backward` applies either to ``K`` losses and writes
the combined direction into ``.grad``::

    from fp_gradagg import MPD, LogLosses, backward
    result = backward(losses, model.parameters(), MPD(), path="fast", balance=LogLosses([0.0, 0.0, 0.0]))
    log(result.diagnostics(prefix="mpd/"))

See ``docs/gradagg.md`` for AMP (``scale_losses`` + ``grad_scale=scaler``), ``torch.distributed`` semantics,
DWA's epoch ends and checkpointing (every weighting has ``state_dict`` / ``load_state_dict``).
"""

from fp_gradagg.amortised import Amortised
from fp_gradagg.balance import LogLosses
from fp_gradagg.base import (
    DegenerateGramianWarning,
    GramianWeighting,
    LossCombination,
    LossWeighting,
    Solution,
)
from fp_gradagg.cagrad import CAGrad
from fp_gradagg.conditioning import reset_degenerate_warnings
from fp_gradagg.distributed import average_gradients, average_values
from fp_gradagg.factory import WEIGHTINGS, build_weighting
from fp_gradagg.fairgrad import MPD, FairGrad, solve_fairgrad_fixed_point
from fp_gradagg.gradients import gramian_from_gradients, objective_gradients
from fp_gradagg.linear import LinearScalarization
from fp_gradagg.loss_weighting import DWA, RLW, ScaleInvariant, UncertaintyWeighting
from fp_gradagg.mgda import MGDA
from fp_gradagg.min_norm import min_norm_point
from fp_gradagg.nash import NashMTL
from fp_gradagg.pcgrad import PCGrad
from fp_gradagg.step import BackwardResult, FastPathFallbackWarning, backward, scale_losses

__version__ = "0.1.0"

#: MPD fairness under the name of the weighting it is (FairGrad with alpha = 2).
MinimumPotentialDelay = MPD

__all__ = [
    "Amortised",
    "BackwardResult",
    "CAGrad",
    "DWA",
    "DegenerateGramianWarning",
    "FairGrad",
    "FastPathFallbackWarning",
    "GramianWeighting",
    "LinearScalarization",
    "LogLosses",
    "LossCombination",
    "LossWeighting",
    "MGDA",
    "MPD",
    "MinimumPotentialDelay",
    "NashMTL",
    "PCGrad",
    "RLW",
    "ScaleInvariant",
    "Solution",
    "UncertaintyWeighting",
    "WEIGHTINGS",
    "__version__",
    "average_gradients",
    "average_values",
    "backward",
    "build_weighting",
    "gramian_from_gradients",
    "min_norm_point",
    "objective_gradients",
    "reset_degenerate_warnings",
    "scale_losses",
    "solve_fairgrad_fixed_point",
]
