"""The paper's Fig. 3: perturbed test inputs with the ground truth and every variant's prediction.

With several training seeds the figure shows one model per variant: seed 0's when 0 is in ``parsing.seeds``,
else the first seed's (:func:`qualitative_seed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fp_pipeline.config import section

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["qualitative_figure", "qualitative_seed"]


def qualitative_seed(params: dict[str, Any]) -> int:
    """The training seed whose models the figure shows: 0 if it is one of ``parsing.seeds``, else the first."""
    from fp_pipeline.stages.parsing_common import seeds

    values = seeds(params)
    return 0 if 0 in values else values[0]


def qualitative_figure(
    params: dict[str, Any],
    variants: Sequence[str],
    *,
    baseline: str,
    image_position: int = 0,
    severity: float = 0.6,
    seed: int = 0,
) -> Figure:
    """One row per perturbation (plus the clean input) of one test image; columns: ground truth, the baseline
    and every other variant's prediction (the models of :func:`qualitative_seed`). Perturbations are seeded,
    so the figure repeats. ``seed`` seeds the perturbations, not the choice of model."""
    import torch

    from fp_parsing.data import CelebAMaskHQ
    from fp_parsing.evaluate import predict
    from fp_parsing.model import load_parser
    from fp_parsing.perturbations import PERTURBATIONS, perturb
    from fp_parsing.plots import plot_qualitative_grid
    from fp_pipeline.stages.parsing_common import run_dir

    test_set = CelebAMaskHQ(
        Path(section(params, "data.root")),
        split="test",
        image_size=section(params, "data.image_size"),
        label_order=section(params, "data.label_order"),
    )
    item = test_set[min(image_position, len(test_set) - 1)]
    image = item["image"][None]
    rows = [("clean", image[0])]
    for k, kind in enumerate(PERTURBATIONS):
        generator = torch.Generator().manual_seed(seed * 1_000 + k)
        rows.append((f"{kind} {severity:g}", perturb(image, kind, severity, generator=generator)[0]))
    ordered = [baseline, *[v for v in variants if v != baseline]]
    label_maps: dict[str, list[torch.Tensor]] = {"ground truth": [item["mask"]] * len(rows)}
    batch = torch.stack([row[1] for row in rows])
    for variant in ordered:
        model = load_parser(run_dir(variant, qualitative_seed(params)) / "model")
        label_maps[variant] = list(predict(model.eval(), batch))
    return plot_qualitative_grid(rows, label_maps)
