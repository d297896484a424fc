"""Face-parsing stages (arXiv 2502.04391): train, evaluate, export one variant at a time; report all.

Each variant is a key of ``parsing.variants`` in params.yaml, merged over ``parsing.model`` and
``parsing.train``. Outputs live under ``outputs/parsing/<variant>/``:

- ``model/``: weights, config, per-epoch history (DVC output of ``parsing-train@<variant>``);
- ``train/schedule.csv``, ``train/schedule.png``: the α, β, γ the run used (DVC plots);
- ``eval/metrics.json`` (DVC metrics), ``eval/evaluation.json``, ``eval/robustness.csv`` and figures;
- ``export/``: predicted label maps for every split (``parsing-export@<variant>``).

Checkpoints go to ``outputs/checkpoints/parsing-<variant>/``, outside the DVC outputs, so a killed stage
resumes; they are removed once training ends. The report goes to ``outputs/parsing-report/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, deep_merge, load_params, section
from fp_pipeline.tracking import file_digest, save_figure, stage_run

__all__ = [
    "eval_stage",
    "export_stage",
    "report_stage",
    "train_config",
    "train_stage",
    "variant_dir",
]

OUTPUT_ROOT = Path("outputs/parsing")
CHECKPOINT_ROOT = Path("outputs/checkpoints")
REPORT_DIR = Path("outputs/parsing-report")


def variant_dir(variant: str) -> Path:
    """``outputs/parsing/<variant>``."""
    return OUTPUT_ROOT / variant


def variant_names(params: dict[str, Any]) -> list[str]:
    """The variants params.yaml defines, in file order."""
    return list(section(params, "parsing.variants"))


def train_config(params: dict[str, Any], variant: str) -> dict[str, Any]:
    """One variant's settings: ``parsing.variants.<v>`` merged over ``parsing.train`` and ``parsing.model``."""
    variants = section(params, "parsing.variants")
    if variant not in variants:
        raise ParamsError(f"unknown parsing variant {variant!r}; params.yaml defines: {', '.join(variants)}")
    base = deep_merge(section(params, "parsing.train"), section(params, "parsing.model"))
    return deep_merge(base, variants[variant] or {})


def _dataset(params: dict[str, Any], split: str, **kwargs: Any) -> Any:
    from fp_parsing.data import CelebAMaskHQ

    return CelebAMaskHQ(
        Path(section(params, "data.root")),
        split=split,
        image_size=section(params, "data.image_size"),
        label_order=section(params, "data.label_order"),
        **kwargs,
    )


def _torch_threads(params: dict[str, Any]) -> None:
    import torch

    threads = int(params.get("runtime", {}).get("torch_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)


def train_stage(
    *, params_path: Path, variant: str, out_dir: Path | None = None, progress: bool = True
) -> Path:
    """Train one variant (resuming from its last checkpoint); returns the model directory."""
    from fp_parsing.atomic import write_text
    from fp_parsing.plots import plot_schedules
    from fp_parsing.schedules import schedule_csv
    from fp_parsing.train import TrainConfig, train_parser

    params = load_params(params_path)
    _torch_threads(params)
    settings = train_config(params, variant)
    config = TrainConfig.from_dict(settings)
    model_dir = out_dir or variant_dir(variant) / "model"
    train_dir = model_dir.parent / "train"
    checkpoint_dir = CHECKPOINT_ROOT / f"parsing-{variant}"
    train_set = _dataset(params, "train", hflip=bool(section(params, "data.hflip")), seed=config.seed)
    run_params = {"data": section(params, "data"), "variant": variant, "train": config.to_dict()}
    with stage_run(f"parsing-train@{variant}", params=run_params, tags={"fp.variant": variant}) as run:
        result = train_parser(
            config, train_set, model_dir, checkpoint_dir=checkpoint_dir, log=run, progress=progress
        )
        table = result.weights_table
        write_text(train_dir / "schedule.csv", schedule_csv(table))
        save_figure(plot_schedules({variant: table}), train_dir / "schedule.png", run)
        run.log_reference("model", model_dir / "model.safetensors")
        if result.resumed_from_epoch is not None:
            run.set_tags({"fp.resumed_from_epoch": result.resumed_from_epoch})
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    typer.echo(f"parsing-train@{variant}: model in {model_dir}")
    return model_dir


def eval_stage(*, params_path: Path, variant: str, progress: bool = True) -> dict[str, float]:
    """Evaluate one trained variant on the test split; writes ``eval/`` (metrics, curves, figures)."""
    from fp_parsing.atomic import write_json, write_text
    from fp_parsing.evaluate import evaluate_parser, per_group_miou
    from fp_parsing.plots import plot_group_bars, plot_robustness_curves
    from fp_parsing.train import load_parser

    params = load_params(params_path)
    _torch_threads(params)
    settings = section(params, "parsing.eval")
    out = variant_dir(variant) / "eval"
    model = load_parser(variant_dir(variant) / "model")
    test_set = _dataset(params, "test")
    with stage_run(f"parsing-eval@{variant}", params={"eval": settings}, tags={"fp.variant": variant}) as run:
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


def export_stage(*, params_path: Path, variant: str, progress: bool = True) -> dict[str, Any]:
    """Write the predicted label maps of every split for one variant into ``export/``."""
    from fp_parsing.export import export_predictions
    from fp_parsing.train import load_parser

    params = load_params(params_path)
    _torch_threads(params)
    settings = section(params, "parsing.export")
    model_dir = variant_dir(variant) / "model"
    model = load_parser(model_dir)
    splits = {split: _dataset(params, split) for split in settings.get("splits", ["train", "val", "test"])}
    provenance = {
        "variant": variant,
        "model": str(model_dir / "model.safetensors"),
        "model_sha256": file_digest(model_dir / "model.safetensors"),
        "image_size": section(params, "data.image_size"),
    }
    with stage_run(
        f"parsing-export@{variant}", params={"export": settings}, tags={"fp.variant": variant}
    ) as run:
        manifest = export_predictions(
            model,
            splits,
            variant_dir(variant) / "export",
            source_root=Path(section(params, "data.root")),
            label_order=section(params, "data.label_order"),
            batch_size=int(settings.get("batch_size", 16)),
            with_dataset=bool(settings.get("with_dataset", True)),
            provenance=provenance,
            progress=progress,
        )
        run({f"count/{split}": n for split, n in manifest["counts"].items()}, step=0)
        run.log_artifact(variant_dir(variant) / "export" / "manifest.json")
    typer.echo(f"parsing-export@{variant}: {sum(manifest['counts'].values())} label maps")
    return manifest


def report_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Put every evaluated variant side by side: ``report/report.md`` plus comparison figures."""
    import json

    from fp_parsing.atomic import write_json, write_text
    from fp_parsing.evaluate import per_group_miou
    from fp_parsing.plots import plot_group_bars, plot_robustness_curves, plot_schedules
    from fp_parsing.report import render_report

    params = load_params(params_path)
    _torch_threads(params)
    variants = variant_names(params)
    baseline = section(params, "parsing.report.baseline")
    metrics: dict[str, dict[str, float]] = {}
    evaluations: dict[str, dict[str, Any]] = {}
    for variant in variants:
        eval_dir = variant_dir(variant) / "eval"
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
            csv = (variant_dir(variant) / "train" / "schedule.csv").read_text(encoding="utf-8").split()
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
