"""The FairHuman paper's weightings of its three objectives, by name, over fp-gradagg.

==============  =====================================================  ======================================
name            what                                                   fp-gradagg object
==============  =====================================================  ======================================
``global_only`` the plain diffusion loss (baseline): weights [1, 0, 0]  ``LinearScalarization([1, 0, 0])``
``ls``          linear scalarisation (default the sum; ``weights=``)   ``LinearScalarization``
``dwa``         dynamic weight average, epoch-averaged (``end_epoch``)  ``DWA(mode="epoch")``
``uw``          uncertainty weighting (learnable log-variances)        ``UncertaintyWeighting(3)``
``rlw``         random loss weighting                                  ``RLW``
``si``          scale-invariant (``Σ log l_i``)                        ``ScaleInvariant``
``nash_mtl``    Nash-MTL, the exact bargaining solution                ``NashMTL``
``mpd``         Minimum Potential Delay fairness (FairGrad alpha = 2)  ``MPD``
``mpd_output``  MPD on the output-space Gramian (a speed option)       :class:`OutputSpaceMPD`
==============  =====================================================  ======================================

Keyword options go to the fp-gradagg constructor (``build_weighting``'s options, e.g. ``temperature``,
``seed``, ``every``). Where the public FairHuman code goes wrong, this does not:

* **DWA** is one object for the whole run (the public code built a new one every step, whose weights are then
  always 1); its weights come from the epoch-averaged losses of the two previous epochs, so the trainer calls
  :meth:`FairHumanWeighting.end_epoch` after each epoch; the history is in ``state_dict`` for checkpoints.
* **Nash-MTL** is solved exactly by fp-gradagg (damped Newton, no ECOS): degenerate Gramians follow
  fp-gradagg's documented rule (a zero-gradient objective gets weight 0, a Pareto-stationary one a bounded
  ridge, reported as ``dropped`` / ``ridge`` with a ``DegenerateGramianWarning``); it never falls back to
  ``[1, 1, 1]`` silently. The only ``w = 1`` case is non-finite gradients, flagged as ``nonfinite`` (AMP
  overflow: the scaler skips the step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fp_diffusion.fairhuman.objectives import OBJECTIVES
from fp_diffusion.fairhuman.output_space import OutputSpaceMPD
from fp_gradagg import (
    DWA,
    GramianWeighting,
    LinearScalarization,
    LossWeighting,
    UncertaintyWeighting,
    build_weighting,
)

__all__ = [
    "ALL_WEIGHTINGS",
    "FAIRHUMAN_WEIGHTINGS",
    "FairHumanWeighting",
    "Method",
    "build_fairhuman_weighting",
]

#: The weightings the paper compares (Sec. 4, supp. 8-9).
FAIRHUMAN_WEIGHTINGS: tuple[str, ...] = ("global_only", "ls", "dwa", "uw", "rlw", "si", "nash_mtl", "mpd")
#: Every name :func:`build_fairhuman_weighting` accepts: the paper's plus the output-space speed option.
ALL_WEIGHTINGS: tuple[str, ...] = (*FAIRHUMAN_WEIGHTINGS, "mpd_output")

Method = GramianWeighting | LossWeighting | OutputSpaceMPD


@dataclass
class FairHumanWeighting:
    """A named weighting of the three objectives (``global``, ``face``, ``hand``) for one training run.

    Attributes:
        name: its :data:`ALL_WEIGHTINGS` name.
        method: the fp-gradagg weighting (or :class:`OutputSpaceMPD`) that computes the weights.
    """

    name: str
    method: Method

    @property
    def needs_output(self) -> bool:
        """Whether the step needs the denoiser's output ``ε̂`` (``mpd_output``)."""
        return isinstance(self.method, OutputSpaceMPD)

    def end_epoch(self) -> None:
        """Close an epoch: DWA's epoch means advance; a no-op for the other weightings."""
        if isinstance(self.method, DWA):
            self.method.end_epoch()

    def parameters(self) -> list[torch.Tensor]:
        """The weighting's own learnable tensors (UW's log-variances), to give the optimiser; else ``[]``."""
        return list(self.method.parameters()) if isinstance(self.method, LossWeighting) else []

    def state_dict(self) -> dict[str, Any]:
        """``{"name", "method"}``: the method's state (DWA's history, RLW's generator, UW's log-variances)."""
        return {"name": self.name, "method": self.method.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a state saved by another weighting is refused."""
        if state.get("name") != self.name:
            raise ValueError(f"weighting state is for {state.get('name')!r}, this weighting is {self.name!r}")
        self.method.load_state_dict(state["method"])


def build_fairhuman_weighting(name: str, **options: Any) -> FairHumanWeighting:
    """The weighting ``name`` (one of :data:`ALL_WEIGHTINGS`) of the three FairHuman objectives.

    Raises:
        ValueError: for an unknown name (listing the valid ones) or option (fp-gradagg's message).
    """
    key = str(name).strip().lower().replace("-", "_")
    k = len(OBJECTIVES)
    if key not in ALL_WEIGHTINGS:
        raise ValueError(f"unknown FairHuman weighting {name!r}; valid names: {', '.join(ALL_WEIGHTINGS)}")
    if key == "global_only":
        if options:
            raise ValueError(f"global_only takes no options, got {sorted(options)}")
        method: Method = LinearScalarization([1.0, 0.0, 0.0])
    elif key == "ls":
        method = build_weighting("linear", k, **{"weights": "sum", **options})
    elif key == "dwa":
        method = build_weighting("dwa", k, **{"mode": "epoch", **options})
    elif key == "uw":
        if options:
            raise ValueError(f"uw takes no options, got {sorted(options)}")
        method = UncertaintyWeighting(k)
    elif key == "mpd_output":
        method = OutputSpaceMPD(**options)
    else:
        method = build_weighting(key, k, **options)
    return FairHumanWeighting(key, method)
