"""The markdown report that puts the variants side by side like the paper's Tables I and III, over seeds.

Input: ``runs = {variant: {seed: metrics}}`` where ``metrics`` is one run's
:meth:`fp_parsing.evaluate.Evaluation.to_metrics` (flat ``name -> value``, the ``eval/metrics.json`` of
``outputs/parsing/<variant>/seed-<seed>``). Every table cell is the mean ± standard error over the seeds
(``s.e. = sample standard deviation / sqrt(n)``, ``ddof = 1``).

Verdict rule (:data:`VERDICT_RULE`): for each variant and headline metric, the differences
``d_s = variant_s - baseline_s`` are paired by seed (only seeds both have). The verdict is "better" or
"worse" (in the metric's own direction: higher mIoU, Dice, F1 and kept ratio are better, lower group
variance and robustness drop are better) only when ``|mean(d)| > 2 s.e.(d)`` over at least two seeds;
otherwise "no detectable difference"; with a single shared seed "one seed: no verdict". A variant whose mean
mIoU fell by more than a fifth of the baseline's has *collapsed*: its fairness and robustness "better" are
not credited (a uniformly worse model has small group gaps and little left to lose under perturbation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BETTER",
    "HEADLINE",
    "NO_CREDIT",
    "NO_DIFFERENCE",
    "ONE_SEED",
    "VERDICT_RULE",
    "WORSE",
    "Comparison",
    "SeedStat",
    "Verdict",
    "aggregate",
    "aggregate_curves",
    "aggregate_groups",
    "compare_with_baseline",
    "markdown_table",
    "paired_verdict",
    "render_report",
    "seed_stat",
    "summary",
]

Runs = Mapping[str, Mapping[int, Mapping[str, float]]]

ACCURACY_KEYS = ("miou", "dice", "foreground_f1", "pixel_accuracy")
#: (metric, higher is better) judged against the baseline
HEADLINE: tuple[tuple[str, bool], ...] = (
    ("miou", True),
    ("dice", True),
    ("foreground_f1", True),
    ("fairness/variance_mean", False),
    ("robustness/drop", False),
    ("robustness/kept", True),
)
#: metrics whose improvement is not credited to a collapsed variant
_GUARDED = ("fairness/variance_mean", "robustness/drop", "robustness/kept")
COLLAPSE_SHARE = 0.2
BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
ONE_SEED = "one seed: no verdict"
NO_SEEDS = "no shared seed: no verdict"
NO_CREDIT = "better, not credited (accuracy collapsed)"
VERDICT_RULE = (
    "Each cell is the mean ± standard error over seeds (sample standard deviation / √n). A variant is"
    " called **better** or **worse** than the baseline on a metric only when the paired difference over"
    " seeds (same seed, variant minus baseline) has |mean| > 2 × its standard error, with at least two"
    " seeds; otherwise **no detectable difference** (one seed: no verdict). A variant whose mean mIoU fell"
    " by more than a fifth of the baseline's has collapsed: its lower group variance or robustness drop is"
    " not credited."
)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


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


@dataclass(frozen=True)
class SeedStat:
    """One metric of one variant over seeds: the finite per-seed values, their mean and standard error.

    Attributes:
        values: ``{seed: value}`` (seeds with a missing or non-finite value left out).
    """

    values: dict[int, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of seeds with a value."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean over seeds (NaN without values)."""
        return sum(self.values.values()) / self.n if self.n else math.nan

    @property
    def se(self) -> float:
        """Standard error of the mean, ``std(ddof=1) / sqrt(n)`` (NaN below two seeds)."""
        if self.n < 2:
            return math.nan
        mean = self.mean
        variance = sum((v - mean) ** 2 for v in self.values.values()) / (self.n - 1)
        return math.sqrt(variance / self.n)

    def cell(self, digits: int = 4) -> str:
        """``"mean ± se"`` (just the value with one seed, a dash with none)."""
        if self.n == 0:
            return "—"
        if self.n == 1:
            return _fmt(self.mean, digits)
        return f"{_fmt(self.mean, digits)} ± {_fmt(self.se, digits)}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: mean, se, n and the per-seed values (NaN as null)."""
        return {
            "mean": _finite(self.mean),
            "se": _finite(self.se),
            "n": self.n,
            "per_seed": {str(seed): value for seed, value in sorted(self.values.items())},
        }


