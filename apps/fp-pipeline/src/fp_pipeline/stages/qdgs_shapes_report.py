"""``qdgs-shapes-report``: QDGS Figs. 1 and 3 and the verdicts of the shapes repair, from the stages' files.

* Fig. 1: balanced (mean colour x shape group) accuracy against the training set's bias for real only,
  real + QDGS samples and real + random samples, mean +- standard error over the classifier seeds;
* Fig. 3: coverage of the colour x shape measure space, QDGS against random sampling at equal evaluations
  (occupied cells of both result archives side by side);
* ``report.md``: the embedded CLIP's zero-shot accuracy, the samplers' archive metrics, and per bias the arms
  with their paired differences and verdicts (the rule: a difference beyond two standard errors of the paired
  differences over seeds, else "no detectable difference"); ``summary.json`` for ``dvc metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fp_pipeline.config import load_params
from fp_pipeline.stages.qdgs_common import (
    ARCHIVE_DIR,
    METHODS,
    REPORT_DIR,
    RUNS_DIR,
    SAMPLES_DIR,
    ZERO_SHOT_FILE,
    biases,
    classifier_file,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["ARMS", "figure_accuracy_vs_bias", "figure_coverage", "report_stage"]

#: the repair arms, in the order of Fig. 1
ARMS: dict[str, str] = {"real": "real only", "qd": "real + QDGS", "random": "real + random"}
_COLOURS = {"real": "tab:gray", "qd": "tab:blue", "random": "tab:orange"}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the stage that writes it (`uv run dvc repro`)")
    return json.loads(path.read_text(encoding="utf-8"))


def figure_accuracy_vs_bias(rows: list[dict[str, Any]]) -> Any:
    """Fig. 1: one line per arm with its standard-error band; ``rows`` from the classifier files."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), constrained_layout=True)
    ax = fig.subplots()
    x = np.array([row["bias"] for row in rows])
    for arm, label in ARMS.items():
        mean = np.array([row["summary"]["arms"][arm]["mean"] for row in rows])
        se = np.array([row["summary"]["arms"][arm]["se"] for row in rows])
        ax.plot(x, mean, marker="o", label=label, color=_COLOURS[arm])
        ax.fill_between(x, mean - se, mean + se, alpha=0.2, color=_COLOURS[arm])
    ax.set_xlabel("bias of the real training set")
    ax.set_ylabel("balanced accuracy (mean of 4 groups)")
    ax.invert_xaxis()
    ax.legend()
    ax.set_title("Shapes: repair by fine-tuning on samples")
    return fig


