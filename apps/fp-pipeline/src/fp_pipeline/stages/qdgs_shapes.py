"""QDGS's colour-biased shapes proof of concept (Figs. 1 and 3) as stages, and their ``fp qdgs`` commands.

* ``qdgs-shapes-data``: the biased training sets (one per ``qdgs.shapes.data.biases``) and the balanced
  evaluation set, rendered (``fp_qdgs.shapes``) and written as shapes sets;
* ``qdgs-shapes-vae``: the public code's VAE trained on the ``vae.train_bias`` set (the generator);
* ``clip-shapes``: the embedded CLIP trained on shapes + splatters with captions; its zero-shot accuracy for
  every prompt pair on held-out images (or, with ``clip.real``, the real open_clip model from the local cache);
* ``qdgs-shapes@<method>``: ``qd`` runs CMA-MAEGA on the VAE's latents with the CLIP scorer; ``random`` scores
  the same number of prior draws into the same kind of archive; both export their elites, labelled by the shape
  measure, as an image-folder dataset;
* ``shapes-classifier@<bias>``: the repair trials (train on the biased set; fine-tune on each sample set);
* ``qdgs-shapes-report``: see :mod:`fp_pipeline.stages.qdgs_shapes_report`.

Every stage is one MLflow run (``stage_run``). Paths: :mod:`fp_pipeline.stages.qdgs_common`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH, ParamsError, load_params, section
from fp_pipeline.stages.qdgs_common import (
    ARCHIVE_DIR,
    CLIP_DIR,
    METHODS,
    PLOTS_DIR,
    RUNS_DIR,
    SAMPLES_DIR,
    VAE_DIR,
    ZERO_SHOT_FILE,
    bias_name,
    biases,
    checkpoint_dir,
    classifier_file,
    eval_dir,
    torch_threads,
    train_dir,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = [
    "classifier_stage",
    "clip_stage",
    "data_stage",
    "qdgs_app",
    "sample_stage",
    "vae_stage",
]

MEASURE_NAMES = ("colour (red - blue)", "shape (triangle - square)")


def _jsonable(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``summarise_trials``'s dataclasses as plain dicts."""
    from dataclasses import asdict

    return {part: {name: asdict(value) for name, value in values.items()} for part, values in summary.items()}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from fp_core.atomic import write_json

    write_json(path, data)


