"""Face-parsing stages (arXiv 2502.04391) after training: evaluate and export one (variant, seed) run; report
all of them over seeds. Where each run's files live: :mod:`fp_pipeline.stages.parsing_common`.

- ``fp parsing eval --variant V --seed S``: MLflow run ``parsing-eval@V-S`` (tags ``fp.variant``, ``fp.seed``),
  writes ``outputs/parsing/V/seed-S/eval/``; settings ``parsing.eval`` (``batch_size``, ``perturbations``,
  ``severities``, ``fairness_attributes``, ``seed``, optional ``device``: default CUDA when available).
- ``fp parsing export --variant V --seed S``: MLflow run ``parsing-export@V-S``, writes
  ``outputs/parsing-export/V/seed-S/`` (:mod:`fp_parsing.export`); settings ``parsing.export`` (``splits``,
  ``batch_size``, ``with_dataset``, and with defaults ``perturbations`` [gaussian_noise, blur, brightness,
  darkness], ``severities`` [0.5], ``resolution`` (the model's input size), ``seed`` 0, ``device``,
  ``num_workers`` 0).
- ``fp parsing report``: reads every (variant, seed) ``eval/metrics.json`` and ``eval/evaluation.json``;
  writes ``outputs/parsing-report/{report.md, summary.json, figures/}`` (:mod:`fp_parsing.report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.parsing_common import (
    REPORT_DIR,
    dataset,
    export_dir,
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
    from fp_parsing.model import load_parser
    from fp_parsing.plots import plot_group_bars, plot_robustness_curves

    params = load_params(params_path)
    torch_threads(params)
    settings = section(params, "parsing.eval")
    out = run_dir(variant, seed) / "eval"
    model = load_parser(run_dir(variant, seed) / "model")
    test_set = dataset(params, "test")
    with stage_run(
        f"parsing-eval@{variant}-{seed}",
        params={"eval": settings},
        variant=variant,
        seed=seed,
        dataset=Path(section(params, "data.root")),
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
        f"parsing-eval@{variant}-{seed}: mIoU {metrics['miou']:.4f}, "
        f"Var(mIoU_g) {metrics.get('fairness/variance_mean', float('nan')):.6f}, "
        f"robustness drop {metrics.get('robustness/drop', float('nan')):.4f}"
    )
    return metrics


def export_stage(*, params_path: Path, variant: str, seed: int, progress: bool = True) -> dict[str, Any]:
    """Write one (variant, seed) run's export: every split's (label map, image) pairs at one resolution, the
    perturbed test sets and the manifest, into ``outputs/parsing-export/<variant>/seed-<seed>/``."""
    from fp_parsing.export import (
        DEFAULT_EXPORT_PERTURBATIONS,
        DEFAULT_EXPORT_SEVERITIES,
        export_predictions,
    )
    from fp_parsing.model import load_parser

    params = load_params(params_path)
    torch_threads(params)
    settings = dict(section(params, "parsing.export"))
    model_dir = run_dir(variant, seed) / "model"
    model = load_parser(model_dir)
    splits = {split: dataset(params, split) for split in settings.get("splits", ["train", "val", "test"])}
    provenance = {
        "variant": variant,
        "seed": int(seed),
        "model": str(model_dir / "model.safetensors"),
        "model_sha256": file_digest(model_dir / "model.safetensors"),
        "image_size": section(params, "data.image_size"),
        "stage": f"parsing-export@{variant}-{seed}",
    }
    out = export_dir(variant, seed)
    with stage_run(
        f"parsing-export@{variant}-{seed}",
        params={"export": settings},
        variant=variant,
        seed=seed,
        dataset=Path(section(params, "data.root")),
    ) as run:
        manifest = export_predictions(
            model,
            splits,
            out,
            source_root=Path(section(params, "data.root")),
            label_order=section(params, "data.label_order"),
            resolution=settings.get("resolution"),
            batch_size=int(settings.get("batch_size", 16)),
            device=settings.get("device"),
            perturbations=list(settings.get("perturbations", DEFAULT_EXPORT_PERTURBATIONS)),
            severities=[float(s) for s in settings.get("severities", DEFAULT_EXPORT_SEVERITIES)],
            seed=int(settings.get("seed", 0)),
            with_dataset=bool(settings.get("with_dataset", True)),
            provenance=provenance,
            params=settings,
            num_workers=int(settings.get("num_workers", 0)),
            progress=progress,
        )
        counts = {f"count/{split}": n for split, n in manifest["counts"].items()}
        counts["count/perturbed_sets"] = len(manifest["perturbed"]["sets"])
        run(counts, step=0)
        run.log_artifact(out / "manifest.json")
    typer.echo(
        f"parsing-export@{variant}-{seed}: {sum(manifest['counts'].values())} label maps at "
        f"{manifest['resolution']}², {len(manifest['perturbed']['sets'])} perturbed test sets"
    )
    return manifest


def _read_json(path: Path, variant: str, seed: int) -> Any:
    import json

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `fp parsing eval --variant {variant} --seed {seed}`")
    return json.loads(path.read_text(encoding="utf-8"))


def _schedule_table(path: Path) -> dict[str, list[float]]:
    lines = path.read_text(encoding="utf-8").split()
    cols = list(zip(*(line.split(",") for line in lines[1:]), strict=True))
    return {
        "epoch": [int(x) for x in cols[0]],
        **{
            name: [float(x) for x in col]
            for name, col in zip(("alpha", "beta", "gamma"), cols[1:], strict=True)
        },
    }


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Put every variant side by side over all seeds: ``report.md`` (mean ± s.e., paired verdicts),
    ``summary.json`` and the comparison figures with error bars / bands over seeds."""
    from fp_core.atomic import write_json, write_text
    from fp_parsing.evaluate import per_group_miou
    from fp_parsing.plots import plot_group_bars, plot_robustness_curves, plot_schedules
    from fp_parsing.report import (
        HEADLINE,
        aggregate,
        aggregate_curves,
        aggregate_groups,
        render_report,
        summary,
    )

    params = load_params(params_path)
    torch_threads(params)
    variants = variant_names(params)
    run_seeds = seeds(params)
    baseline = section(params, "parsing.report.baseline")
    runs: dict[str, dict[int, dict[str, float]]] = {}
    evaluations: dict[str, dict[int, dict[str, Any]]] = {}
    for variant in variants:
        runs[variant], evaluations[variant] = {}, {}
        for seed in run_seeds:
            eval_dir = run_dir(variant, seed) / "eval"
            runs[variant][seed] = _read_json(eval_dir / "metrics.json", variant, seed)
            evaluations[variant][seed] = _read_json(eval_dir / "evaluation.json", variant, seed)
    figures_dir = REPORT_DIR / "figures"
    first = run_seeds[0]
    with stage_run("parsing-report", params={"report": section(params, "parsing.report")}) as run:
        # the schedules of the first seed: a fixed schedule is the same for every seed
        tables = {v: _schedule_table(run_dir(v, first) / "train" / "schedule.csv") for v in variants}
        figures = [
            (f"Fig. 2: weights of Dice, robustness and fairness over epochs (seed {first})", "schedules.png"),
            ("Fig. 4: group mIoU per variant, mean ± s.e. over seeds", "groups.png"),
            ("Fig. 5: mIoU against severity, mean ± s.e. band over seeds", "robustness.png"),
        ]
        save_figure(plot_schedules(tables), figures_dir / "schedules.png", run)
        bars = {
            v: aggregate_groups({s: per_group_miou(e) for s, e in by_seed.items()})
            for v, by_seed in evaluations.items()
        }
        save_figure(
            plot_group_bars(
                {v: means for v, (means, _) in bars.items()},
                title="group mIoU per variant (mean ± s.e. over seeds)",
                errors={v: ses for v, (_, ses) in bars.items()},
            ),
            figures_dir / "groups.png",
            run,
        )
        curves = {
            v: aggregate_curves({s: e["robustness_curves"] for s, e in by_seed.items()})
            for v, by_seed in evaluations.items()
        }
        save_figure(plot_robustness_curves(curves), figures_dir / "robustness.png", run)
        if section(params, "parsing.report.qualitative"):
            from fp_pipeline.stages.qualitative import qualitative_figure, qualitative_seed

            figure = qualitative_figure(params, variants, baseline=baseline)
            save_figure(figure, figures_dir / "qualitative.png", run)
            figures.append(
                (
                    "Fig. 3: perturbed inputs with single and multi-objective predictions "
                    f"(seed {qualitative_seed(params)}'s models)",
                    "qualitative.png",
                )
            )
        context = (
            f"Dataset: `{section(params, 'data.root')}` at {section(params, 'data.image_size')}² "
            f"({section(params, 'data.label_order')} labels); test split; seeds {run_seeds}. "
            "Regenerated by `dvc repro`."
        )
        text = render_report(
            runs,
            baseline=baseline,
            context=context,
            figures=[(caption, f"figures/{name}") for caption, name in figures],
        )
        write_text(REPORT_DIR / "report.md", text)
        write_json(REPORT_DIR / "summary.json", summary(runs, baseline=baseline))
        run.log_artifact(REPORT_DIR / "report.md")
        run.log_artifact(REPORT_DIR / "summary.json")
        stats = aggregate(runs)
        headline: dict[str, dict[str, float]] = {}  # DVC metrics: one row per variant, mean and s.e.
        for variant, per_metric in stats.items():
            logged: dict[str, float] = {}
            for key, _ in HEADLINE:
                stat = per_metric.get(key)
                if stat is None or stat.n == 0:
                    continue
                logged[f"{variant}/{key}"] = stat.mean
                if stat.n > 1:
                    logged[f"{variant}/{key}_se"] = stat.se
            headline[variant] = {key.removeprefix(f"{variant}/"): value for key, value in logged.items()}
            run(logged, step=0)
        write_json(REPORT_DIR / "metrics.json", headline)
    typer.echo(
        f"parsing-report: {REPORT_DIR / 'report.md'} ({len(variants)} variants x {len(run_seeds)} seeds)"
    )
    return REPORT_DIR / "report.md"
