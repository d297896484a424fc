"""Evaluation of a parser on one split: accuracy, fairness across demographic groups, robustness curves.

All numbers come from confusion matrices accumulated over the whole split (fp-metrics), never from means of
per-batch scores. Per image, a confusion matrix is kept (``[N, C, C]`` int64: 361 numbers per image) so that
every attribute's group mIoU is exact.

Headline accuracy keys of :meth:`Evaluation.to_metrics` (definitions in :mod:`fp_metrics.segmentation`):
``miou`` (class mean, background included), ``dice`` (class-mean Dice over the same classes),
``foreground_f1`` (micro F1 pooled over every foreground pixel), ``foreground_mean_f1`` (class-mean F1 over
the 18 parts, FaRL's number), ``pixel_accuracy``.

Runs on the accelerator: ``device=None`` picks CUDA when available, else the CPU (:func:`resolve_device`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fp_core.atomic import write_json
from fp_metrics import (
    ConfusionMatrix,
    GroupFairness,
    SegmentationScores,
    group_fairness,
    per_image_confusion,
    segmentation_scores,
)
from fp_parsing.perturbations import PERTURBATIONS, perturb

__all__ = [
    "DEFAULT_SEVERITIES",
    "Evaluation",
    "evaluate_parser",
    "per_group_miou",
    "predict",
    "resolve_device",
]

DEFAULT_SEVERITIES = (0.25, 0.5, 0.75, 1.0)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass
class Evaluation:
    """Everything :func:`evaluate_parser` measured.

    Attributes:
        class_names: the ``C`` class names, background first.
        scores: clean split-level scores (IoU / Dice per class, mIoU, pixel accuracy, foreground F1).
        groups: per grouping (each of the 40 attributes, and ``skin_tone`` when known) its group mIoU,
            variance across groups, max gap and worst group.
        fairness_attributes: the groupings averaged into the headline ``fairness/variance_mean``.
        robustness_curves: ``{perturbation: {"severity": [0, s1, ...], "miou": [clean, m1, ...]}}``.
    """

    class_names: list[str]
    scores: SegmentationScores
    groups: dict[str, GroupFairness]
    fairness_attributes: list[str]
    robustness_curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_metrics(self) -> dict[str, float]:
        """Flat ``name -> value`` metrics for ``dvc metrics show`` and MLflow (NaN-valued ones left out)."""
        s = self.scores
        metrics: dict[str, float] = {
            "miou": s.miou,
            "miou_no_background": s.miou_no_background,
            "dice": s.mean_dice,
            "foreground_f1": s.foreground_f1,
            "foreground_mean_f1": s.foreground_mean_f1,
            "pixel_accuracy": s.pixel_accuracy,
        }
        for name, iou in zip(self.class_names, s.iou.tolist(), strict=True):
            metrics[f"iou/{name}"] = iou
        headline = []
        for name in self.fairness_attributes:
            summary = self.groups.get(name)
            if summary is None:
                continue
            metrics[f"fairness/{name}/variance"] = summary.variance
            metrics[f"fairness/{name}/max_gap"] = summary.max_gap
            metrics[f"fairness/{name}/worst_miou"] = summary.worst_miou
            if math.isfinite(summary.variance):
                headline.append(summary.variance)
        if headline:
            metrics["fairness/variance_mean"] = sum(headline) / len(headline)
        if self.robustness_curves:
            clean = s.miou
            perturbed_means = []
            for kind, curve in self.robustness_curves.items():
                values = curve["miou"][1:]
                mean = sum(values) / len(values)
                metrics[f"robustness/{kind}/miou"] = mean
                metrics[f"robustness/{kind}/drop"] = clean - mean
                perturbed_means.append(mean)
            overall = sum(perturbed_means) / len(perturbed_means)
            metrics["robustness/miou"] = overall
            metrics["robustness/drop"] = clean - overall
            metrics["robustness/kept"] = overall / clean if clean > 0 else float("nan")
        return {key: float(value) for key, value in metrics.items() if math.isfinite(float(value))}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view (NaN written as null)."""
        scores = self.scores.as_dict()
        return {
            "class_names": self.class_names,
            "scores": {
                key: ([_finite(v) for v in value] if isinstance(value, list) else _finite(value))
                for key, value in scores.items()
            },
            "groups": {
                name: {
                    **summary.as_dict(),
                    "miou": [_finite(v) for v in summary.miou.tolist()],
                    "variance": _finite(summary.variance),
                    "max_gap": _finite(summary.max_gap),
                    "worst_miou": _finite(summary.worst_miou),
                }
                for name, summary in self.groups.items()
            },
            "fairness_attributes": self.fairness_attributes,
            "robustness_curves": self.robustness_curves,
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`as_dict` atomically."""
        return write_json(path, self.as_dict())


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Label maps of a batch: ``images [B, 3, H, W]`` in [0, 1] -> int64 ``[B, H, W]``."""
    return model(images).argmax(dim=1)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` (or ``"auto"``): CUDA when available, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def evaluate_parser(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 16,
    perturbations: Sequence[str] = PERTURBATIONS,
    severities: Sequence[float] = DEFAULT_SEVERITIES,
    fairness_attributes: Sequence[str] = (
        "Male",
        "Young",
        "Pale_Skin",
        "Eyeglasses",
        "Wearing_Hat",
        "skin_tone",
    ),
    seed: int = 0,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Evaluation:
    """Evaluate ``model`` on ``dataset`` (items like :class:`fp_parsing.data.CelebAMaskHQ`'s).

    The model is moved to ``device`` (default: CUDA when available, else the CPU) and batches of
    ``batch_size`` images ``[B, 3, H, W]`` go there; the perturbation noise is drawn on that device, so a GPU
    and a CPU evaluation of the same model differ in their noise draws (each repeats exactly on its own).

    Clean pass: split-level scores and a confusion matrix per image for every attribute's groups (and the
    skin-tone groups). Robustness: the split again under each perturbation at each severity; the noise of
    batch ``b`` at severity ``s`` of perturbation ``k`` is seeded from ``(seed, k, s, b)``, so runs repeat.
    """
    from tqdm.auto import tqdm

    for kind in perturbations:
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; expected some of {PERTURBATIONS}")
    num_classes = len(dataset.class_names)  # type: ignore[attr-defined]
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    clean = ConfusionMatrix(num_classes)
    perturbed = {
        (k, s): ConfusionMatrix(num_classes)
        for k in range(len(perturbations))
        for s in range(len(severities))
    }
    per_image: list[torch.Tensor] = []
    attributes: list[torch.Tensor] = []
    skin_tone: list[torch.Tensor] = []
    # One pass over the split: each batch is decoded once and evaluated clean and under every perturbation.
    for b, batch in enumerate(tqdm(loader, desc="evaluate", disable=not progress, leave=False)):
        images = batch["image"].to(device, non_blocking=True)
        masks = batch["mask"].to(device, non_blocking=True)
        pred = predict(model, images)
        clean.update(pred, masks)
        per_image.append(per_image_confusion(pred, masks, num_classes).cpu())
        attributes.append(batch["attributes"].bool())
        skin_tone.append(batch["skin_tone"].long())
        for (k, s), metric in perturbed.items():
            generator = torch.Generator(device=device).manual_seed(
                seed * 1_000_003 + k * 10_007 + s * 101 + b
            )
            metric.update(
                predict(model, perturb(images, perturbations[k], float(severities[s]), generator=generator)),
                masks,
            )
    cm = torch.cat(per_image)
    attribute_names = list(dataset.attribute_names)  # type: ignore[attr-defined]
    groups = group_fairness(cm, torch.cat(attributes), attribute_names)
    tones = torch.cat(skin_tone)
    tone_names = getattr(dataset, "skin_tone_groups", None)
    if tone_names and bool((tones >= 0).any()):
        groups.update(group_fairness(cm, {"skin_tone": tones}, {"skin_tone": list(tone_names)}))
    scores = segmentation_scores(clean.matrix)
    curves = {
        kind: {
            "severity": [0.0, *(float(severity) for severity in severities)],
            "miou": [scores.miou, *(perturbed[(k, s)].compute().miou for s in range(len(severities)))],
        }
        for k, kind in enumerate(perturbations)
    }
    model.train(was_training)
    present = [name for name in fairness_attributes if name in groups]
    return Evaluation(
        class_names=list(dataset.class_names),  # type: ignore[attr-defined]
        scores=scores,
        groups=groups,
        fairness_attributes=present,
        robustness_curves=curves,
    )


def per_group_miou(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """``{"<attribute>=<group>": mIoU}`` over the headline attributes' populated groups, from
    :meth:`Evaluation.as_dict` (or the ``evaluation.json`` it wrote): the bars of the paper's Fig. 4."""
    bars: dict[str, float] = {}
    for name in evaluation["fairness_attributes"]:
        group = evaluation["groups"][name]
        for group_name, miou, count in zip(group["group_names"], group["miou"], group["counts"], strict=True):
            if count > 0 and miou is not None:
                bars[f"{name}={group_name}"] = float(miou)
    return bars
