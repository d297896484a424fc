"""The recognition report: QDGS's Tables 2-4 as mean ± standard error over trials, and the verdicts.

Input: ``runs[source][loss]``, the ``metrics.json`` of every trial of that pretraining source and loss
(:func:`read_runs`), flat keys ``bins/<set>``, ``bins/mean``, ``rfw/<group>``, ``rfw/mean``, ``rfw/std``,
``rfw/gap``, ``rfw/disparate_impact``. The standard error is ``std(ddof=1) / sqrt(n)`` over the trials
(undefined for one trial). A difference of two means gets a verdict only when it exceeds twice the s.e. of
the difference ``sqrt(se_a² + se_b²)``; otherwise the report says "no detectable difference".

QDGS's layout, one row per (pretraining source, loss):

* **Table 2**: RFW accuracy (%) per group, their mean and std, and the disparate impact (worst / best
  group), by pretraining (None / Rand / QD) within each loss.
* **Table 3**: the ArcFace / AdaFace ablation: RFW mean, worse group, disparate impact and ``.bin`` mean
  per loss within each pretraining source, with the AdaFace − ArcFace differences.
* **Table 4**: verification accuracy (%) on the LFW-style ``.bin`` sets (LFW, CFP-FP, AgeDB-30, CALFW,
  CPLFW) and their mean.
* **Verdicts** (:func:`pretraining_verdicts`): per loss, QD vs Rand and QD vs None on the worse group's
  accuracy and on the disparate impact: "raised beyond 2 s.e.", "lowered beyond 2 s.e." or
  "no detectable difference".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MeanSE",
    "PretrainingVerdict",
    "chance_verdict",
    "difference_verdict",
    "group_gap_verdict",
    "loss_title",
    "mean_se",
    "pretraining_verdict",
    "pretraining_verdicts",
    "read_runs",
    "report_markdown",
    "row_label",
    "source_title",
    "summary_table",
]

#: ``runs[source][loss] = [metrics of each trial]``
Runs = Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]]

_SET_TITLES = {"lfw": "LFW", "cfp_fp": "CFP-FP", "agedb_30": "AgeDB-30", "calfw": "CALFW", "cplfw": "CPLFW"}
_LOSS_TITLES = {"arcface": "ArcFace", "adaface": "AdaFace", "cosface": "CosFace"}
_SOURCE_TITLES = {"none": "None", "rand": "Rand", "qd": "QD"}
#: the verdict words of :func:`pretraining_verdict`
RAISED, LOWERED, NO_DIFFERENCE = "raised beyond 2 s.e.", "lowered beyond 2 s.e.", "no detectable difference"


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


def loss_title(loss: str) -> str:
    """``arcface`` -> ``ArcFace`` (unknown names unchanged)."""
    return _LOSS_TITLES.get(loss, loss)


def source_title(source: str) -> str:
    """``qd`` -> ``QD``, ``rand`` -> ``Rand``, ``none`` -> ``None`` (unknown names unchanged)."""
    return _SOURCE_TITLES.get(source, source)


def row_label(source: str, loss: str) -> str:
    """``"ArcFace, pretrain QD"``: the report's row of a (source, loss)."""
    return f"{loss_title(loss)}, pretrain {source_title(source)}"


