"""``gan-report``: Table IV's GAN rows, Table II, Fig. 6 and the verdict, from every ``gan-eval@<variant>``.

Writes ``outputs/gan-report/{report.md, summary.json, figures/fig6.png}``.

The verdict's rule: a variant's FD (or LPIPS) is **lower than the baseline's beyond the standard errors** when
``baseline - variant > 2 * sqrt(se_baseline**2 + se_variant**2)`` (about a two-sided 5 % level for
independent normal estimates; the estimates share the real test images, so this treats them as independent).
The standard errors are the ones ``gan-eval`` wrote: bootstrap over test images (FD) and over images
(LPIPS) with one GAN seed, over seeds with several. Anything else is "not beyond the standard errors".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.gan_common import REPORT_DIR, eval_dir, fd_label, format_cell
from fp_pipeline.stages.generative_eval import sample_rows_figure
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["beats", "report_stage"]

#: the multiple of the difference's standard error a difference must exceed
SE_MULTIPLE = 2.0


def beats(baseline: Any, variant: Any) -> bool | None:
    """Whether ``variant`` is lower than ``baseline`` beyond the standard errors (module docstring); None when
    either is unavailable or has no standard error."""
    if not isinstance(baseline, dict) or not isinstance(variant, dict):
        return None
    if baseline.get("se") is None or variant.get("se") is None:
        return None
    margin = SE_MULTIPLE * math.sqrt(baseline["se"] ** 2 + variant["se"] ** 2)
    return bool(baseline["mean"] - variant["mean"] > margin)


def _load(variants: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for variant in variants:
        file = eval_dir(variant) / "metrics.json"
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: run `dvc repro gan-eval@{variant}` first")
        out[variant] = json.loads(file.read_text(encoding="utf-8"))
    return out


def _lpips_key(metrics: dict[str, Any]) -> str:
    return next(k for k in metrics if k.startswith("LPIPS ("))


def _tables(metrics: dict[str, dict[str, Any]], label: str) -> tuple[list[str], list[str]]:
    """Markdown lines of Table IV (GAN rows) and Table II."""
    first = next(iter(metrics.values()))
    lp = _lpips_key(first)
    table4 = [f"| variant | {label} (test) | {lp} (test) | test images |", "| --- | ---: | ---: | ---: |"]
    for variant, m in metrics.items():
        lp_cell = m[lp] if isinstance(m[lp], str) else m[lp]["test"]
        table4.append(
            f"| {variant} | {format_cell(m[label]['test'])} | {format_cell(lp_cell)} | {m['images']['test']} |"
        )
    sets = [s for s in first[label] if s != "test"]
    table2 = [f"| perturbation | variant | {label} | {lp} |", "| --- | --- | ---: | ---: |"]
    for name in ["test", *sets]:
        for variant, m in metrics.items():
            lp_cell = "unavailable (see Table IV)" if isinstance(m[lp], str) else m[lp].get(name)
            table2.append(
                f"| {'none (clean)' if name == 'test' else name} | {variant} | "
                f"{format_cell(m[label].get(name))} | {format_cell(lp_cell)} |"
            )
    return table4, table2


def _verdict(metrics: dict[str, dict[str, Any]], label: str, baseline: str) -> dict[str, Any]:
    lp = _lpips_key(metrics[baseline])
    out: dict[str, Any] = {
        "baseline": baseline,
        "rule": f"baseline - variant > {SE_MULTIPLE:g} * sqrt(se_baseline^2 + se_variant^2)",
        "variants": {},
    }
    for variant, m in metrics.items():
        if variant == baseline:
            continue
        row = {}
        for metric, key in ((label, label), (lp, lp)):
            base, mine = metrics[baseline][key], m[key]
            if isinstance(base, str) or isinstance(mine, str):
                row[metric] = None
                continue
            row[metric] = {s: beats(base[s], mine.get(s)) for s in base}
        out["variants"][variant] = row
    winners = [v for v, row in out["variants"].items() if row[label] and row[label].get("test")]
    out["lower_fd_on_test"] = winners
    out["higher_fd_on_test"] = [
        v
        for v, m in metrics.items()
        if v != baseline and beats(m[label].get("test"), metrics[baseline][label].get("test"))
    ]
    out["lpips_available"] = not isinstance(metrics[baseline][lp], str)
    return out


def _verdict_text(verdict: dict[str, Any], label: str) -> list[str]:
    base = verdict["baseline"]
    winners = verdict["lower_fd_on_test"]
    others = [v for v in verdict["variants"] if v not in winners]
    lines = [
        f"Rule: a variant is better than `{base}` when `{verdict['rule']}` (lower is better for both metrics)."
    ]
    if winners:
        lines.append(
            f"On the clean test maps, {', '.join(f'`{w}`' for w in winners)} gave a lower {label} than "
            f"`{base}` beyond the standard errors; {', '.join(f'`{o}`' for o in others) or 'no other'} did not."
        )
    else:
        lines.append(
            f"On the clean test maps, **no** multi-objective variant gave a lower {label} than `{base}` "
            "beyond the standard errors: with these settings the GAN rows do not separate the parsers."
        )
    if verdict["higher_fd_on_test"]:
        worse = ", ".join(f"`{v}`" for v in verdict["higher_fd_on_test"])
        lines.append(
            f"Higher (worse) than `{base}` beyond the standard errors on the clean test maps: {worse}."
        )
    per_set = {
        v: sorted(s for s, ok in (row[label] or {}).items() if ok and s != "test")
        for v, row in verdict["variants"].items()
    }
    hits = {v: s for v, s in per_set.items() if s}
    lines.append(
        "Under perturbation (Table II), lower beyond the standard errors: "
        + ("; ".join(f"`{v}` on {', '.join(s)}" for v, s in hits.items()) if hits else "none")
        + "."
    )
    if not verdict["lpips_available"]:
        lines.append("LPIPS is unavailable (no local trunk weights), so the verdict rests on the FD alone.")
    return lines


def _fig6(variants: list[str], run: Any) -> Path | None:
    """Rows per variant: its test maps, the faces generated from them; last row: the real test images."""
    fig = sample_rows_figure(
        [(v, eval_dir(v) / "samples.npz") for v in variants],
        "Fig. 6: test maps of each variant and the faces Pix2PixHD generated from them",
    )
    return None if fig is None else save_figure(fig, REPORT_DIR / "figures" / "fig6.png", run)


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Write ``outputs/gan-report/{report.md, summary.json, figures/}``."""
    from fp_core.atomic import write_json, write_text

    params = load_params(params_path)
    variants = list(section(params, "parsing.variants"))
    baseline = str(section(params, "gan.report.baseline"))
    if baseline not in variants:
        raise ParamsError(f"gan.report.baseline {baseline!r} is not a key of parsing.variants {variants}")
    label = fd_label(str(section(params, "gan.eval").get("features", "clip")))
    variants = [baseline, *(v for v in variants if v != baseline)]  # the baseline's rows first
    metrics = _load(variants)
    table4, table2 = _tables(metrics, label)
    verdict = _verdict(metrics, label, baseline)
    with stage_run("gan-report", params={"gan.report": section(params, "gan.report")}) as run:
        figure = _fig6(variants, run)
        first = next(iter(metrics.values()))
        lines = [
            "# Pix2PixHD from each parser's label maps (paper 1: Table IV GAN rows, Table II, Fig. 6)",
            "",
            f"Metric: **{label}**: the Frechet distance between the generated faces and the real test images in "
            + (
                "the image-feature space of the embedded face CLIP trained by `clip-faces` (offline: no Inception "
                "weights; clean-fid's CLIP-feature FD is the precedent). It is not the paper's Inception FID and "
                "the numbers are not comparable with the paper's."
                if "CLIP" in label
                else "Inception features."
            ),
            f"Uncertainty: mean ± standard error ({first[label]['test']['se_kind']}); GAN seeds {first['gan_seeds']}.",
            f"Reference images: {first['reference']}.",
            f"Floor: the same distance between two sets of **real** faces (val vs test, "
            f"{first['real_vs_real']['images']} vs {first['images']['test']} images) is "
            f"{first['real_vs_real'][label]:.4g}; a generator matching the real faces would score about this.",
            "",
            "## Table IV (GAN rows)",
            "",
            *table4,
            "",
            "## Table II (perturbed test inputs, parsed by each variant, then generated)",
            "",
            *table2,
            "",
            "## Verdict",
            "",
            *_verdict_text(verdict, label),
            "",
        ]
        if figure is not None:
            lines += ["## Fig. 6", "", "![Fig. 6](figures/fig6.png)", ""]
        write_text(REPORT_DIR / "report.md", "\n".join(lines))
        write_json(REPORT_DIR / "summary.json", {"fd_label": label, "metrics": metrics, "verdict": verdict})
        run({"winners_on_test": float(len(verdict["lower_fd_on_test"]))}, 0)
        run.log_artifact(REPORT_DIR / "report.md")
    typer.echo(
        f"gan-report: {REPORT_DIR / 'report.md'}; lower {label} than {baseline}: "
        f"{verdict['lower_fd_on_test'] or 'none'}"
    )
    return REPORT_DIR / "report.md"
