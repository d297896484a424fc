"""``fairhuman-report``: FairHuman's Tables 2-5 with mean ± s.e. and the MPD-vs-LS verdict per module, from every
``outputs/fairhuman/runs/<variant>/eval/seed-<seed>/`` of the variants in ``fairhuman.run``.

Writes ``outputs/fairhuman-report/{report.md, summary.json, figures/{fd.png, weights.png}}``.

Uncertainty: with two or more seeds (``fairhuman.seeds``) each cell is the mean ± s.e. over seeds (sample
standard deviation, ddof 1, over sqrt(seeds)); with one seed it is the run's own value ± its within-run s.e.
(the ``<key>_se`` of ``metrics.json``: bootstrap over the generated images for the FDs, over the test prompts'
images for the CLIP score), which leaves out the seed-to-seed variance. The captions say which.

Verdict rule (as in :mod:`fp_pipeline.stages.gan_report`): MPD differs from LS on a metric beyond the standard
errors when ``|MPD - LS| > 2 * sqrt(se_MPD^2 + se_LS^2)``; FDs lower is better, the CLIP score higher.
On FD face and FD hand the outcome is "improved", "worsened" or "no detectable difference"; FD global and the
CLIP score are "not hurt" unless MPD is worse beyond 2 s.e. A metric without a standard error gets "no
verdict". The paper's claim holds for a module only when both face and hand improved and neither global
metric is hurt.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.generative_eval import mean_se
from fp_pipeline.tracking import save_figure, stage_run

__all__ = [
    "BASE_METRICS",
    "REPORT_DIR",
    "RUNS_ROOT",
    "SE_MULTIPLE",
    "STRATEGIES",
    "Estimate",
    "Variant",
    "compare",
    "estimate",
    "headline",
    "load_variants",
    "markdown_table",
    "module_verdict",
    "report_stage",
    "table2_rows",
    "table3_rows",
    "table4_rows",
    "table5_rows",
]

RUNS_ROOT = Path("outputs/fairhuman/runs")
BASE_METRICS = Path("outputs/fairhuman/base-eval/metrics.json")
REPORT_DIR = Path("outputs/fairhuman-report")
#: the multiple of the difference's standard error a difference must exceed
SE_MULTIPLE = 2.0
#: Table 5's strategies in the paper's order (fp_diffusion.fairhuman.weighting.FAIRHUMAN_WEIGHTINGS)
STRATEGIES = ("global_only", "ls", "dwa", "uw", "rlw", "si", "nash_mtl", "mpd")
STRATEGY_LABEL = {
    "global_only": "global only",
    "ls": "LS",
    "dwa": "DWA",
    "uw": "UW",
    "rlw": "RLW",
    "si": "SI",
    "nash_mtl": "Nash-MTL",
    "mpd": "MPD",
    "mpd_output": "MPD (output space)",
}
MODULE_LABEL = {"lora": "LoRA", "controlnet": "ControlNet"}
METRIC_LABEL = {
    "clip_score": "CLIP score ↑",
    "fd_global": "FD global ↓",
    "fd_face": "FD face ↓",
    "fd_hand": "FD hand ↓",
    "hps_v2": "HPS v2 ↑",
    "image_reward": "ImageReward ↑",
}
HIGHER_BETTER = {"clip_score": True, "fd_global": False, "fd_face": False, "fd_hand": False}
#: keys every run's metrics.json must hold (docs/fairhuman.md, "Eval schema")
REQUIRED_KEYS = (
    "clip_score",
    "fd_global",
    "fd_face",
    "fd_hand",
    "seconds_per_image",
    "base_seconds_per_image",
    "speed_ratio",
    "extra_parameters",
    "extra_megabytes",
    "weight_global",
    "weight_face",
    "weight_hand",
)
OPTIONAL_SCORES = ("hps_v2", "image_reward")


@dataclass(frozen=True)
class Estimate:
    """A table cell: ``mean`` ± ``se`` (None: no standard error) from ``n`` runs; ``kind`` is ``"seeds"``
    (s.e. over seeds), ``"within-run"`` (one seed: the run's own ``_se``) or ``"runs"`` (Table 4: over every
    run of a module's variants)."""

    mean: float
    se: float | None
    n: int
    kind: str

    def cell(self) -> str:
        """``"12.3 ± 0.45"``, or the mean alone without a standard error; a whole mean of 10,000 or more (a
        parameter count) in full with thousands separators; an s.e. below 1e-9 of the mean (rounding) as 0."""
        whole = self.mean == int(self.mean) and abs(self.mean) >= 1e4 if math.isfinite(self.mean) else False
        text = f"{int(self.mean):,}" if whole else f"{self.mean:.4g}"
        if self.se is None:
            return text
        se = 0.0 if self.se <= 1e-9 * max(abs(self.mean), 1.0) else self.se
        return f"{text} ± {se:.2g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"mean", "se", "n", "se_kind"}``."""
        return {"mean": self.mean, "se": self.se, "n": self.n, "se_kind": self.kind}


@dataclass(frozen=True)
class Variant:
    """One trained variant: its params entry and the ``metrics.json`` / ``evaluation.json`` of each seed."""

    name: str
    module: str
    weighting: str
    lora_rank: int | None
    runs: tuple[Mapping[str, Any], ...]
    evaluations: tuple[Mapping[str, Any], ...]

    @property
    def main(self) -> bool:
        """Whether this is the module's default-rank row (``<module>-<weighting>``), not a Table 3 rank row."""
        return self.name == f"{self.module}-{self.weighting}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def estimate(runs: Sequence[Mapping[str, Any]], key: str) -> Estimate:
    """``key`` over the runs (one per seed): mean ± s.e. over seeds with two or more, else the one run's value
    ± its ``<key>_se`` (within-run; None when absent or not finite)."""
    if not runs:
        raise ValueError(f"estimate({key!r}) needs at least one run")
    values = [float(run[key]) for run in runs]
    if len(values) >= 2:
        mean, se = mean_se(values)
        return Estimate(mean, se, len(values), "seeds")
    return Estimate(values[0], _finite(runs[0].get(f"{key}_se")), 1, "within-run")


def compare(mpd: Estimate, ls: Estimate, *, higher_better: bool) -> dict[str, Any]:
    """MPD against LS on one metric: ``{"mpd", "ls", "difference" (MPD - LS), "se" (sqrt(se_MPD^2 + se_LS^2),
    None without both), "outcome"}``, the outcome "improved" / "worsened" (beyond ``SE_MULTIPLE`` s.e.), "no
    detectable difference" or "no verdict (no standard error)"."""
    difference = mpd.mean - ls.mean
    se = None if mpd.se is None or ls.se is None else math.sqrt(mpd.se**2 + ls.se**2)
    if se is None:
        outcome = "no verdict (no standard error)"
    elif abs(difference) > SE_MULTIPLE * se:
        outcome = "improved" if (difference > 0) == higher_better else "worsened"
    else:
        outcome = "no detectable difference"
    return {"mpd": mpd.to_dict(), "ls": ls.to_dict(), "difference": difference, "se": se, "outcome": outcome}


def module_verdict(mpd: Variant, ls: Variant) -> dict[str, Any]:
    """MPD vs LS for one module: a :func:`compare` per metric, ``hurt`` (True / False / None: no verdict) on the
    global metrics, and ``claim_holds``: face and hand improved and neither global metric hurt."""
    metrics = {
        key: compare(estimate(mpd.runs, key), estimate(ls.runs, key), higher_better=HIGHER_BETTER[key])
        for key in ("fd_face", "fd_hand", "fd_global", "clip_score")
    }
    for key in ("fd_global", "clip_score"):
        outcome = metrics[key]["outcome"]
        metrics[key]["hurt"] = None if outcome.startswith("no verdict") else outcome == "worsened"
    holds = all(metrics[k]["outcome"] == "improved" for k in ("fd_face", "fd_hand")) and all(
        metrics[k]["hurt"] is False for k in ("fd_global", "clip_score")
    )
    return {"mpd": mpd.name, "ls": ls.name, "metrics": metrics, "claim_holds": holds}


def _delta(c: Mapping[str, Any]) -> str:
    """``"MPD − LS = +0.027 ± 0.0051, 5.3 s.e."``: the difference, its s.e. and how many s.e. it is."""
    if c["se"] is None:
        return f"MPD − LS = {c['difference']:+.3g}"
    ratio = f", {abs(c['difference']) / c['se']:.2g} s.e." if c["se"] > 0 else ""
    return f"MPD − LS = {c['difference']:+.3g} ± {c['se']:.2g}{ratio}"


def headline(module: str, verdict: Mapping[str, Any]) -> str:
    """One sentence stating what the numbers say for ``module`` (``lora`` / ``controlnet``)."""
    m = verdict["metrics"]
    local = "; ".join(
        f"{METRIC_LABEL[k][:-2]} {m[k]['outcome']} ({_delta(m[k])})" for k in ("fd_face", "fd_hand")
    )
    glob = []
    for key in ("fd_global", "clip_score"):
        said = {True: "hurt: worse beyond 2 s.e.", False: "not hurt"}.get(m[key]["hurt"], m[key]["outcome"])
        said += " (improved beyond 2 s.e.)" if m[key]["outcome"] == "improved" else ""
        glob.append(f"{METRIC_LABEL[key][:-2]} {said} ({_delta(m[key])})")
    answer = "yes" if verdict["claim_holds"] else "no"
    return (
        f"**{MODULE_LABEL.get(module, module)}: {answer}**: did MPD improve the face and hand metrics over LS "
        f"without hurting the global ones, beyond 2 s.e.? {local}; {'; '.join(glob)}."
    )


def _cells(variant_runs: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    return {key: estimate(variant_runs, key) for key in keys}


def _score_cell(runs: Sequence[Mapping[str, Any]], key: str) -> Estimate | str:
    if runs and all(_finite(run.get(key)) is not None for run in runs):
        return estimate(runs, key)
    return "unavailable"


def table2_rows(
    variants: Mapping[str, Variant], base: Mapping[str, Any], floor: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Table 2: the base alone, {LoRA, ControlNet} x {global only, LS, MPD} (those run), the real-vs-real floor.
    Cells: :class:`Estimate` or a string (``"unavailable"``, ``"n/a"``)."""
    keys = ("clip_score", "fd_global", "fd_face", "fd_hand")
    rows = [
        {"row": "base alone", **_cells([base], keys), **{k: _score_cell([base], k) for k in OPTIONAL_SCORES}}
    ]
    for module in MODULE_LABEL:
        for weighting in ("global_only", "ls", "mpd"):
            v = variants.get(f"{module}-{weighting}")
            if v is None:
                continue
            row = {"row": f"{MODULE_LABEL[module]} {STRATEGY_LABEL[weighting]}", "variant": v.name}
            rows.append(row | _cells(v.runs, keys) | {k: _score_cell(v.runs, k) for k in OPTIONAL_SCORES})
    floor_row: dict[str, Any] = {"row": "real vs real (floor)", "clip_score": "n/a"}
    for part in ("global", "face", "hand"):
        value = _finite(floor.get(part))
        floor_row[f"fd_{part}"] = "n/a" if value is None else Estimate(value, None, 1, "within-run")
    rows.append(floor_row | dict.fromkeys(OPTIONAL_SCORES, "n/a"))
    return rows


def table5_rows(variants: Mapping[str, Variant]) -> list[dict[str, Any]]:
    """Table 5: every strategy run (default rank), per module, in the paper's order, with the last-epoch
    mean weights."""
    keys = ("clip_score", "fd_global", "fd_face", "fd_hand", "weight_global", "weight_face", "weight_hand")
    order = {w: i for i, w in enumerate((*STRATEGIES, "mpd_output"))}
    rows = []
    for module in MODULE_LABEL:
        mine = [v for v in variants.values() if v.module == module and v.main]
        for v in sorted(mine, key=lambda v: order.get(v.weighting, len(order))):
            label = f"{MODULE_LABEL[module]} {STRATEGY_LABEL.get(v.weighting, v.weighting)}"
            rows.append({"row": label, "variant": v.name, **_cells(v.runs, keys)})
    return rows


def table3_rows(variants: Mapping[str, Variant]) -> list[dict[str, Any]]:
    """Table 3: LoRA MPD by rank (ascending), empty when fewer than two ranks were run."""
    mine = sorted(
        (v for v in variants.values() if v.module == "lora" and v.weighting == "mpd"),
        key=lambda v: v.lora_rank or 0,
    )
    if len({v.lora_rank for v in mine}) < 2:
        return []
    keys = ("clip_score", "fd_global", "fd_face", "fd_hand")
    return [
        {"row": f"rank {v.lora_rank}", "variant": v.name, **_memory(v.runs), **_cells(v.runs, keys)}
        for v in mine
    ]


def table4_rows(variants: Mapping[str, Variant], base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table 4: per module (and LoRA rank), pooled over its variants' runs: the extra parameters and memory,
    the generation time and the speed ratio against the base alone."""
    keys = ("seconds_per_image", "speed_ratio")
    groups: dict[tuple[str, int | None], list[Mapping[str, Any]]] = {}
    for v in variants.values():
        groups.setdefault((v.module, v.lora_rank if v.module == "lora" else None), []).extend(v.runs)
    base_row = {
        "row": "base alone",
        "extra_parameters": Estimate(0.0, None, 1, "within-run"),
        "extra_megabytes": Estimate(0.0, None, 1, "within-run"),
        "seconds_per_image": estimate([base], "seconds_per_image"),
        "speed_ratio": Estimate(1.0, None, 1, "within-run"),
    }
    rows = [base_row]
    for (module, rank), runs in sorted(
        groups.items(), key=lambda g: (list(MODULE_LABEL).index(g[0][0]), g[0][1] or 0)
    ):
        label = MODULE_LABEL[module] + ("" if rank is None else f" (rank {rank})")
        rows.append(
            {"row": label, "runs": len(runs), **_memory(runs), **{key: _pooled(runs, key) for key in keys}}
        )
    return rows


def _memory(runs: Sequence[Mapping[str, Any]]) -> dict[str, Estimate]:
    """``extra_parameters`` / ``extra_megabytes``: fixed by the module and rank, so the mean without an s.e."""
    return {
        key: Estimate(float(mean_se([float(r[key]) for r in runs])[0]), None, len(runs), "runs")
        for key in ("extra_parameters", "extra_megabytes")
    }


def _pooled(runs: Sequence[Mapping[str, Any]], key: str) -> Estimate:
    """Like :func:`estimate`, over several variants' runs (kind ``"runs"``: the s.e. over those runs)."""
    if len(runs) < 2:
        return estimate(runs, key)
    mean, se = mean_se([float(run[key]) for run in runs])
    return Estimate(mean, se, len(runs), "runs")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], first: str) -> list[str]:
    """Markdown lines: header ``first`` then ``columns`` (key -> header); :class:`Estimate` cells as
    ``mean ± se``, strings as they are, a missing key as ``n/a``."""
    lines = [f"| {first} | " + " | ".join(columns.values()) + " |", "| --- |" + " ---: |" * len(columns)]
    for row in rows:
        cells = [row.get(key, "n/a") for key in columns]
        text = [c.cell() if isinstance(c, Estimate) else str(c) for c in cells]
        lines.append(f"| {row['row']} | " + " | ".join(text) + " |")
    return lines


def _read_json(file: Path, variant: str | None, seed: int | None) -> dict[str, Any]:
    if not file.is_file():
        made_by = (
            f"`fp fairhuman eval --variant {variant} --seed {seed}`"
            if variant is not None
            else "`fp fairhuman base` (it evaluates the base alone; or `dvc repro fairhuman-base`)"
        )
        raise ParamsError(f"{file} is missing: run {made_by} first")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ParamsError(f"{file} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ParamsError(f"{file}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_keys(data: Mapping[str, Any], keys: Sequence[str], file: Path) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ParamsError(f"{file} lacks {missing} (expected the FairHuman eval schema, docs/fairhuman.md)")


def load_variants(params: Mapping[str, Any], root: Path = RUNS_ROOT) -> dict[str, Variant]:
    """Every variant in ``fairhuman.run`` with the eval files of each seed in ``fairhuman.seeds``
    (``<root>/<variant>/eval/seed-<seed>/{metrics,evaluation}.json``); a missing file is a ParamsError naming
    it and the command that writes it."""
    run = list(section(params, "fairhuman.run"))
    seeds = [int(s) for s in section(params, "fairhuman.seeds")]
    configs = section(params, "fairhuman.variants")
    if not run or not seeds:
        raise ParamsError(f"fairhuman.run {run} and fairhuman.seeds {seeds} must both be non-empty")
    out = {}
    for name in run:
        config = configs.get(name) if isinstance(configs, Mapping) else None
        if not isinstance(config, Mapping) or "module" not in config or "weighting" not in config:
            raise ParamsError(
                f"fairhuman.run names {name!r}: expected a fairhuman.variants entry with module and weighting"
            )
        runs, evaluations = [], []
        for seed in seeds:
            folder = root / name / "eval" / f"seed-{seed}"
            metrics = _read_json(folder / "metrics.json", name, seed)
            _check_keys(metrics, REQUIRED_KEYS, folder / "metrics.json")
            runs.append(metrics)
            evaluations.append(_read_json(folder / "evaluation.json", name, seed))
        rank = evaluations[0].get("lora_rank", config.get("lora_rank"))
        module = str(config["module"])
        if module not in MODULE_LABEL:
            raise ParamsError(
                f"fairhuman.variants.{name}.module: expected one of {list(MODULE_LABEL)}, got {module!r}"
            )
        out[name] = Variant(
            name=name,
            module=module,
            weighting=str(config["weighting"]),
            lora_rank=None if module != "lora" or rank is None else int(rank),
            runs=tuple(runs),
            evaluations=tuple(evaluations),
        )
    return out


def _bars(ax: Any, names: list[str], series: dict[str, list[Estimate]], title: str) -> None:
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        errs = [e.se or 0.0 for e in values]
        ax.bar(xs, [e.mean for e in values], width, yerr=errs, capsize=2, label=label)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def _figures(variants: Mapping[str, Variant], run: Any) -> None:
    """``figures/fd.png`` (FD global / face / hand per variant, ± s.e.) and ``figures/weights.png``."""
    from matplotlib.figure import Figure

    names = list(variants)
    for file, keys, title, ylabel in (
        (
            "fd.png",
            ("fd_global", "fd_face", "fd_hand"),
            "Frechet distances per variant (± s.e.)",
            "FD (lower is better)",
        ),
        (
            "weights.png",
            ("weight_global", "weight_face", "weight_hand"),
            "Last-epoch mean weights per variant",
            "weight",
        ),
    ):
        fig = Figure(figsize=(max(5.0, 0.7 * len(names) + 2), 3.4), constrained_layout=True)
        ax = fig.subplots()
        series = {k.split("_", 1)[1]: [estimate(variants[n].runs, k) for n in names] for k in keys}
        _bars(ax, names, series, title)
        ax.set_ylabel(ylabel)
        save_figure(fig, REPORT_DIR / "figures" / file, run)


def _verdicts(variants: Mapping[str, Variant]) -> dict[str, dict[str, Any] | None]:
    """:func:`module_verdict` per module, None where ``<module>-ls`` or ``<module>-mpd`` was not run."""
    out: dict[str, dict[str, Any] | None] = {}
    for module in MODULE_LABEL:
        mpd, ls = variants.get(f"{module}-mpd"), variants.get(f"{module}-ls")
        out[module] = None if mpd is None or ls is None else module_verdict(mpd, ls)
    return out


def _verdict_lines(verdicts: Mapping[str, dict[str, Any] | None]) -> list[str]:
    lines = [
        f"Rule: MPD differs from LS beyond the standard errors when `|MPD - LS| > {SE_MULTIPLE:g} * "
        "sqrt(se_MPD^2 + se_LS^2)` (FDs: lower is better; CLIP score: higher). The claim holds for a module "
        "only when FD face and FD hand both improved and FD global and the CLIP score are not hurt.",
        "",
    ]
    for module, verdict in verdicts.items():
        if verdict is None:
            lines.append(
                f"- {MODULE_LABEL[module]}: no verdict: add `{module}-ls` and `{module}-mpd` to `fairhuman.run`."
            )
        else:
            lines.append(f"- {headline(module, verdict)}")
    return lines


def _captions(variants: Mapping[str, Variant], seeds: list[int]) -> tuple[str, str]:
    """The uncertainty caption and the reasons HPS v2 / ImageReward are unavailable."""
    first = next(iter(variants.values()))
    if len(seeds) >= 2:
        unc = (
            f"Cells: mean ± s.e. over {len(seeds)} training seeds {seeds} (ddof 1). The s.e. over seeds holds "
            "the test prompts and their generation noise fixed (every run draws the same images' noise), so it "
            "measures the training seed's spread on this test set, not the test set's sampling error (each "
            f"run's own bootstrap s.e. is in its metrics.json); with {len(seeds)} seeds each s.e. rests on "
            f"{len(seeds) - 1} degree(s) of freedom, so a difference near the 2-s.e. line is weak evidence."
        )
    else:
        unc = (
            f"Cells: one training seed ({seeds[0]}): the run's value ± its within-run s.e. (bootstrap over the "
            "generated images for the FDs, over the test prompts' images for the CLIP score); the seed-to-seed "
            "variance is not in it. The base alone's row is always within-run."
        )
    reasons = first.evaluations[0].get("unavailable") or {}
    said = [f"{METRIC_LABEL[k][:-2]}: {reasons[k]}" for k in OPTIONAL_SCORES if k in reasons]
    return unc, ("Unavailable: " + "; ".join(said) + ".") if said else ""


def _report_lines(
    tables: Mapping[str, list[dict[str, Any]]],
    verdicts: Mapping[str, dict[str, Any] | None],
    variants: Mapping[str, Variant],
    seeds: list[int],
) -> list[str]:
    first = next(iter(variants.values())).evaluations[0]
    unc, unavailable = _captions(variants, seeds)
    fd_cols = {k: METRIC_LABEL[k] for k in ("clip_score", "fd_global", "fd_face", "fd_hand")}
    weight_cols = {"weight_global": "w global", "weight_face": "w face", "weight_hand": "w hand"}
    mem_cols = {"extra_parameters": "extra parameters", "extra_megabytes": "extra MB (fp32)"}
    lines = [
        "# FairHuman: global only, LS and MPD weighting of the global, face and hand losses (Tables 2-5)",
        "",
        f"FD feature space: {first.get('features', 'not recorded')}; {first.get('images', '?')} generated images "
        "per run. Not the paper's FID; the numbers are not comparable with the paper's.",
        unc,
        "",
        "## Verdict: MPD against LS",
        "",
        *_verdict_lines(verdicts),
        "",
        "## Table 2: global only / LS / MPD",
        "",
        unc + (" " + unavailable if unavailable else ""),
        "",
        *markdown_table(tables["table2"], fd_cols | {k: METRIC_LABEL[k] for k in OPTIONAL_SCORES}, "method"),
        "",
        "## Table 5: all weighting strategies",
        "",
        *markdown_table(tables["table5"], fd_cols | weight_cols, "method"),
        "",
        "## Table 3: LoRA MPD by rank",
        "",
    ]
    if tables["table3"]:
        lines += markdown_table(tables["table3"], mem_cols | fd_cols, "LoRA rank")
    else:
        lines.append(
            "Only one LoRA rank was run: add e.g. `lora-mpd-r64: {module: lora, weighting: mpd, lora_rank: 64}` to "
            "`fairhuman.variants` and its name to `fairhuman.run` for this table."
        )
    speed_cols = mem_cols | {"seconds_per_image": "seconds / image", "speed_ratio": "speed ratio (vs base)"}
    lines += [
        "",
        "## Table 4: memory and speed per module",
        "",
        "Pooled over every run of the module's variants (the same module at the same rank); speed ratio = "
        "seconds per image / the base alone's, measured in the same process (LoRA fused).",
        "",
        *markdown_table(tables["table4"], speed_cols, "module"),
        "",
        "## Figures",
        "",
        "![FD per variant](figures/fd.png)",
        "",
        "![weights per variant](figures/weights.png)",
        "",
    ]
    return lines


def _json_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v.to_dict() if isinstance(v, Estimate) else v for k, v in row.items()} for row in rows]


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Write ``outputs/fairhuman-report/{report.md, summary.json, figures/}`` from the runs of ``fairhuman.run``."""
    from fp_core.atomic import write_json, write_text

    params = load_params(params_path)
    seeds = [int(s) for s in section(params, "fairhuman.seeds")]
    variants = load_variants(params)
    base = _read_json(BASE_METRICS, None, None)
    _check_keys(base, ("clip_score", "fd_global", "fd_face", "fd_hand", "seconds_per_image"), BASE_METRICS)
    floor = next(iter(variants.values())).evaluations[0].get("fd_floor") or {}
    tables = {
        "table2": table2_rows(variants, base, floor),
        "table5": table5_rows(variants),
        "table3": table3_rows(variants),
        "table4": table4_rows(variants, base),
    }
    verdicts = _verdicts(variants)
    logged = {"fairhuman.run": section(params, "fairhuman.run"), "fairhuman.seeds": seeds}
    with stage_run("fairhuman-report", params=logged) as run:
        _figures(variants, run)
        write_text(REPORT_DIR / "report.md", "\n".join(_report_lines(tables, verdicts, variants, seeds)))
        summary = {
            "seeds": seeds,
            "se_kind": "seeds" if len(seeds) >= 2 else "within-run",
            "rule": f"|MPD - LS| > {SE_MULTIPLE:g} * sqrt(se_MPD^2 + se_LS^2)",
            "features": next(iter(variants.values())).evaluations[0].get("features"),
            "fd_floor": floor,
            "variants": {
                v.name: {"module": v.module, "weighting": v.weighting, "lora_rank": v.lora_rank}
                for v in variants.values()
            },
            "tables": {name: _json_rows(rows) for name, rows in tables.items()},
            "verdicts": verdicts,
        }
        write_json(REPORT_DIR / "summary.json", summary)
        run({f"claim_holds_{m}": float(v["claim_holds"]) for m, v in verdicts.items() if v is not None}, 0)
        run.log_artifact(REPORT_DIR / "report.md")
    if progress:
        said = {m: (None if v is None else v["claim_holds"]) for m, v in verdicts.items()}
        typer.echo(
            f"fairhuman-report: {REPORT_DIR / 'report.md'}; MPD beats LS on face and hand (claim holds): {said}"
        )
    return REPORT_DIR / "report.md"