def read_runs(
    runs_dir: Path, matrix: Iterable[tuple[str, str, int]] | None = None
) -> tuple[dict[str, dict[str, list[dict[str, float]]]], dict[str, Any]]:
    """``(runs[source][loss] = [metrics per trial], roc[row_label] of the first trial)`` from
    ``<runs_dir>/<source>/<loss>/eval/<trial>/{metrics,roc}.json`` (what ``recognition-eval@<source>-<loss>``
    writes).

    ``matrix``: the ``(source, loss, trial)`` runs to read (a missing one is an error naming the command
    that writes it); ``None`` reads whatever is there, sources and losses sorted, trials in numeric order.
    """
    if matrix is None:
        found = [p for p in Path(runs_dir).glob("*/*/eval/*/metrics.json") if p.parent.name.isdigit()]
        matrix = sorted((p.parents[3].name, p.parents[2].name, int(p.parent.name)) for p in found)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    curves: dict[str, Any] = {}
    for source, loss, trial in matrix:
        eval_dir = Path(runs_dir) / source / loss / "eval" / str(int(trial))
        if not (eval_dir / "metrics.json").is_file():
            raise FileNotFoundError(
                f"{eval_dir / 'metrics.json'} not found: run "
                f"`fp recognition eval --source {source} --loss {loss} --trial {trial}`"
            )
        metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
        runs.setdefault(source, {}).setdefault(loss, []).append(metrics)
        label = row_label(source, loss)
        if label not in curves and (eval_dir / "roc.json").is_file():
            curves[label] = json.loads((eval_dir / "roc.json").read_text(encoding="utf-8"))
    return runs, curves


def pretraining_verdict(a: MeanSE, b: MeanSE) -> tuple[float, float, str]:
    """``(a - b, sqrt(se_a² + se_b²), verdict)``: ``RAISED`` / ``LOWERED`` when ``|a - b| > 2 s.e.``, else
    ``NO_DIFFERENCE``; "no verdict ..." when a side has fewer than 2 trials."""
    diff = a.mean - b.mean
    se = math.sqrt(a.se**2 + b.se**2) if math.isfinite(a.se) and math.isfinite(b.se) else math.nan
    if not math.isfinite(se) or not math.isfinite(diff):
        return diff, se, "no verdict (needs at least 2 trials per source)"
    if abs(diff) > 2 * se:
        return diff, se, RAISED if diff > 0 else LOWERED
    return diff, se, NO_DIFFERENCE


@dataclass(frozen=True)
class PretrainingVerdict:
    """One comparison: ``source`` minus ``other`` pretraining on ``metric`` for ``loss``."""

    loss: str
    metric: str
    source: str
    other: str
    source_stat: MeanSE
    other_stat: MeanSE
    difference: float
    se: float
    verdict: str

    @property
    def text(self) -> str:
        """One sentence, e.g. ``"ArcFace, rfw/dark: QD 81.00 ± 0.58 vs Rand 80.00 ± 0.58 % (difference
        +1.00 ± 0.82): no detectable difference"``."""
        who = f"{loss_title(self.loss)}, {self.metric}"
        if not self.source_stat.n or not self.other_stat.n:
            missing = self.source if not self.source_stat.n else self.other
            pair = f"{source_title(self.source)} vs {source_title(self.other)}"
            return f"{who}: {pair}: {self.verdict} (no {source_title(missing)}-pretrained trials)"
        scale, digits, unit = (1.0, 3, "") if "disparate_impact" in self.metric else (100.0, 2, " %")
        se = f" ± {self.se * scale:.{digits}f}" if math.isfinite(self.se) else ""
        return (
            f"{who}: {source_title(self.source)} {self.source_stat.text(scale, digits)} vs "
            f"{source_title(self.other)} {self.other_stat.text(scale, digits)}{unit} "
            f"(difference {self.difference * scale:+.{digits}f}{se}): {self.verdict}"
        )


def pretraining_verdicts(
    runs: Runs,
    *,
    dark: str = "dark",
    source: str = "qd",
    others: Sequence[str] = ("rand", "none"),
    keys: Sequence[str] = ("rfw/{dark}", "rfw/disparate_impact"),
) -> list[PretrainingVerdict]:
    """Per loss (sorted) and key, ``source`` (QD) against each of ``others`` (Rand, None) pretraining:
    did it raise the ``dark`` group's RFW accuracy and the disparate impact beyond 2 s.e. over trials?
    A comparison whose trials are missing gets the verdict "not run"."""
    verdicts = []
    losses = sorted({loss for per_loss in runs.values() for loss in per_loss})
    for loss in losses:
        for key in (k.format(dark=dark) for k in keys):
            stat = mean_se([m.get(key, math.nan) for m in runs.get(source, {}).get(loss, [])])
            for other in others:
                other_stat = mean_se([m.get(key, math.nan) for m in runs.get(other, {}).get(loss, [])])
                if not stat.n or not other_stat.n:
                    diff, se, verdict = math.nan, math.nan, "not run"
                else:
                    diff, se, verdict = pretraining_verdict(stat, other_stat)
                verdicts.append(
                    PretrainingVerdict(loss, key, source, other, stat, other_stat, diff, se, verdict)
                )
    return verdicts


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