def seed_stat(values: Mapping[int, float | None]) -> SeedStat:
    """A :class:`SeedStat` from ``{seed: value}`` (``None`` and non-finite values dropped)."""
    return SeedStat({int(s): float(v) for s, v in values.items() if _finite(v) is not None})


def aggregate(runs: Runs) -> dict[str, dict[str, SeedStat]]:
    """``{variant: {metric: SeedStat}}`` over every metric key any seed of the variant has."""
    result: dict[str, dict[str, SeedStat]] = {}
    for variant, by_seed in runs.items():
        keys: list[str] = []
        for metrics in by_seed.values():
            keys += [k for k in metrics if k not in keys]
        result[variant] = {key: seed_stat({s: m.get(key) for s, m in by_seed.items()}) for key in keys}
    return result


@dataclass(frozen=True)
class Verdict:
    """A paired comparison of one metric: ``d_s = variant_s - baseline_s`` over the shared seeds.

    Attributes:
        metric: the metric key.
        higher_is_better: the metric's direction.
        differences: ``{seed: d_s}``.
        verdict: :data:`BETTER`, :data:`WORSE`, :data:`NO_DIFFERENCE`, :data:`ONE_SEED`, ``NO_SEEDS`` or
            :data:`NO_CREDIT`.
    """

    metric: str
    higher_is_better: bool
    differences: dict[int, float]
    verdict: str

    @property
    def stat(self) -> SeedStat:
        """The differences as a :class:`SeedStat` (mean and s.e. of ``d``)."""
        return SeedStat(self.differences)

    def cell(self, digits: int = 4) -> str:
        """``"better (+0.0123 ± 0.0040)"``."""
        stat = self.stat
        if stat.n == 0:
            return self.verdict
        sign = "+" if stat.mean >= 0 else ""
        diff = f"{sign}{_fmt(stat.mean, digits)}" + (f" ± {_fmt(stat.se, digits)}" if stat.n > 1 else "")
        return f"{self.verdict} ({diff})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        stat = self.stat
        return {
            "verdict": self.verdict,
            "higher_is_better": self.higher_is_better,
            "mean_difference": _finite(stat.mean),
            "se_difference": _finite(stat.se),
            "seeds": sorted(self.differences),
            "differences": {str(s): d for s, d in sorted(self.differences.items())},
        }


def paired_verdict(
    variant: Mapping[int, float | None],
    baseline: Mapping[int, float | None],
    *,
    metric: str = "",
    higher_is_better: bool = True,
) -> Verdict:
    """The verdict of :data:`VERDICT_RULE` for per-seed values ``{seed: value}`` of a variant and the baseline."""
    v, b = seed_stat(variant).values, seed_stat(baseline).values
    differences = {s: v[s] - b[s] for s in sorted(set(v) & set(b))}
    stat = SeedStat(differences)
    if stat.n == 0:
        verdict = NO_SEEDS
    elif stat.n == 1:
        verdict = ONE_SEED
    elif abs(stat.mean) > 2 * stat.se:
        verdict = BETTER if (stat.mean > 0) == higher_is_better else WORSE
    else:
        verdict = NO_DIFFERENCE
    return Verdict(metric, higher_is_better, differences, verdict)


class Comparison:
    """One variant against the baseline: a paired :class:`Verdict` per headline metric and the collapse guard."""

    def __init__(
        self,
        variant: str,
        baseline: Mapping[int, Mapping[str, float]],
        runs: Mapping[int, Mapping[str, float]],
    ) -> None:
        self.variant = variant
        shared = sorted(set(baseline) & set(runs))
        base_miou = seed_stat({s: baseline[s].get("miou") for s in shared}).mean
        own_miou = seed_stat({s: runs[s].get("miou") for s in shared}).mean
        self.baseline_miou = base_miou
        self.miou_change = own_miou - base_miou
        self.verdicts: dict[str, Verdict] = {}
        for metric, higher in HEADLINE:
            verdict = paired_verdict(
                {s: m.get(metric) for s, m in runs.items()},
                {s: m.get(metric) for s, m in baseline.items()},
                metric=metric,
                higher_is_better=higher,
            )
            if self.collapsed and metric in _GUARDED and verdict.verdict == BETTER:
                verdict = Verdict(metric, higher, verdict.differences, NO_CREDIT)
            self.verdicts[metric] = verdict

    @property
    def collapsed(self) -> bool:
        """Mean mIoU over the shared seeds fell by more than a fifth of the baseline's."""
        return math.isfinite(self.miou_change) and self.miou_change < -COLLAPSE_SHARE * self.baseline_miou

    def sentence(self) -> str:
        """A one-line verdict."""
        parts = [f"{metric} {v.cell()}" for metric, v in self.verdicts.items() if v.stat.n]
        if not parts:
            return f"**{self.variant}**: no metrics shared with the baseline."
        sentence = f"**{self.variant}**: " + "; ".join(parts) + "."
        if self.collapsed:
            sentence += (
                " Its accuracy collapsed (mean mIoU down by more than a fifth), so its lower variance and drop are"
                " those of a uniformly worse model, not of a fairer or more robust one."
            )
        return sentence