def _shapes_params(params_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    params = load_params(params_path)
    torch_threads(params)
    return params, section(params, "qdgs.shapes")


# -- data -------------------------------------------------------------------------------------------------


def data_stage(*, params_path: Path, progress: bool = True) -> list[Path]:
    """Render the biased training sets and the balanced evaluation set."""
    from fp_qdgs.shapes import make_shapes
    from fp_qdgs.shapes.folder import write_shapes_set

    params, shapes = _shapes_params(params_path)
    data = section(params, "qdgs.shapes.data")
    seed = int(shapes["seed"])
    written = []
    with stage_run("qdgs-shapes-data", params={"qdgs.shapes.data": data, "qdgs.shapes.seed": seed}) as run:
        for i, bias in enumerate(biases(params)):
            out = train_dir(bias)
            write_shapes_set(out, make_shapes(int(data["train_size"]), bias, seed + i), extra={"bias": bias})
            written.append(out)
        balanced = make_shapes(int(data["eval_size"]), 0.5, seed + 1000)
        written.append(write_shapes_set(eval_dir(), balanced, extra={"bias": 0.5}))
        run({"sets": float(len(written)), "train_size": float(data["train_size"])}, 0)
    typer.echo(f"qdgs-shapes-data: {len(written)} sets under {written[0].parent}")
    return written


# -- the VAE generator -------------------------------------------------------------------------------------


def _sample_grid(images: Any, title: str) -> Any:
    from matplotlib.figure import Figure

    from fp_qdgs.export import to_uint8

    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()
    n = len(pixels)
    cols = min(8, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(1.3 * cols, 1.3 * rows + 0.4), constrained_layout=True)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, image in zip(axes, pixels):
        ax.imshow(image)
    fig.suptitle(title)
    return fig


def vae_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the VAE on the ``vae.train_bias`` set; write it and a grid of prior samples."""
    from types import SimpleNamespace

    import torch

    from fp_core.training import HarnessConfig, stored_tracking_id
    from fp_qdgs.shapes import DecoderGenerator, ShapesVAE, train_vae
    from fp_qdgs.shapes.folder import read_shapes_set
    from fp_qdgs.shapes.vae import save_vae

    params, shapes = _shapes_params(params_path)
    cfg = section(params, "qdgs.shapes.vae")
    seed = int(shapes["seed"])
    source = train_dir(float(cfg["train_bias"]))
    data = read_shapes_set(source)
    resumed = stored_tracking_id(checkpoint_dir("vae"))  # continue the MLflow run of a killed process
    with stage_run(
        "qdgs-shapes-vae", params={"qdgs.shapes.vae": cfg}, seed=seed, dataset=source, run_id=resumed
    ) as run:
        torch.manual_seed(seed)
        vae = ShapesVAE()
        losses = train_vae(
            vae,
            data.images,
            epochs=int(cfg["epochs"]),
            seed=seed,
            batch_size=int(cfg["batch_size"]),
            lr=float(cfg["lr"]),
            log=run,
            checkpoint_dir=checkpoint_dir("vae"),
            harness=HarnessConfig.from_settings(
                SimpleNamespace(**cfg), checkpoint_dir("vae"), progress=progress
            ),
            tracking_id=run.run_id,
        )
        save_vae(vae, VAE_DIR, extra={"train_set": str(source), "final_loss": losses[-1] if losses else None})
        generator = DecoderGenerator(vae)
        with torch.no_grad():
            samples = generator(generator.sample_prior(32, torch.Generator().manual_seed(seed)))
        save_figure(_sample_grid(samples, "VAE prior samples"), PLOTS_DIR / "vae-samples.png", run)
    shutil.rmtree(checkpoint_dir("vae"), ignore_errors=True)  # the model is written; a rerun starts afresh
    typer.echo(f"qdgs-shapes-vae: final ELBO loss {losses[-1]:.1f} -> {VAE_DIR}")
    return VAE_DIR


# -- the embedded CLIP -------------------------------------------------------------------------------------


def _zero_shot(clip: Any, shapes: dict[str, Any]) -> dict[str, float]:
    """Accuracy of each prompt pair on held-out renders: colour, shape, and objective (shape vs splatter)."""
    import torch

    from fp_qdgs.embedded_clip import zero_shot_accuracy
    from fp_qdgs.shapes import make_shapes
    from fp_qdgs.shapes.render import make_splatters
    from fp_qdgs.shapes.scorer import SHAPES_PROMPTS

    cfg = shapes["clip"]
    n, seed = int(cfg["heldout_size"]), int(shapes["seed"]) + 2000
    held = make_shapes(n, 0.5, seed)
    (colour_pair, shape_pair) = ((a[0], b[0]) for a, b in SHAPES_PROMPTS.measures)
    objective_pair = (SHAPES_PROMPTS.objective[0][0], SHAPES_PROMPTS.objective[1][0])
    splatters = make_splatters(n // 2, seed + 1)
    mixed = torch.cat([held.images[: n - n // 2], splatters])
    is_splatter = torch.cat(
        [torch.zeros(n - n // 2, dtype=torch.long), torch.ones(len(splatters), dtype=torch.long)]
    )
    return {
        "colour": zero_shot_accuracy(clip, held.images, held.colour, colour_pair),
        "shape": zero_shot_accuracy(clip, held.images, held.shape, shape_pair),
        "objective": zero_shot_accuracy(clip, mixed, is_splatter, objective_pair),
        "heldout_images": float(n),
    }


def clip_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the embedded CLIP (or check the real one loads) and write its zero-shot accuracies."""
    from fp_metrics.clip_models import load_clip, save_clip
    from fp_qdgs.embedded_clip import CLIPTrainConfig, EmbeddedCLIPConfig, build_embedded_clip, train_clip
    from fp_qdgs.shapes.render import make_clip_training_set

    params, shapes = _shapes_params(params_path)
    cfg = section(params, "qdgs.shapes.clip")
    seed = int(shapes["seed"])
    from fp_core.training import stored_tracking_id

    resumed = stored_tracking_id(checkpoint_dir("clip"))
    with stage_run("clip-shapes", params={"qdgs.shapes.clip": cfg}, seed=seed, run_id=resumed) as run:
        if cfg.get("real"):
            clip = load_clip(str(cfg["real"]))
            source = clip.name
        else:
            model_cfg = EmbeddedCLIPConfig(**(cfg.get("model") or {}))
            train_cfg = CLIPTrainConfig(seed=seed, **(cfg.get("train") or {}))
            images, captions = make_clip_training_set(
                int(cfg["train_size"]), seed + 3000, splatter_share=float(cfg["splatter_share"])
            )
            model = train_clip(
                build_embedded_clip(model_cfg, seed=seed),
                images,
                captions,
                train_cfg,
                checkpoint_dir=checkpoint_dir("clip"),
                log=run,
                tracking_id=run.run_id,
                progress=progress,
            )
            save_clip(
                model,
                CLIP_DIR,
                context_length=model_cfg.context_length,
                extra={"trained_on": "shapes + splatters", "images": len(images), "seed": seed},
            )
            clip = load_clip(CLIP_DIR)
            source = f"embedded ({CLIP_DIR})"
        accuracy = _zero_shot(clip, shapes)
        run({f"zero_shot/{k}": v for k, v in accuracy.items()}, 0)
        _write_json(ZERO_SHOT_FILE, {"clip": source, "chance": 0.5, **accuracy})
    shutil.rmtree(checkpoint_dir("clip"), ignore_errors=True)
    typer.echo(f"clip-shapes: zero-shot accuracy {accuracy} ({source})")
    return CLIP_DIR


# -- sampling ----------------------------------------------------------------------------------------------


def _clip_source(shapes: dict[str, Any]) -> str | Path:
    return str(shapes["clip"]["real"]) if shapes["clip"].get("real") else CLIP_DIR


def _sampler_setup(shapes: dict[str, Any]) -> tuple[Any, Any, Any]:
    from fp_metrics.clip_models import load_clip
    from fp_qdgs import CLIPScorerConfig, SamplerConfig
    from fp_qdgs.shapes import DecoderGenerator
    from fp_qdgs.shapes.scorer import shapes_scorer
    from fp_qdgs.shapes.vae import load_vae

    sampler_cfg = dict(section(shapes, "sampler", source="qdgs.shapes"))
    sampler_cfg.setdefault("seed", int(shapes["seed"]))
    try:
        config = SamplerConfig.from_dict(sampler_cfg)
        scorer_cfg = CLIPScorerConfig(**(shapes.get("scorer") or {}))
    except (TypeError, ValueError) as err:
        raise ParamsError(f"qdgs.shapes.sampler / qdgs.shapes.scorer: {err}") from err
    generator = DecoderGenerator(load_vae(VAE_DIR))
    scorer = shapes_scorer(
        load_clip(_clip_source(shapes)), scorer_cfg, mean_prior_norm=generator.mean_prior_norm
    )
    return generator, scorer, config


def total_evaluations(config: Any) -> int:
    """Generator evaluations of a full QDGS run: the start draws plus every iteration's batches."""
    return int(config.x0_samples) + int(config.iterations) * int(config.evaluations_per_iteration)


def _run_qd(generator: Any, scorer: Any, config: Any, run: Any, progress: bool) -> Any:
    from tqdm.auto import tqdm

    from fp_qdgs import QDGSSampler

    sampler = QDGSSampler(generator, scorer, config, log=run, checkpoint_dir=checkpoint_dir("qd"))
    with tqdm(total=config.iterations, initial=sampler.iteration, disable=not progress, desc="qdgs") as bar:
        while sampler.iteration < config.iterations:
            metrics = sampler.step()
            bar.update(1)
            bar.set_postfix(coverage=f"{metrics['coverage']:.3f}")
    sampler.save()
    return sampler.result_archive, sampler.evaluations


def _export_grid(directory: Path, method: str, count: int = 32) -> Any:
    """A grid of ``count`` exported samples spread evenly over the archive's cells (in cell order)."""
    import torch

    from fp_qdgs.export import read_export

    export = read_export(directory)
    pick = torch.linspace(0, max(len(export.labels) - 1, 0), min(count, len(export.labels))).long()
    names = export.label_names
    title = f"{method}: {len(export.labels)} samples, " + ", ".join(
        f"{int((export.labels == i).sum())} {name}" for i, name in enumerate(names)
    )
    return _sample_grid(export.float_images()[pick], title)


def sample_stage(*, params_path: Path, method: str, progress: bool = True) -> Path:
    """Run QDGS (``qd``) or random sampling (``random``) at equal evaluations; export the labelled samples."""
    from fp_qdgs import archive_metrics
    from fp_qdgs.baseline import random_sampling
    from fp_qdgs.checkpoint import archive_settings, save_archive
    from fp_qdgs.export import archive_export
    from fp_qdgs.plotting import plot_archive_heatmap

    if method not in METHODS:
        raise ParamsError(f"--method must be one of {list(METHODS)}, got {method!r}")
    params, shapes = _shapes_params(params_path)
    generator, scorer, config = _sampler_setup(shapes)
    export_cfg = section(shapes, "export", source="qdgs.shapes")
    logged = {"qdgs.shapes.sampler": config.to_dict(), "qdgs.shapes.scorer": shapes.get("scorer") or {}}
    with stage_run(f"qdgs-shapes@{method}", params=logged, variant=method, seed=config.seed) as run:
        if method == "qd":
            archive, evaluations = _run_qd(generator, scorer, config, run, progress)
        else:
            evaluations = total_evaluations(config)
            archive = random_sampling(generator, scorer, config, evaluations, log=run)
        out = SAMPLES_DIR / method
        archive_export(
            out,
            archive,
            generator,
            label_index=int(export_cfg["label_measure"]),
            threshold=float(export_cfg["threshold"]),
            label_names=("triangle", "square"),
            measure_names=MEASURE_NAMES,
            provenance={"method": method, "evaluations": evaluations, "sampler": config.to_dict()},
        )
        ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
        save_archive(archive, ARCHIVE_DIR / f"{method}.npz")
        _write_json(ARCHIVE_DIR / f"{method}.json", archive_settings(archive))
        metrics = {**archive_metrics(archive), "evaluations": float(evaluations)}
        _write_json(RUNS_DIR / f"{method}.json", metrics)
        figure = plot_archive_heatmap(
            archive, measure_names=MEASURE_NAMES, title=f"{method}: objective per cell"
        )
        save_figure(figure, PLOTS_DIR / f"archive-{method}.png", run)
        save_figure(_export_grid(out, method), PLOTS_DIR / f"samples-{method}.png", run)
        run.log_artifact(RUNS_DIR / f"{method}.json")
    shutil.rmtree(checkpoint_dir(method), ignore_errors=True)
    typer.echo(
        f"qdgs-shapes@{method}: coverage {metrics['coverage']:.3f} at {evaluations} evaluations -> {out}"
    )
    return out


# -- the classifier repair ---------------------------------------------------------------------------------


def classifier_stage(*, params_path: Path, bias: float, progress: bool = True) -> Path:
    """Repair trials at one bias: real only, real then QDGS samples, real then random samples."""
    from fp_qdgs.export import read_export
    from fp_qdgs.shapes.folder import read_shapes_set
    from fp_qdgs.shapes.repair import RepairConfig, run_repair_trial, summarise_trials

    params, shapes = _shapes_params(params_path)
    cfg = dict(section(shapes, "classifier", source="qdgs.shapes"))
    seeds = [int(s) for s in cfg.pop("seeds")]
    if float(bias) not in biases(params):
        raise ParamsError(f"--bias {bias} is not in qdgs.shapes.data.biases {biases(params)}")
    real, balanced = read_shapes_set(train_dir(bias)), read_shapes_set(eval_dir())
    synthetic = {}
    for method in METHODS:
        export = read_export(SAMPLES_DIR / method)
        synthetic[method] = (export.float_images(), export.labels)
    config = RepairConfig(progress=progress, **cfg)
    name = bias_name(bias)
    stage = f"shapes-classifier@{float(bias)!r}"  # the dvc.yaml matrix stage's name
    with stage_run(
        stage, params={"qdgs.shapes.classifier": cfg, "bias": bias}, variant=name, dataset=train_dir(bias)
    ) as run:
        trials = []
        for seed in seeds:

            def log(metrics: Any, step: int, seed: int = seed) -> None:
                run({f"seed{seed}/{k}": v for k, v in metrics.items()}, step)

            trials.append(
                run_repair_trial(real, balanced, synthetic, seed=seed, config=config, bias=bias, log=log)
            )
        summary = _jsonable(summarise_trials(trials))
        out = classifier_file(bias)
        _write_json(
            out,
            {
                "bias": bias,
                "seeds": seeds,
                "trials": [t.to_dict() for t in trials],
                "summary": summary,
                "sizes": {m: len(v[1]) for m, v in synthetic.items()},
            },
        )
        run.log_artifact(out)
    typer.echo(f"{stage}: {json.dumps(summary['arms'])}")
    return out


# -- the `fp qdgs` commands (registered in cli.py as `app.add_typer(qdgs_app, name="qdgs")`) ------------------

qdgs_app = typer.Typer(
    help="QDGS: the colour-biased shapes proof of concept (data, VAE, embedded CLIP, sampling, repair, report).",
    no_args_is_help=True,
)
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]


