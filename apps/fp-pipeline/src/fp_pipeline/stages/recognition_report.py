"""The recognition report: QDGS's Tables 2-4 as mean ± standard error over trials, verdicts, figures.

Input: for each row (a loss with its pretraining source) the ``metrics.json`` of every trial, flat keys
``bins/<set>``, ``bins/mean``, ``rfw/<group>``, ``rfw/mean``, ``rfw/std``, ``rfw/gap``,
``rfw/disparate_impact``. The standard error is ``std(ddof=1) / sqrt(n)`` over the trials (undefined for
one trial). A difference gets a verdict only when it exceeds twice its standard error; otherwise the report
says "no detectable difference".

* **Table 2**: verification accuracy (%) on the ``.bin`` sets and their mean (QDGS Table 2's columns: LFW,
  CFP-FP, AgeDB-30, CALFW, CPLFW, average).
* **Table 3**: RFW accuracy (%) per group, their mean and std (QDGS Table 3).
* **Table 4**: fairness across RFW groups: disparate impact (worst / best), std and gap (max - min).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MeanSE",
    "chance_verdict",
    "difference_verdict",
    "group_gap_verdict",
    "mean_se",
    "report_markdown",
    "summary_table",
]

_SET_TITLES = {"lfw": "LFW", "cfp_fp": "CFP-FP", "agedb_30": "AgeDB-30", "calfw": "CALFW", "cplfw": "CPLFW"}


@dataclass(frozen=True)
class MeanSE:
    """``mean`` ± ``se`` over ``n`` values (``se`` NaN when ``n < 2``)."""

    mean: float
    se: float
    n: int

    def text(self, scale: float = 100.0, digits: int = 2) -> str:
        """``"97.12 ± 0.30"`` (``scale`` 100: percent), or the mean alone for one trial."""
        if not math.isfinite(self.mean):
            return "n/a"
        if not math.isfinite(self.se):
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.se * scale:.{digits}f}"


def mean_se(values: Sequence[float]) -> MeanSE:
    """Mean and standard error ``std(ddof=1) / sqrt(n)`` of ``values`` (NaNs dropped)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return MeanSE(math.nan, math.nan, 0)
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return MeanSE(float(x.mean()), se, int(x.size))


def difference_verdict(a: MeanSE, b: MeanSE, name_a: str, name_b: str) -> tuple[float, float, str]:
    """``(a - b, its s.e. sqrt(se_a² + se_b²), verdict)``: a verdict only beyond 2 s.e."""
    diff = a.mean - b.mean
    se = math.sqrt(a.se**2 + b.se**2) if math.isfinite(a.se) and math.isfinite(b.se) else math.nan
    if not math.isfinite(se):
        return diff, se, "no verdict (needs at least 2 trials per row)"
    if abs(diff) > 2 * se:
        return diff, se, f"{name_a} {'higher' if diff > 0 else 'lower'} than {name_b}"
    return diff, se, "no detectable difference"


def chance_verdict(accuracy: MeanSE, chance: float = 0.5, well_above: float = 0.7) -> str:
    """Whether a verification accuracy is above chance beyond 2 s.e., and whether it reaches ``well_above``."""
    if not math.isfinite(accuracy.mean):
        return "not measured"
    se = accuracy.se if math.isfinite(accuracy.se) else 0.0
    if accuracy.mean - 2 * se <= chance:
        return f"not detectably above chance ({chance:.0%})"
    if accuracy.mean >= well_above:
        return f"well above chance ({accuracy.mean:.1%} against {chance:.0%})"
    return f"above chance but below {well_above:.0%} ({accuracy.mean:.1%})"


def group_gap_verdict(worse: str, better: str, differences: Sequence[float]) -> tuple[MeanSE, str]:
    """Paired per-trial ``acc(better) - acc(worse)``: is ``worse`` worse beyond 2 s.e.?"""
    gap = mean_se(differences)
    if gap.n < 2:
        return gap, "no verdict (needs at least 2 trials)"
    if gap.mean > 2 * gap.se:
        return gap, f"the {worse} group is worse than the {better} group"
    if gap.mean < -2 * gap.se:
        return gap, f"the {worse} group is better than the {better} group"
    return gap, f"no detectable difference between the {worse} and {better} groups"


def summary_table(
    rows: Mapping[str, Sequence[Mapping[str, float]]], keys: Sequence[str]
) -> dict[str, dict[str, MeanSE]]:
    """``{row: {key: MeanSE over the row's trials}}``."""
    return {
        row: {key: mean_se([m.get(key, math.nan) for m in trials]) for key in keys}
        for row, trials in rows.items()
    }


def _markdown_table(
    header: Sequence[str],
    table: Mapping[str, Mapping[str, MeanSE]],
    keys: Sequence[str],
    scale: Sequence[float],
) -> list[str]:
    lines = ["| " + " | ".join(["method", "trials", *header]) + " |", "|" + "---|" * (len(header) + 2)]
    for row, values in table.items():
        n = max((v.n for v in values.values()), default=0)
        cells = [values[k].text(s, 2 if s == 100.0 else 3) for k, s in zip(keys, scale)]
        lines.append("| " + " | ".join([row, str(n), *cells]) + " |")
    return lines


