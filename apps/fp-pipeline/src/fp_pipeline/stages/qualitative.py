"""The paper's Fig. 3: perturbed test inputs with the ground truth and every variant's prediction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fp_pipeline.config import section

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["qualitative_figure"]


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
    and every other variant's prediction. Perturbations are seeded, so the figure repeats."""
    import torch

    from fp_parsing.data import CelebAMaskHQ
    from fp_parsing.evaluate import predict
    from fp_parsing.perturbations import PERTURBATIONS, perturb
    from fp_parsing.plots import plot_qualitative_grid
    from fp_parsing.train import load_parser
    from fp_pipeline.stages.parsing_common import run_dir, seeds

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
        model = load_parser(run_dir(variant, seeds(params)[0]) / "model")
        label_maps[variant] = list(predict(model.eval(), batch))
    return plot_qualitative_grid(rows, label_maps)