def figure_coverage(archives: dict[str, Any], metrics: dict[str, dict[str, float]]) -> Any:
    """Fig. 3: occupied cells of the colour x shape grid, QDGS beside random sampling."""
    from matplotlib.figure import Figure

    from fp_qdgs.plotting import archive_grid

    fig = Figure(figsize=(9.0, 4.0), constrained_layout=True)
    axes = fig.subplots(1, len(archives))
    for ax, (method, archive) in zip(np.atleast_1d(axes), archives.items()):
        grid = archive_grid(archive)
        (lo0, hi0), (lo1, hi1) = zip(archive.lower_bounds, archive.upper_bounds)
        ax.imshow(
            np.isfinite(grid).T,
            origin="lower",
            extent=(lo0, hi0, lo1, hi1),
            aspect="auto",
            cmap="Greens",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        ax.set_title(f"{method}: coverage {metrics[method]['coverage']:.3f}")
        ax.set_xlabel("colour measure (red < 0 < blue)")
        ax.set_ylabel("shape measure (triangle < 0 < square)")
    return fig


def _load_archives() -> dict[str, Any]:
    from fp_qdgs.checkpoint import load_archive

    return {m: load_archive(ARCHIVE_DIR / f"{m}.npz", _read_json(ARCHIVE_DIR / f"{m}.json")) for m in METHODS}


def _fmt(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f} ± {stat['se']:.3f}"


def _markdown(
    zero_shot: dict[str, Any],
    runs: dict[str, dict[str, float]],
    rows: list[dict[str, Any]],
    sizes: dict[str, int],
    classifier: dict[str, Any],
) -> str:
    lines = [
        "# QDGS shapes proof of concept",
        "",
        f"CLIP: {zero_shot['clip']}. Zero-shot accuracy on {int(zero_shot['heldout_images'])} held-out renders "
        "(chance 0.5):",
        "",
        "| prompt pair | accuracy |",
        "|---|---|",
        f'| colour: "A red shape" / "A blue shape" | {zero_shot["colour"]:.3f} |',
        f'| shape: "A triangle with 3 edges" / "A square or diamond with 4 edges" | {zero_shot["shape"]:.3f} |',
        f'| objective: "A regular square or a triangle." / "Splatters of colors." | {zero_shot["objective"]:.3f} |',
        "",
        "## Sampling at equal generator evaluations (Fig. 3)",
        "",
        "| method | evaluations | coverage | QD score | best objective | mean objective | exported samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, m in runs.items():
        lines.append(
            f"| {method} | {int(m['evaluations'])} | {m['coverage']:.3f} | {m['qd_score']:.1f} | "
            f"{m['objective_max']:.2f} | {m['objective_mean']:.2f} | {sizes[method]} |"
        )
    ratio = runs["qd"]["coverage"] / max(runs["random"]["coverage"], 1e-12)
    lines += [
        "",
        f"Coverage ratio QD / random: {ratio:.2f}.",
        "",
        "## Repair of the biased classifier (Fig. 1)",
        "",
        "Balanced accuracy, mean ± s.e. over seeds; differences paired by seed; verdict: beyond 2 s.e.",
        "",
        "| bias | real only | real + QDGS | real + random | QD - real | verdict | QD - random | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["summary"]
        d1, d2 = s["differences"]["qd-real"], s["differences"]["qd-random"]
        lines.append(
            f"| {row['bias']:.2f} | {_fmt(s['arms']['real'])} | {_fmt(s['arms']['qd'])} | "
            f"{_fmt(s['arms']['random'])} | {_fmt(d1)} | {d1['verdict']} | {_fmt(d2)} | {d2['verdict']} |"
        )
    lines += ["", *_verdict_lines(rows), "", _settings_line(classifier)]
    return "\n".join(lines) + "\n"


def _verdict_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One sentence per comparison: at which bias levels fine-tuning on QDGS samples raised accuracy."""
    out = []
    for key, other in (("qd-real", "real data only"), ("qd-random", "random samples")):
        by_verdict: dict[str, list[str]] = {}
        for row in rows:
            by_verdict.setdefault(row["summary"]["differences"][key]["verdict"], []).append(
                f"{row['bias']:.2f}"
            )
        parts = [f"{verdict} at bias {', '.join(levels)}" for verdict, levels in sorted(by_verdict.items())]
        out.append(f"- QDGS samples against {other}: " + "; ".join(parts) + ".")
    return out


def _settings_line(classifier: dict[str, Any]) -> str:
    return (
        f"Classifier: {classifier.get('base_epochs')} epochs on the biased set, then {classifier.get('finetune_epochs')} "
        f"on each sample set, seeds {classifier.get('seeds')} (the paper: 20 and 30 epochs). With few base epochs the "
        "real-only classifier learns the colour shortcut and sits near 0.5; compare the arms, not these levels, "
        "with the paper's."
    )


def report_stage(*, params_path: Path) -> Path:
    """Write ``outputs/qdgs-shapes-report`` (report.md, summary.json, figures)."""
    params = load_params(params_path)
    zero_shot = _read_json(ZERO_SHOT_FILE)
    runs = {m: _read_json(RUNS_DIR / f"{m}.json") for m in METHODS}
    rows = sorted((_read_json(classifier_file(b)) for b in biases(params)), key=lambda r: -r["bias"])
    sizes = {m: int(_read_json(SAMPLES_DIR / m / "manifest.json")["num_samples"]) for m in METHODS}
    summary = {
        "zero_shot": {k: zero_shot[k] for k in ("colour", "shape", "objective")},
        "coverage": {m: runs[m]["coverage"] for m in METHODS},
        "coverage_ratio": runs["qd"]["coverage"] / max(runs["random"]["coverage"], 1e-12),
        "balanced_accuracy": {
            f"{row['bias']:.2f}": {arm: row["summary"]["arms"][arm]["mean"] for arm in ARMS} for row in rows
        },
    }
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    with stage_run("qdgs-shapes-report", params={"qdgs.shapes.data.biases": biases(params)}) as run:
        save_figure(figure_accuracy_vs_bias(rows), REPORT_DIR / "fig1-accuracy-vs-bias.png", run)
        save_figure(figure_coverage(_load_archives(), runs), REPORT_DIR / "fig3-coverage.png", run)
        from fp_core.atomic import write_json, write_text

        write_text(
            REPORT_DIR / "report.md",
            _markdown(zero_shot, runs, rows, sizes, params["qdgs"]["shapes"]["classifier"]),
        )
        write_json(REPORT_DIR / "summary.json", summary)
        run({"coverage_ratio": summary["coverage_ratio"]}, 0)
        run.log_artifact(REPORT_DIR / "report.md")
    typer.echo(f"qdgs-shapes-report: {REPORT_DIR / 'report.md'}")
    return REPORT_DIR
