"""Face-parsing stages (arXiv 2502.04391) after training: evaluate and export one (variant, seed) run; report
all of them. Where each run's files live: :mod:`fp_pipeline.stages.parsing_common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.parsing_common import (
    REPORT_DIR,
    dataset,
    run_dir,
    seeds,
    torch_threads,
    variant_names,
)
from fp_pipeline.tracking import file_digest, save_figure, stage_run

__all__ = ["eval_stage", "export_stage", "report_stage"]


def eval_stage(*, params_path: Path, variant: str, seed: int, progress: bool = True) -> dict[str, float]:
    """Evaluate one trained variant on the test split; writes ``eval/`` (metrics, curves, figures)."""
    from fp_core.atomic import write_json, write_text
    from fp_parsing.evaluate import evaluate_parser, per_group_miou
    from fp_parsing.plots import plot_group_bars, plot_robustness_curves
    from fp_parsing.train import load_parser

    params = load_params(params_path)
    torch_threads(params)
    settings = section(params, "parsing.eval")
    out = run_dir(variant, seed) / "eval"
    model = load_parser(run_dir(variant, seed) / "model")
    test_set = dataset(params, "test")
    with stage_run(
        f"parsing-eval@{variant}-{seed}",
        params={"eval": settings},
        tags={"fp.variant": variant, "fp.seed": seed},
    ) as run:
        evaluation = evaluate_parser(model, test_set, progress=progress, **settings)
        metrics = evaluation.to_metrics()
        run(metrics, step=0)
        evaluation.to_json(out / "evaluation.json")
        write_json(out / "metrics.json", metrics)
        rows = ["perturbation,severity,miou"] + [
            f"{kind},{s:.4f},{m:.6f}"
            for kind, curve in evaluation.robustness_curves.items()
            for s, m in zip(curve["severity"], curve["miou"], strict=True)
        ]
        write_text(out / "robustness.csv", "\n".join(rows) + "\n")
        save_figure(
            plot_robustness_curves({variant: evaluation.robustness_curves}), out / "robustness.png", run
        )
        per_group = per_group_miou(evaluation.as_dict())
        save_figure(
            plot_group_bars({variant: per_group}, title=f"group mIoU: {variant}"), out / "groups.png", run
        )
        run.log_artifact(out / "metrics.json")
        run.log_artifact(out / "evaluation.json")
    typer.echo(
        f"parsing-eval@{variant}: mIoU {metrics['miou']:.4f}, "
        f"Var(mIoU_g) {metrics.get('fairness/variance_mean', float('nan')):.6f}, "
        f"robustness drop {metrics.get('robustness/drop', float('nan')):.4f}"
    )
    return metrics


def export_stage(*, params_path: Path, variant: str, seed: int, progress: bool = True) -> dict[str, Any]:
    """Write the predicted label maps of every split for one variant into ``export/``."""
    from fp_parsing.export import export_predictions
    from fp_parsing.train import load_parser

    params = load_params(params_path)
    torch_threads(params)
    settings = section(params, "parsing.export")
    model_dir = run_dir(variant, seed) / "model"
    model = load_parser(model_dir)
    splits = {split: dataset(params, split) for split in settings.get("splits", ["train", "val", "test"])}
    provenance = {
        "variant": variant,
        "model": str(model_dir / "model.safetensors"),
        "model_sha256": file_digest(model_dir / "model.safetensors"),
        "image_size": section(params, "data.image_size"),
    }
    with stage_run(
        f"parsing-export@{variant}-{seed}", params={"export": settings}, tags={"fp.variant": variant}
    ) as run:
        manifest = export_predictions(
            model,
            splits,
            run_dir(variant, seed) / "export",
            source_root=Path(section(params, "data.root")),
            label_order=section(params, "data.label_order"),
            batch_size=int(settings.get("batch_size", 16)),
            with_dataset=bool(settings.get("with_dataset", True)),
            provenance=provenance,
            progress=progress,
        )
        run({f"count/{split}": n for split, n in manifest["counts"].items()}, step=0)
        run.log_artifact(run_dir(variant, seed) / "export" / "manifest.json")
    typer.echo(f"parsing-export@{variant}: {sum(manifest['counts'].values())} label maps")
    return manifest


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Put every evaluated variant side by side: ``report/report.md`` plus comparison figures."""
    import json

    from fp_core.atomic import write_json, write_text
    from fp_parsing.evaluate import per_group_miou
    from fp_parsing.plots import plot_group_bars, plot_robustness_curves, plot_schedules
    from fp_parsing.report import render_report

    params = load_params(params_path)
    torch_threads(params)
    variants = variant_names(params)
    seed = seeds(params)[0]  # interim: the first seed only, until the report aggregates over seeds
    baseline = section(params, "parsing.report.baseline")
    metrics: dict[str, dict[str, float]] = {}
    evaluations: dict[str, dict[str, Any]] = {}
    for variant in variants:
        eval_dir = run_dir(variant, seed) / "eval"
        if not (eval_dir / "metrics.json").is_file():
            raise FileNotFoundError(
                f"{eval_dir / 'metrics.json'} is missing: run `fp parsing eval --variant {variant}`"
            )
        metrics[variant] = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
        evaluations[variant] = json.loads((eval_dir / "evaluation.json").read_text(encoding="utf-8"))
    figures_dir = REPORT_DIR / "figures"
    with stage_run("parsing-report", params={"report": section(params, "parsing.report")}) as run:
        tables = {}
        for variant in variants:
            csv = (run_dir(variant, seed) / "train" / "schedule.csv").read_text(encoding="utf-8").split()
            cols = list(zip(*(line.split(",") for line in csv[1:]), strict=True))
            tables[variant] = {
                "epoch": [int(x) for x in cols[0]],
                **{
                    name: [float(x) for x in col]
                    for name, col in zip(("alpha", "beta", "gamma"), cols[1:], strict=True)
                },
            }
        figures = [
            ("Fig. 2: weights of Dice, robustness and fairness over epochs", "schedules.png"),
            ("Fig. 4: group mIoU, single vs multi-objective", "groups.png"),
            ("Fig. 5: mIoU against severity for each perturbation", "robustness.png"),
        ]
        save_figure(plot_schedules(tables), figures_dir / "schedules.png", run)
        per_group = {variant: per_group_miou(evaluation) for variant, evaluation in evaluations.items()}
        save_figure(
            plot_group_bars(per_group, title="group mIoU per variant"), figures_dir / "groups.png", run
        )
        save_figure(
            plot_robustness_curves({v: e["robustness_curves"] for v, e in evaluations.items()}),
            figures_dir / "robustness.png",
            run,
        )
        if section(params, "parsing.report.qualitative"):
            from fp_pipeline.stages.qualitative import qualitative_figure

            figure = qualitative_figure(params, variants, baseline=baseline)
            save_figure(figure, figures_dir / "qualitative.png", run)
            figures.append(
                ("Fig. 3: perturbed inputs with single and multi-objective predictions", "qualitative.png")
            )
        context = (
            f"Dataset: `{section(params, 'data.root')}` at {section(params, 'data.image_size')}² "
            f"({section(params, 'data.label_order')} labels); test split. Regenerated by `dvc repro`."
        )
        text = render_report(
            metrics,
            baseline=baseline,
            context=context,
            figures=[(caption, f"figures/{name}") for caption, name in figures],
        )
        write_text(REPORT_DIR / "report.md", text)
        write_json(REPORT_DIR / "summary.json", metrics)
        run.log_artifact(REPORT_DIR / "report.md")
        headline = ("miou", "dice", "fairness/variance_mean", "robustness/drop", "robustness/kept")
        for variant, values in metrics.items():
            run({f"{variant}/{key}": values[key] for key in headline if key in values}, step=0)
    typer.echo(f"parsing-report: {REPORT_DIR / 'report.md'}")
    return REPORT_DIR / "report.md"