def _difference_line(title: str, a: MeanSE, b: MeanSE, scale: float) -> str:
    diff, se, verdict = pretraining_verdict(a, b)
    digits = 2 if scale == 100.0 else 3
    se_text = f" ± {se * scale:.{digits}f}" if math.isfinite(se) else ""
    return f"  - {title}: {diff * scale:+.{digits}f}{se_text}: {verdict}"


def _ordered(runs: Runs, by: str) -> dict[str, Sequence[Mapping[str, float]]]:
    """Rows ``{row_label: trials}`` grouped by loss (``by="loss"``: sources within) or by source."""
    sources = list(runs)
    losses = list(dict.fromkeys(loss for per_loss in runs.values() for loss in per_loss))
    pairs = (
        [(s, loss) for loss in losses for s in sources]
        if by == "loss"
        else [(s, loss) for s in sources for loss in losses]
    )
    return {row_label(s, loss): runs[s][loss] for s, loss in pairs if loss in runs[s]}


def _ablation_lines(runs: Runs, table: Mapping[str, Mapping[str, MeanSE]], keys: Sequence[str]) -> list[str]:
    """Per source, AdaFace − ArcFace (or the second loss − the first) on each of ``keys``."""
    lines = []
    for source, per_loss in runs.items():
        losses = list(per_loss)
        if len(losses) < 2:
            continue
        a, b = row_label(source, losses[1]), row_label(source, losses[0])
        lines.append(f"- pretrain {source_title(source)}: {loss_title(losses[1])} − {loss_title(losses[0])}:")
        for key in keys:
            scale = 1.0 if key == "rfw/disparate_impact" else 100.0
            lines.append(_difference_line(key, table[a][key], table[b][key], scale))
    return [*lines, ""] if lines else []


def _findings(
    rows: Mapping[str, Sequence[Mapping[str, float]]],
    t4: Mapping[str, Mapping[str, MeanSE]],
    compare: tuple[str, str],
) -> tuple[list[str], dict[str, Any]]:
    better, worse = compare
    lines, findings = ["## Findings per row", ""], {}
    for row, trials in rows.items():
        accuracy = t4[row]["bins/mean"]
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
    return [*lines, ""], findings


def _verdict_section(verdicts: Sequence[PretrainingVerdict], worse: str) -> list[str]:
    lines = [
        f"## Verdicts: did QD pretraining raise the {worse} group's accuracy and the disparate impact?",
        "",
        "Difference of the means over trials ± the s.e. of the difference (sqrt(se_a² + se_b²)); "
        '"raised" / "lowered" only beyond 2 s.e.',
        "",
    ]
    lines += [f"- {v.text}" for v in verdicts] or ["- no runs"]
    raised = [v for v in verdicts if v.verdict == RAISED]
    lowered = [v for v in verdicts if v.verdict == LOWERED]
    done = [v for v in verdicts if v.verdict in (RAISED, LOWERED, NO_DIFFERENCE)]
    lines += [
        "",
        f"In short: of {len(done)} comparisons with enough trials, QD pretraining raised the measure beyond "
        f"2 s.e. in {len(raised)}, lowered it in {len(lowered)}, and showed no detectable difference in "
        f"{len(done) - len(raised) - len(lowered)}"
        + (
            f"; {len(verdicts) - len(done)} could not be judged (sources not run or one trial)."
            if len(done) < len(verdicts)
            else "."
        ),
        "",
    ]
    return lines


