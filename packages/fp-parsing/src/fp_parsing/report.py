"""The markdown report that puts the variants side by side like the paper's Tables I and III.

Input: ``{variant: metrics}`` where ``metrics`` is :meth:`fp_parsing.evaluate.Evaluation.to_metrics` (flat
``name -> value``). The verdict compares every variant with the single-objective baseline and says, in
plain words, whether it lowered the group variance and the robustness drop, and what it cost in mIoU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["Comparison", "compare_with_baseline", "markdown_table", "render_report"]

ACCURACY_KEYS = ("miou", "dice", "foreground_f1", "pixel_accuracy")


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if value != 0 and abs(value) < 10 ** (-digits + 1):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class Comparison:
    """One variant against the baseline: differences of mIoU, mean group variance and robustness drop."""

    def __init__(self, variant: str, baseline: Mapping[str, float], metrics: Mapping[str, float]) -> None:
        self.variant = variant
        self.baseline_miou = baseline.get("miou", math.nan)
        self.miou_change = metrics.get("miou", math.nan) - baseline.get("miou", math.nan)
        self.variance_change = metrics.get("fairness/variance_mean", math.nan) - baseline.get(
            "fairness/variance_mean", math.nan
        )
        self.drop_change = metrics.get("robustness/drop", math.nan) - baseline.get(
            "robustness/drop", math.nan
        )

    def sentence(self) -> str:
        """A one-line, honest verdict."""
        parts = []
        if math.isfinite(self.variance_change):
            verb = "lowered" if self.variance_change < 0 else "did not lower"
            parts.append(f"{verb} the mean group variance ({_fmt(self.variance_change, 6)})")
        if math.isfinite(self.drop_change):
            verb = "lowered" if self.drop_change < 0 else "did not lower"
            parts.append(f"{verb} the robustness drop ({_fmt(self.drop_change)})")
        if math.isfinite(self.miou_change):
            if self.miou_change < 0:
                parts.append(f"at a cost of {_fmt(-self.miou_change)} mIoU")
            else:
                parts.append(f"with no mIoU cost (mIoU {_fmt(self.miou_change)} higher)")
        if not parts:
            return f"**{self.variant}**: no metrics."
        sentence = f"**{self.variant}** " + ", ".join(parts) + "."
        if self.collapsed:
            sentence += (
                " Its accuracy collapsed (mIoU down by more than a fifth), so its lower variance and drop are those"
                " of a uniformly worse model, not of a fairer or more robust one."
            )
        return sentence

    @property
    def collapsed(self) -> bool:
        """mIoU fell by more than a fifth of the baseline's: gains in variance or drop are then not credited."""
        return math.isfinite(self.miou_change) and self.miou_change < -0.2 * self.baseline_miou


def compare_with_baseline(
    metrics: Mapping[str, Mapping[str, float]], baseline: str = "single"
) -> list[Comparison]:
    """A :class:`Comparison` for every variant other than ``baseline`` (which must be present)."""
    if baseline not in metrics:
        raise KeyError(f"the baseline variant {baseline!r} has no metrics; have: {sorted(metrics)}")
    return [Comparison(v, metrics[baseline], m) for v, m in metrics.items() if v != baseline]


def _keys_with_prefix(metrics: Mapping[str, Mapping[str, float]], prefix: str, suffix: str) -> list[str]:
    names: list[str] = []
    for values in metrics.values():
        for key in values:
            if key.startswith(prefix) and key.endswith(suffix):
                name = key[len(prefix) : len(key) - len(suffix)]
                if name and "/" not in name and name not in names:
                    names.append(name)
    return names


def render_report(
    metrics: Mapping[str, Mapping[str, float]],
    *,
    baseline: str = "single",
    title: str = "Fair and robust face parsing: variants side by side",
    context: str = "",
    figures: Sequence[tuple[str, str]] = (),
) -> str:
    """The markdown report: accuracy and fairness (Table I), per-attribute variance, robustness (Table III),
    the verdict against ``baseline``, and links to ``figures`` (``(caption, relative path)``)."""
    variants = list(metrics)
    lines = [f"# {title}", ""]
    if context:
        lines += [context, ""]
    lines += ["## Accuracy and fairness (cf. the paper's Table I)", ""]
    header = ["variant", "mIoU", "Dice", "F1 (fg)", "pixel acc.", "Var(mIoU_g) mean"]
    rows = [
        [v]
        + [_fmt(metrics[v].get(k)) for k in ACCURACY_KEYS]
        + [_fmt(metrics[v].get("fairness/variance_mean"), 6)]
        for v in variants
    ]
    lines += [markdown_table(header, rows), ""]

    attributes = _keys_with_prefix(metrics, "fairness/", "/variance")
    if attributes:
        lines += ["## Variance of group mIoU per attribute (lower is fairer)", ""]
        rows = [
            [v] + [_fmt(metrics[v].get(f"fairness/{a}/variance"), 6) for a in attributes] for v in variants
        ]
        lines += [markdown_table(["variant", *attributes], rows), ""]
        rows = [
            [v] + [_fmt(metrics[v].get(f"fairness/{a}/worst_miou")) for a in attributes] for v in variants
        ]
        lines += ["Worst-group mIoU per attribute:", "", markdown_table(["variant", *attributes], rows), ""]

    perturbations = _keys_with_prefix(metrics, "robustness/", "/miou")
    if perturbations:
        lines += ["## Robustness: mIoU under perturbation, mean over severities (cf. Table III)", ""]
        header = ["variant", "clean", *perturbations, "mean", "drop", "kept"]
        rows = [
            [v, _fmt(metrics[v].get("miou"))]
            + [_fmt(metrics[v].get(f"robustness/{p}/miou")) for p in perturbations]
            + [_fmt(metrics[v].get(k)) for k in ("robustness/miou", "robustness/drop", "robustness/kept")]
            for v in variants
        ]
        lines += [markdown_table(header, rows), ""]

    if baseline in metrics and len(metrics) > 1:
        lines += [f"## Against the single-objective baseline ({baseline})", ""]
        comparisons = compare_with_baseline(metrics, baseline)
        lines += [f"- {c.sentence()}" for c in comparisons]
        fairer = [c.variant for c in comparisons if c.variance_change < 0 and not c.collapsed]
        robuster = [c.variant for c in comparisons if c.drop_change < 0 and not c.collapsed]
        lines += [
            "",
            f"Not counting collapsed variants, {len(fairer)} of {len(comparisons)} multi-objective variants"
            " lowered the mean group variance"
            + (f" ({', '.join(fairer)})" if fairer else "")
            + f"; {len(robuster)} of {len(comparisons)} lowered the robustness drop"
            + (f" ({', '.join(robuster)})" if robuster else "")
            + ". Differences this small on a small synthetic test split are within run-to-run noise unless"
            " repeated over seeds.",
            "",
        ]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{caption}]({path})" for caption, path in figures]
        lines.append("")
    return "\n".join(lines)