def compare_with_baseline(runs: Runs, baseline: str = "single") -> list[Comparison]:
    """A :class:`Comparison` for every variant other than ``baseline`` (which must be present)."""
    if baseline not in runs:
        raise KeyError(f"the baseline variant {baseline!r} has no metrics; have: {sorted(runs)}")
    return [Comparison(v, runs[baseline], r) for v, r in runs.items() if v != baseline]


def aggregate_curves(
    curves_by_seed: Mapping[int, Mapping[str, Mapping[str, Sequence[float | None]]]],
) -> dict[str, dict[str, list[float]]]:
    """Robustness curves over seeds: ``{seed: {kind: {"severity", "miou"}}}`` ->
    ``{kind: {"severity", "miou" (mean), "miou_se"}}`` (a kind every seed has, with the same severities)."""
    kinds: list[str] = []
    for curves in curves_by_seed.values():
        kinds += [k for k in curves if k not in kinds]
    result: dict[str, dict[str, list[float]]] = {}
    for kind in kinds:
        present = {s: c[kind] for s, c in curves_by_seed.items() if kind in c}
        severities = [list(c["severity"]) for c in present.values()]
        if any(s != severities[0] for s in severities):
            raise ValueError(f"{kind}: the seeds were evaluated at different severities: {severities}")
        stats = [seed_stat({s: c["miou"][i] for s, c in present.items()}) for i in range(len(severities[0]))]
        result[kind] = {
            "severity": [float(x) for x in severities[0]],
            "miou": [st.mean for st in stats],
            "miou_se": [st.se if st.n > 1 else 0.0 for st in stats],
        }
    return result


