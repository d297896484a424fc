"""``recognition-report``: QDGS's Tables 2-4 over every source, loss and trial (mean ± s.e. over trials), the
pretraining verdicts (QD vs rand and vs none on the dark group and the disparate impact) and figures, into
``outputs/recognition-report`` (the tables: :mod:`fp_pipeline.stages.recognition_report`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.recognition_common import (
    REPORT_DIR,
    RUNS_DIR,
    pretrain_dir,
    pretrain_settings,
    run_sources,
    train_settings,
    trials,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["report_stage"]


def _pretraining_sizes(sources: list[str], trial: int) -> str:
    """``"; sets: rand 28 identities / 252 images, ..."`` from the pretraining manifests of ``trial`` (sources
    without a set or a manifest are left out)."""
    import json

    sizes = []
    for source in sources:
        manifest = pretrain_dir(source, trial) / "manifest.json"
        info = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        if info.get("backbone") is not None:
            sizes.append(
                f"{source} {info.get('identities', '?')} identities / {info.get('images', '?')} images"
            )
    return f"; sets: {', '.join(sizes)}" if sizes else ""


def _report_context(params: dict[str, Any], sources: list[str], losses: list[str]) -> dict[str, str]:
    data = section(params, "recognition.data")
    settings = train_settings(params, losses[0], trials(params)[0])
    pretrain = pretrain_settings(params, trials(params)[0])
    paths = section(params, "recognition.pretrain.sources")
    return {
        "training set": str(data["train"]),
        "backbone": f"{settings['backbone']} (width {settings.get('width', 64)}), input {settings['input_size']}, "
        f"embedding {settings['embedding_size']}, {settings['epochs']} epochs",
        "trials": f"{len(trials(params))} per source and loss (seeds {trials(params)}, the same for every source; "
        "each trial pretrains anew with its seed, so the s.e. includes the pretraining's spread)",
        "pretraining": ", ".join(f"{s} ({paths[s] or 'fresh backbone'})" for s in sources)
        + f"; pretraining recipe: {pretrain['loss']}, {pretrain['epochs']} epochs"
        + _pretraining_sizes(sources, trials(params)[0]),
        ".bin sets": ", ".join(data["bin_sets"]),
        "RFW groups": ", ".join(data["rfw_groups"]),
    }


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Tables 2-4 over every source, loss and trial, the pretraining verdicts and figures into
    ``outputs/recognition-report``."""
    from fp_core.atomic import write_json, write_text
    from fp_pipeline.stages.recognition_plots import plot_group_accuracy, plot_roc
    from fp_pipeline.stages.recognition_report import read_runs, report_markdown, row_label

    params = load_params(params_path)
    data = section(params, "recognition.data")
    report = section(params, "recognition.report")
    losses = list(section(params, "recognition.losses"))
    sources = run_sources(params)
    matrix = [(s, loss, t) for s in sources for loss in losses for t in trials(params)]
    runs, curves = read_runs(RUNS_DIR, matrix)
    compare = tuple(report["compare"])
    markdown, summary = report_markdown(
        runs,
        bin_sets=data["bin_sets"],
        groups=data["rfw_groups"],
        compare=(compare[0], compare[1]),
        context=_report_context(params, sources, losses),
    )
    rows = {row_label(s, loss): runs[s][loss] for s in runs for loss in runs[s]}
    with stage_run(
        "recognition-report",
        params={"report": report, "sources": sources, "losses": losses, "trials": trials(params)},
    ) as run:
        write_text(REPORT_DIR / "report.md", markdown + "\n")
        write_json(REPORT_DIR / "summary.json", summary)
        save_figure(
            plot_group_accuracy(rows, data["rfw_groups"]), REPORT_DIR / "figures" / "group_accuracy.png", run
        )
        save_figure(plot_roc(curves), REPORT_DIR / "figures" / "roc.png", run)
        run.log_artifact(REPORT_DIR / "report.md")
        for row, finding in summary["findings"].items():
            key = re.sub(r"[^0-9A-Za-z_\-. /]", "_", row)
            run.set_tags({f"finding.{key}": f"{finding['chance']}; {finding['group_gap_verdict']}"[:5000]})
        for i, verdict in enumerate(summary["pretraining_verdicts"]):
            run.set_tags({f"verdict.{i:02d}": verdict["text"][:5000]})
    typer.echo(f"recognition-report: {REPORT_DIR / 'report.md'}")
    return REPORT_DIR / "report.md"
