"""``controlnet-report``: Table IV's diffusion rows, Fig. 7, the curve against epochs, and the verdicts, from
every ``controlnet-eval@<variant>``.

Writes ``outputs/controlnet-report/{report.md, summary.json, figures/{fig7.png, curve.png}}``.

Verdict rule (as on the GAN side, :mod:`fp_pipeline.stages.gan_report`): ``a`` is lower than ``b`` beyond the
standard errors when ``b - a > 2 * sqrt(se_a**2 + se_b**2)``; FD lower is better, adherence higher is better.
Open question 2 (training past one epoch) is answered per variant by comparing the last snapshot with the
first (epoch 1) on both; epoch 0 (the base alone) shows how much of the adherence the ControlNet adds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.controlnet_common import REPORT_DIR, controlnet_variants, eval_dir
from fp_pipeline.stages.gan_common import fd_label, format_cell
from fp_pipeline.stages.gan_report import SE_MULTIPLE, beats
from fp_pipeline.stages.generative_eval import sample_rows_figure
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["convergence", "report_stage"]


def _load(variants: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for variant in variants:
        file = eval_dir(variant) / "metrics.json"
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: run `dvc repro controlnet-eval@{variant}` first")
        out[variant] = json.loads(file.read_text(encoding="utf-8"))
    return out


def _lpips_key(metrics: dict[str, Any]) -> str:
    return next(k for k in metrics if k.startswith("LPIPS ("))


def _table4(metrics: dict[str, dict[str, Any]], label: str) -> list[str]:
    lp = _lpips_key(next(iter(metrics.values())))
    lines = [
        f"| variant | {label} | {lp} | map adherence (mIoU) | epochs | test images |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant, m in metrics.items():
        lines.append(
            f"| {variant} | {format_cell(m[label])} | {format_cell(m[lp])} | {format_cell(m['adherence_miou'])} "
            f"| {m['final_epoch']} | {m['images']} |"
        )
    return lines


def _curve_table(metrics: dict[str, dict[str, Any]], label: str) -> list[str]:
    lines = [f"| variant | epoch | {label} | adherence (mIoU) |", "| --- | ---: | ---: | ---: |"]
    for variant, m in metrics.items():
        for row in m["curve"]:
            name = f"{row['epoch']} (base alone)" if row["epoch"] == 0 else str(row["epoch"])
            lines.append(
                f"| {variant} | {name} | {format_cell(row['fd'])} | {format_cell(row['adherence'])} |"
            )
    return lines


def convergence(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """Open question 2 for one variant: the last snapshot against the first (FD lower / higher, adherence
    higher / lower beyond the standard errors, or neither), and the first against the base alone (epoch 0)
    on adherence. ``beats(a, b)`` means "b lower than a", so "x higher than y" is ``beats(x, y)``."""
    by_epoch = {row["epoch"]: row for row in curve}
    trained = sorted(e for e in by_epoch if e > 0)
    if not trained:
        raise ValueError("the curve has no trained snapshot (epoch >= 1)")
    first, last = by_epoch[trained[0]], by_epoch[trained[-1]]
    base = by_epoch.get(0)
    return {
        "first_epoch": trained[0],
        "last_epoch": trained[-1],
        "fd_lower_at_last": beats(first["fd"], last["fd"]),
        "fd_higher_at_last": beats(last["fd"], first["fd"]),
        "adherence_higher_at_last": beats(last["adherence"], first["adherence"]),
        "adherence_lower_at_last": beats(first["adherence"], last["adherence"]),
        "adherence_above_base": None if base is None else beats(first["adherence"], base["adherence"]),
    }


def _said(flag: bool | None, yes: str, no: str) -> str:
    return yes if flag else no


def _verdict_text(metrics: dict[str, dict[str, Any]], label: str, baseline: str) -> list[str]:
    lines = [
        f"Rule: `b - a > {SE_MULTIPLE:g} * sqrt(se_a^2 + se_b^2)` (FD: lower is better; adherence: higher)."
    ]
    for variant, m in metrics.items():
        if variant == baseline:
            continue
        base = metrics[baseline]
        fd = _said(beats(base[label], m[label]), "lower", "not lower")
        worse = beats(m[label], base[label])
        adh = _said(beats(m["adherence_miou"], base["adherence_miou"]), "higher", "not higher")
        lines.append(
            f"`{variant}` against `{baseline}` (final epoch): {label} {fd}"
            + (" (higher, worse, beyond the s.e.)" if worse else "")
            + f" and adherence {adh} beyond the standard errors."
        )
    lines += ["", "Open question 2 (what happens past one epoch), per variant:"]
    for variant, m in metrics.items():
        c = convergence(m["curve"])
        fd = (
            "lower"
            if c["fd_lower_at_last"]
            else "higher"
            if c["fd_higher_at_last"]
            else "no detectable change in"
        )
        adh = (
            "higher"
            if c["adherence_higher_at_last"]
            else "lower"
            if c["adherence_lower_at_last"]
            else "no detectable change in"
        )
        lines.append(
            f"- `{variant}`: from epoch {c['first_epoch']} to {c['last_epoch']}, {fd} {label if fd != 'no detectable change in' else 'FD'}"
            f" and {adh} adherence (beyond the s.e.); after epoch {c['first_epoch']} the adherence is "
            + ("above" if c["adherence_above_base"] else "not above")
            + " the base alone's."
        )
    return lines


def _curve_figure(metrics: dict[str, dict[str, Any]], label: str, run: Any) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), constrained_layout=True)
    ax_fd, ax_adh = fig.subplots(1, 2)
    for variant, m in metrics.items():
        epochs = [r["epoch"] for r in m["curve"]]
        for ax, key in ((ax_fd, "fd"), (ax_adh, "adherence")):
            means = [r[key]["mean"] for r in m["curve"]]
            errs = [r[key].get("se") or 0.0 for r in m["curve"]]
            ax.errorbar(epochs, means, yerr=errs, marker="o", capsize=3, label=variant)
    ax_fd.set(xlabel="epoch (0: the base alone)", ylabel=label, title="FD against epochs (± s.e.)")
    ax_adh.set(
        xlabel="epoch (0: the base alone)", ylabel="mIoU of parse vs map", title="Map adherence (± s.e.)"
    )
    ax_fd.legend(fontsize=7)
    return save_figure(fig, REPORT_DIR / "figures" / "curve.png", run)


def _fig7(variants: list[str], run: Any) -> Path | None:
    """Rows per variant: its test maps, the faces its final ControlNet generated; last row: the real faces."""
    fig = sample_rows_figure(
        [(v, eval_dir(v) / "samples.npz") for v in variants],
        "Fig. 7: test maps of each variant and the faces the ControlNet generated from them",
    )
    return None if fig is None else save_figure(fig, REPORT_DIR / "figures" / "fig7.png", run)


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Write ``outputs/controlnet-report/{report.md, summary.json, figures/}``."""
    from fp_core.atomic import write_json, write_text

    params = load_params(params_path)
    variants = controlnet_variants(params)
    baseline = str(section(params, "controlnet.report.baseline"))
    if baseline not in variants:
        raise ParamsError(f"controlnet.report.baseline {baseline!r} is not in controlnet.variants {variants}")
    label = fd_label(str(section(params, "controlnet.eval").get("features", "clip")))
    variants = [baseline, *(v for v in variants if v != baseline)]
    metrics = _load(variants)
    base_file = Path("outputs/diffusion-base-metrics.json")
    base = json.loads(base_file.read_text(encoding="utf-8")) if base_file.is_file() else None
    with stage_run(
        "controlnet-report", params={"controlnet.report": section(params, "controlnet.report")}
    ) as run:
        _curve_figure(metrics, label, run)
        fig7 = _fig7(variants, run)
        lines = [
            "# ControlNet from each parser's label maps (paper 1: Table IV diffusion rows, Fig. 7, open question 2)",
            "",
            f"Metric: **{label}** between the generated faces and the real test images"
            + (
                " in the embedded face CLIP's image-feature space (offline: no Inception weights); not the paper's "
                "FID, and not comparable with its numbers."
                if "CLIP" in label
                else "."
            ),
            "Map adherence: the variant's own parser parses each generated face; mIoU of that parse against the "
            "conditioning map, mean ± s.e. over test images (the paper does not measure it).",
        ]
        if base is not None:
            bl = base["fd_label"]
            lines.append(
                f"The base (default: trained here): {bl} of its text-only samples {format_cell(base[bl])}; "
                f"real-vs-real floor {base['real_vs_real'][bl]:.4g}."
            )
        lines += ["", "## Table IV (diffusion rows, final epoch)", "", *_table4(metrics, label), ""]
        lines += ["## FD and adherence against epochs", "", *_curve_table(metrics, label), ""]
        lines += [
            "![curve](figures/curve.png)",
            "",
            "## Verdict",
            "",
            *_verdict_text(metrics, label, baseline),
            "",
        ]
        if fig7 is not None:
            lines += ["## Fig. 7", "", "![Fig. 7](figures/fig7.png)", ""]
        write_text(REPORT_DIR / "report.md", "\n".join(lines))
        summary = {
            "fd_label": label,
            "metrics": metrics,
            "convergence": {v: convergence(m["curve"]) for v, m in metrics.items()},
        }
        write_json(REPORT_DIR / "summary.json", summary)
        run.log_artifact(REPORT_DIR / "report.md")
    typer.echo(f"controlnet-report: {REPORT_DIR / 'report.md'}")
    return REPORT_DIR / "report.md"