def aggregate_groups(
    per_group_by_seed: Mapping[int, Mapping[str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Group mIoU bars over seeds: ``{seed: {label: mIoU}}`` -> ``({label: mean}, {label: se})``."""
    labels: list[str] = []
    for bars in per_group_by_seed.values():
        labels += [k for k in bars if k not in labels]
    stats = {label: seed_stat({s: b.get(label) for s, b in per_group_by_seed.items()}) for label in labels}
    return (
        {label: st.mean for label, st in stats.items()},
        {label: (st.se if st.n > 1 else 0.0) for label, st in stats.items()},
    )


def _keys_with_prefix(stats: Mapping[str, Mapping[str, SeedStat]], prefix: str, suffix: str) -> list[str]:
    names: list[str] = []
    for values in stats.values():
        for key in values:
            if key.startswith(prefix) and key.endswith(suffix):
                name = key[len(prefix) : len(key) - len(suffix)]
                if name and "/" not in name and name not in names:
                    names.append(name)
    return names


def _cell(stats: Mapping[str, SeedStat], key: str, digits: int = 4) -> str:
    stat = stats.get(key)
    return stat.cell(digits) if stat is not None else "—"


def _seed_note(runs: Runs) -> str:
    counts = {v: len(r) for v, r in runs.items()}
    if len(set(counts.values())) == 1:
        n = next(iter(counts.values()), 0)
        return f"{n} seed{'s' if n != 1 else ''} per variant"
    return "seeds per variant: " + ", ".join(f"{v} {n}" for v, n in counts.items())


def render_report(
    runs: Runs,
    *,
    baseline: str = "single",
    title: str = "Fair and robust face parsing: variants side by side",
    context: str = "",
    figures: Sequence[tuple[str, str]] = (),
) -> str:
    """The markdown report: Table I (accuracy, mean group variance), per-attribute variance and worst group,
    Table III (robustness; per-class IoU), the paired verdicts against ``baseline`` and its rule, and links
    to ``figures`` (``(caption, relative path)``). Cells: mean ± s.e. over seeds."""
    stats = aggregate(runs)
    variants = list(runs)
    lines = [f"# {title}", ""]
    if context:
        lines += [context, ""]
    lines += [f"Every cell: mean ± standard error over seeds ({_seed_note(runs)}).", ""]
    lines += ["## Accuracy and fairness (cf. the paper's Table I)", ""]
    header = ["variant", "seeds", "mIoU", "Dice", "F1 (fg)", "pixel acc.", "Var(mIoU_g) mean"]
    rows = [
        [v, str(len(runs[v]))]
        + [_cell(stats[v], k) for k in ACCURACY_KEYS]
        + [_cell(stats[v], "fairness/variance_mean", 6)]
        for v in variants
    ]
    lines += [
        markdown_table(header, rows),
        "",
        "mIoU: mean of per-class IoU over the 19 classes; Dice: mean of per-class Dice over the same classes;"
        " F1 (fg): one F1 pooled over every foreground pixel (micro average over the 18 parts); all from the"
        " test split's pooled confusion matrix (docs/parsing.md).",
        "",
    ]

    attributes = _keys_with_prefix(stats, "fairness/", "/variance")
    if attributes:
        lines += ["## Variance of group mIoU per attribute (lower is fairer)", ""]
        rows = [[v] + [_cell(stats[v], f"fairness/{a}/variance", 6) for a in attributes] for v in variants]
        lines += [markdown_table(["variant", *attributes], rows), ""]
        rows = [[v] + [_cell(stats[v], f"fairness/{a}/worst_miou") for a in attributes] for v in variants]
        lines += ["Worst-group mIoU per attribute:", "", markdown_table(["variant", *attributes], rows), ""]

    perturbations = _keys_with_prefix(stats, "robustness/", "/miou")
    if perturbations:
        lines += ["## Robustness: mIoU under perturbation, mean over severities (cf. Table III)", ""]
        header = ["variant", "clean", *perturbations, "mean", "drop", "kept"]
        rows = [
            [v, _cell(stats[v], "miou")]
            + [_cell(stats[v], f"robustness/{p}/miou") for p in perturbations]
            + [_cell(stats[v], k) for k in ("robustness/miou", "robustness/drop", "robustness/kept")]
            for v in variants
        ]
        lines += [markdown_table(header, rows), ""]

    classes = _keys_with_prefix(stats, "iou/", "")
    if classes:
        lines += ["## Per-class IoU (cf. Table III)", ""]
        rows = [[c] + [_cell(stats[v], f"iou/{c}") for v in variants] for c in classes]
        lines += [markdown_table(["class", *variants], rows), ""]

    if baseline in runs and len(runs) > 1:
        comparisons = compare_with_baseline(runs, baseline)
        lines += [f"## Against the single-objective baseline ({baseline})", "", VERDICT_RULE, ""]
        header = ["variant", *(metric for metric, _ in HEADLINE)]
        rows = [[c.variant] + [c.verdicts[m].cell() for m, _ in HEADLINE] for c in comparisons]
        lines += [markdown_table(header, rows), ""]
        lines += [f"- {c.sentence()}" for c in comparisons if c.collapsed]
        fairer = [c.variant for c in comparisons if c.verdicts["fairness/variance_mean"].verdict == BETTER]
        robuster = [c.variant for c in comparisons if c.verdicts["robustness/drop"].verdict == BETTER]
        lines += [
            "",
            f"By this rule, {len(fairer)} of {len(comparisons)} multi-objective variants lowered the mean group"
            " variance" + (f" ({', '.join(fairer)})" if fairer else "") + f" and {len(robuster)} of"
            f" {len(comparisons)} lowered the robustness drop"
            + (f" ({', '.join(robuster)})" if robuster else "")
            + ".",
            "",
        ]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{caption}]({path})" for caption, path in figures]
        lines.append("")
    return "\n".join(lines)


def summary(runs: Runs, *, baseline: str = "single") -> dict[str, Any]:
    """JSON-ready ``summary.json``: the rule, seeds, per-variant mean / s.e. / per-seed values of every metric,
    and the verdicts against ``baseline`` (when present)."""
    stats = aggregate(runs)
    result: dict[str, Any] = {
        "baseline": baseline,
        "rule": VERDICT_RULE,
        "seeds": {v: sorted(int(s) for s in r) for v, r in runs.items()},
        "variants": {v: {k: st.as_dict() for k, st in per.items()} for v, per in stats.items()},
        "verdicts": {},
    }
    if baseline in runs:
        for c in compare_with_baseline(runs, baseline):
            result["verdicts"][c.variant] = {
                "collapsed": c.collapsed,
                **{m: v.as_dict() for m, v in c.verdicts.items()},
            }
    return result