@qdgs_app.command("shapes-data")
def qdgs_shapes_data(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Render the biased training sets and the balanced evaluation set (qdgs.shapes.data)."""
    from fp_pipeline.stages.qdgs_shapes import data_stage

    data_stage(params_path=params, progress=progress)


@qdgs_app.command("shapes-vae")
def qdgs_shapes_vae(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Train the VAE generator (qdgs.shapes.vae); resumes from its last checkpoint."""
    from fp_pipeline.stages.qdgs_shapes import vae_stage

    vae_stage(params_path=params, progress=progress)


@qdgs_app.command("clip-shapes")
def qdgs_clip_shapes(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Train the embedded CLIP on shapes and captions (qdgs.shapes.clip); report its zero-shot accuracy."""
    from fp_pipeline.stages.qdgs_shapes import clip_stage

    clip_stage(params_path=params, progress=progress)


@qdgs_app.command("shapes-sample")
def qdgs_shapes_sample(
    method: Annotated[str, typer.Option("--method", help="qd (CMA-MAEGA) or random.")] = "qd",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Sample the VAE with QDGS or at random (equal evaluations) and export the labelled samples."""
    from fp_pipeline.stages.qdgs_shapes import sample_stage

    sample_stage(params_path=params, method=method, progress=progress)


@qdgs_app.command("shapes-classifier")
def qdgs_shapes_classifier(
    bias: Annotated[float, typer.Option("--bias", help="One of qdgs.shapes.data.biases.")] = 0.98,
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Repair trials at one bias level: real only, + QDGS samples, + random samples."""
    from fp_pipeline.stages.qdgs_shapes import classifier_stage

    classifier_stage(params_path=params, bias=bias, progress=progress)


@qdgs_app.command("shapes-report")
def qdgs_shapes_report(params: ParamsOption = DEFAULT_PARAMS_PATH) -> None:
    """Figs. 1 and 3, the zero-shot table and the verdicts per bias level."""
    from fp_pipeline.stages.qdgs_shapes_report import report_stage

    report_stage(params_path=params)


# -- QDGS on faces (issue 13; stages in qdgs_faces*.py) ---------------------------------------------------

FacesMethodOption = Annotated[str, typer.Option("--method", help="qd (CMA-MAEGA) or rand (prior draws).")]


@qdgs_app.command("faces-generator")
def qdgs_faces_generator(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Train the face VAE generator on the synthetic faces (qdgs.faces.generator); resumes from a checkpoint."""
    from fp_pipeline.stages.qdgs_faces import generator_stage

    generator_stage(params_path=params, progress=progress)


@qdgs_app.command("faces-attributes")
def qdgs_faces_attributes(
    params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True
) -> None:
    """Train the attribute classifiers for Table 1 (qdgs.faces.attributes); report their held-out accuracy."""
    from fp_pipeline.stages.qdgs_faces_attributes import attributes_stage

    attributes_stage(params_path=params, progress=progress)


@qdgs_app.command("faces-sample")
def qdgs_faces_sample(
    method: FacesMethodOption = "qd",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Sample the face VAE with QDGS (resumable) or from its prior; write the Rand / QD sets."""
    from fp_pipeline.stages.qdgs_faces import sample_stage

    sample_stage(params_path=params, method=method, progress=progress)


@qdgs_app.command("faces-export")
def qdgs_faces_export(
    method: FacesMethodOption = "qd",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Identities (chunks + K-means) with 9 latent-walk variants each, as an identity folder for recognition."""
    from fp_pipeline.stages.qdgs_faces_export import export_stage

    export_stage(params_path=params, method=method, progress=progress)


@qdgs_app.command("faces-report")
def qdgs_faces_report(params: ParamsOption = DEFAULT_PARAMS_PATH) -> None:
    """Table 1 (attribute proportions), Fig. 4 and the recognition pretraining verdicts."""
    from fp_pipeline.stages.qdgs_faces_report import report_stage

    report_stage(params_path=params)
