"""Fair multi-objective gradient aggregation (MPD-FairGrad and baselines).

Gramian-based weightings map ``G Gᵀ`` ``[K, K]`` to weights ``[K]`` (``FairGrad(alpha)(gramian)``); loss-based
weightings combine the losses with their own state; :func:`backward` applies either to ``K`` losses and writes
the combined direction into ``.grad``::

    from fp_gradagg import MPD, backward
    result = backward(losses, model.parameters(), MPD(), path="fast")
    result.weights, result.residual
"""

from fp_gradagg.amortised import Amortised
from fp_gradagg.base import (
    DegenerateGramianWarning,
    GramianWeighting,
    LossCombination,
    LossWeighting,
    Solution,
)
from fp_gradagg.cagrad import CAGrad
from fp_gradagg.conditioning import reset_degenerate_warnings
from fp_gradagg.fairgrad import MPD, FairGrad, solve_fairgrad_fixed_point
from fp_gradagg.gradients import gramian_from_gradients, objective_gradients
from fp_gradagg.linear import LinearScalarization
from fp_gradagg.loss_weighting import DWA, RLW, ScaleInvariant, UncertaintyWeighting
from fp_gradagg.mgda import MGDA
from fp_gradagg.min_norm import min_norm_point
from fp_gradagg.nash import NashMTL
from fp_gradagg.pcgrad import PCGrad
from fp_gradagg.step import BackwardResult, backward

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
    "GramianWeighting",
    "LinearScalarization",
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
    "__version__",
    "backward",
    "gramian_from_gradients",
    "min_norm_point",
    "objective_gradients",
    "reset_degenerate_warnings",
    "solve_fairgrad_fixed_point",
]