def _tables(
    runs: Runs, bin_sets: Sequence[str], groups: Sequence[str], worse: str
) -> tuple[list[str], dict[str, dict[str, dict[str, MeanSE]]]]:
    """Tables 2-4 (markdown lines) and their ``{name: {row: {key: MeanSE}}}``."""
    group_keys = [f"rfw/{g}" for g in groups] + ["rfw/mean", "rfw/std", "rfw/disparate_impact"]
    ablation_keys = ["rfw/mean", f"rfw/{worse}", "rfw/disparate_impact", "bins/mean"]
    bin_keys = [f"bins/{s}" for s in bin_sets] + ["bins/mean"]
    t2 = summary_table(_ordered(runs, "loss"), group_keys)
    t3 = summary_table(_ordered(runs, "source"), ablation_keys)
    t4 = summary_table(_ordered(runs, "loss"), bin_keys)
    lines = ["## Table 2: RFW accuracy per group and disparate impact, by pretraining", ""]
    lines += _markdown_table(
        [*groups, "Avg", "Std", "DI (min/max)"], t2, group_keys, [100.0] * (len(groups) + 2) + [1.0]
    )
    lines += ["", "Accuracies in %; the disparate impact (DI) is a ratio (1 = parity).", ""]
    lines += ["## Table 3: ArcFace / AdaFace ablation", ""]
    lines += _markdown_table(
        ["RFW Avg", f"RFW {worse}", "DI (min/max)", ".bin Avg"], t3, ablation_keys, [100.0, 100.0, 1.0, 100.0]
    )
    lines += [""] + _ablation_lines(runs, t3, ablation_keys)
    lines += ["## Table 4: verification accuracy on the LFW-style .bin sets", ""]
    bin_titles = [_SET_TITLES.get(s, s) for s in bin_sets] + ["Avg"]
    lines += _markdown_table(bin_titles, t4, bin_keys, [100.0] * len(bin_keys)) + [""]
    return lines, {"table2": t2, "table3": t3, "table4": t4}


def report_markdown(
    runs: Runs,
    *,
    bin_sets: Sequence[str],
    groups: Sequence[str],
    compare: tuple[str, str],
    context: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The report (markdown) and its summary (JSON-able) from ``runs[source][loss]`` (trials' metrics).

    ``compare = (better, worse)``: the RFW groups whose paired gap gets a verdict per row; ``worse`` (default
    dark) is also the group of the pretraining verdicts. ``context`` adds lines about the setting.
    """
    better, worse = compare
    lines = ["# Face recognition: verification and RFW fairness by pretraining (QDGS Tables 2-4)", ""]
    lines += [f"- {key}: {value}" for key, value in context.items()]
    lines += ["", "Mean ± standard error over trials.", ""]
    table_lines, tables = _tables(runs, bin_sets, groups, worse)
    verdicts = pretraining_verdicts(runs, dark=worse)
    lines += _verdict_section(verdicts, worse) + table_lines
    rows = _ordered(runs, "loss")
    finding_lines, findings = _findings(rows, tables["table4"], compare)
    lines += finding_lines
    keys = {k for t in tables.values() for values in t.values() for k in values}
    summary = {
        "rows": {row: {k: [m.get(k) for m in trials] for k in sorted(keys)} for row, trials in rows.items()},
        "tables": {
            name: {
                row: {k: {"mean": v.mean, "se": v.se, "n": v.n} for k, v in values.items()}
                for row, values in t.items()
            }
            for name, t in tables.items()
        },
        "findings": findings,
        "pretraining_verdicts": [
            {
                **{k: v for k, v in asdict(verdict).items() if k not in ("source_stat", "other_stat")},
                "text": verdict.text,
            }
            for verdict in verdicts
        ],
    }
    return "\n".join(lines), summary