def _verdict_lines(
    table: Mapping[str, Mapping[str, MeanSE]],
    keys: Sequence[str],
    titles: Sequence[str],
    scales: Sequence[float] | None = None,
) -> list[str]:
    """One line per key: the second row minus the first, ± its s.e., and the verdict (2 s.e. rule)."""
    names = list(table)
    if len(names) < 2:
        return []
    lines = [f"Differences {names[1]} − {names[0]} (± s.e.):", ""]
    for key, title, scale in zip(keys, titles, scales or [100.0] * len(keys)):
        diff, se, verdict = difference_verdict(table[names[1]][key], table[names[0]][key], names[1], names[0])
        digits = 2 if scale == 100.0 else 3
        se_text = f" ± {se * scale:.{digits}f}" if math.isfinite(se) else ""
        lines.append(f"- {title}: {diff * scale:+.{digits}f}{se_text}: {verdict}")
    return [*lines, ""]


def report_markdown(
    rows: Mapping[str, Sequence[Mapping[str, float]]],
    *,
    bin_sets: Sequence[str],
    groups: Sequence[str],
    compare: tuple[str, str],
    context: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The report (markdown) and its summary (JSON-able) from the trials' metrics of each row.

    ``compare = (better, worse)``: the two RFW groups whose paired gap gets a verdict (default light, dark).
    ``context`` adds lines about the setting (data, model, epochs).
    """
    bin_keys = [f"bins/{s}" for s in bin_sets] + ["bins/mean"]
    group_keys = [f"rfw/{g}" for g in groups] + ["rfw/mean", "rfw/std"]
    fair_keys = ["rfw/disparate_impact", "rfw/std", "rfw/gap"]
    t2 = summary_table(rows, bin_keys)
    t3 = summary_table(rows, group_keys)
    t4 = summary_table(rows, fair_keys)
    bin_titles = [_SET_TITLES.get(s, s) for s in bin_sets] + ["Avg"]
    lines = ["# Face recognition: verification and RFW fairness", ""]
    lines += [f"- {key}: {value}" for key, value in context.items()]
    lines += ["", "Mean ± standard error over trials; accuracies in %.", ""]
    lines += ["## Table 2: verification accuracy on the .bin sets", ""]
    lines += _markdown_table(bin_titles, t2, bin_keys, [100.0] * len(bin_keys)) + [""]
    lines += _verdict_lines(t2, ["bins/mean"], ["mean .bin accuracy"])
    lines += ["## Table 3: RFW accuracy per group", ""]
    lines += _markdown_table([*groups, "Avg", "Std"], t3, group_keys, [100.0] * len(group_keys)) + [""]
    lines += _verdict_lines(t3, ["rfw/mean"], ["mean RFW accuracy"])
    lines += ["## Table 4: fairness across RFW groups", ""]
    lines += _markdown_table(
        ["Disparate impact (min/max)", "Std", "Gap (max−min)"], t4, fair_keys, [1.0, 100.0, 100.0]
    )
    lines += ["", "Disparate impact is a ratio (1 = parity); Std and Gap are in accuracy points.", ""]
    lines += _verdict_lines(t4, fair_keys, ["disparate impact", "std", "gap"], [1.0, 100.0, 100.0])

    better, worse = compare
    findings: dict[str, Any] = {}
    lines += ["## Findings", ""]
    for row, trials in rows.items():
        accuracy = t2[row]["bins/mean"]
        chance = chance_verdict(accuracy)
        gap, gap_verdict = group_gap_verdict(
            worse,
            better,
            [m.get(f"rfw/{better}", math.nan) - m.get(f"rfw/{worse}", math.nan) for m in trials],
        )
        lines.append(f"- {row}: mean .bin accuracy {accuracy.text()} %: {chance}.")
        lines.append(
            f"- {row}: RFW {better} − {worse} = {gap.text()} points (paired over trials): {gap_verdict}."
        )
        findings[row] = {
            "bins_mean": accuracy.mean,
            "bins_mean_se": accuracy.se,
            "chance": chance,
            "group_gap": gap.mean,
            "group_gap_se": gap.se,
            "group_gap_verdict": gap_verdict,
        }
    lines.append("")
    summary = {
        "rows": {
            row: {k: [m.get(k) for m in trials] for k in {*bin_keys, *group_keys, *fair_keys}}
            for row, trials in rows.items()
        },
        "tables": {
            name: {
                row: {k: {"mean": v.mean, "se": v.se, "n": v.n} for k, v in values.items()}
                for row, values in t.items()
            }
            for name, t in (("table2", t2), ("table3", t3), ("table4", t4))
        },
        "findings": findings,
    }
    return "\n".join(lines), summary
