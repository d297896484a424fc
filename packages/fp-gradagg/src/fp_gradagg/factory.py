"""A trainer's config string to a weighting: ``build_weighting("mpd", 3)``, ``build_weighting("dwa", 3, mode="step")``.

Names and their options (the constructors' keyword arguments):

=============  =====================================  ==============================================
name           class                                  options
=============  =====================================  ==============================================
``mpd``        :class:`~fp_gradagg.MPD`               zero_tol, stationary_tol, tol, max_iter
``fairgrad``   :class:`~fp_gradagg.FairGrad`          alpha, zero_tol, stationary_tol, tol, max_iter
``nash_mtl``   :class:`~fp_gradagg.NashMTL`           zero_tol, stationary_tol, tol, max_iter
``mgda``       :class:`~fp_gradagg.MGDA`              –
``cagrad``     :class:`~fp_gradagg.CAGrad`            c
``pcgrad``     :class:`~fp_gradagg.PCGrad`            seed
``linear``     :class:`~fp_gradagg.LinearScalarization`  weights (``"sum"``, ``"mean"`` or ``K`` numbers)
``dwa``        :class:`~fp_gradagg.DWA`               temperature, mode
``uw``         :class:`~fp_gradagg.UncertaintyWeighting`  –  (``K`` log-variances)
``rlw``        :class:`~fp_gradagg.RLW`               seed
``si``         :class:`~fp_gradagg.ScaleInvariant`    eps
=============  =====================================  ==============================================

Every Gramian method (all but ``linear`` and the loss weightings) also takes ``every=N``: wrap it in
:class:`~fp_gradagg.Amortised` (``every=1``, the default, is the exact method, unwrapped).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fp_gradagg.amortised import Amortised
from fp_gradagg.base import GramianWeighting, LossWeighting
from fp_gradagg.cagrad import CAGrad
from fp_gradagg.fairgrad import MPD, FairGrad
from fp_gradagg.linear import LinearScalarization
from fp_gradagg.loss_weighting import DWA, RLW, ScaleInvariant, UncertaintyWeighting
from fp_gradagg.mgda import MGDA
from fp_gradagg.nash import NashMTL
from fp_gradagg.pcgrad import PCGrad

__all__ = ["WEIGHTINGS", "build_weighting"]

#: Config name -> class, in the order the error messages list them.
WEIGHTINGS: dict[str, Callable[..., GramianWeighting | LossWeighting]] = {
    "mpd": MPD,
    "fairgrad": FairGrad,
    "nash_mtl": NashMTL,
    "mgda": MGDA,
    "cagrad": CAGrad,
    "pcgrad": PCGrad,
    "linear": LinearScalarization,
    "dwa": DWA,
    "uw": UncertaintyWeighting,
    "rlw": RLW,
    "si": ScaleInvariant,
}
_AMORTISABLE = {"mpd", "fairgrad", "nash_mtl", "mgda", "cagrad", "pcgrad"}


def _option_names(cls: Callable[..., Any]) -> list[str]:
    signature = inspect.signature(cls)
    return [name for name in signature.parameters if name not in ("self", "num_objectives")]


def build_weighting(name: str, num_objectives: int, **options: Any) -> GramianWeighting | LossWeighting:
    """The weighting called ``name`` (module docstring) for ``num_objectives`` objectives.

    Args:
        name: one of :data:`WEIGHTINGS` (case-insensitive, ``-`` read as ``_``).
        num_objectives: ``K >= 1``; sets ``uw``'s parameters and checks ``linear``'s fixed weights.
        options: the class's keyword arguments, plus ``every`` for the Gramian methods.

    Raises:
        ValueError: naming the valid names for an unknown ``name``, or the accepted options for an unknown
            option (and the constructor's own errors for bad values).
    """
    if isinstance(num_objectives, bool) or not isinstance(num_objectives, int) or num_objectives < 1:
        raise ValueError(f"num_objectives must be a positive int, got {num_objectives!r}")
    key = str(name).strip().lower().replace("-", "_")
    if key not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {name!r}; valid names: {', '.join(WEIGHTINGS)}")
    cls = WEIGHTINGS[key]
    accepted = _option_names(cls) + (["every"] if key in _AMORTISABLE else [])
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for weighting {key!r}; accepted: {', '.join(accepted) or 'none'}"
        )
    every = options.pop("every", 1)
    if key == "uw":
        method: GramianWeighting | LossWeighting = UncertaintyWeighting(num_objectives)
    else:
        method = cls(**options)
    if isinstance(method, LinearScalarization) and method.fixed is not None:
        method.weights_for(num_objectives)  # raises on a wrong number of fixed weights
    if every != 1:
        assert isinstance(method, GramianWeighting)
        method = Amortised(method, every=every)
    return method
