"""Pix2PixHD from each parser variant's label maps to faces (paper 1, Sec. III-F1), and the ``fp gan`` commands.

* ``gan-train@<variant>``: one Pix2PixHD per GAN seed (``gan.seeds``) on the variant's parsing export
  (``train`` + ``val`` maps, the paper's setup) at ``gan.model``; sample grids every ``gan.sample_every``
  steps go to MLflow; a killed run resumes from its checkpoints; writes ``outputs/gan/<variant>/model``.
* ``gan-eval@<variant>``: generates from the variant's test maps and from each perturbed test set's maps
  and compares the faces with the real (clean) test images: a Frechet distance in the feature space of
  ``gan.eval.features`` (``clip``: the embedded face CLIP of ``clip-faces``, labelled
  ``"CLIP-FD (embedded face CLIP)"``, the offline default; ``inception``: FID with clean-fid's Inception from
  the local cache) and LPIPS per (generated, real) pair when its trunk weights are local (else the metric
  says ``"unavailable: place <file> at <path>"``). Uncertainty: with one GAN seed, the bootstrap standard
  error over test images for FD and the standard error over images for LPIPS; with several seeds, the
  standard error over seeds. Writes ``outputs/gan/<variant>/eval/metrics.json`` and the variant's Fig. 6 grid.

Paths: :mod:`fp_pipeline.stages.gan_common`; the report: :mod:`fp_pipeline.stages.gan_report`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from fp_pipeline.config import DEFAULT_PARAMS_PATH, ParamsError, load_params, section
from fp_pipeline.stages.gan_common import (
    checkpoint_dir,
    eval_dir,
    export_seed,
    fd_label,
    format_cell,
    gan_seeds,
    model_dir,
    torch_threads,
)
from fp_pipeline.stages.generative_eval import (
    blas_threads,
    fd_with_se,
    feature_fn,
    grid_figure,
    lpips_or_reason,
    mean_se,
    write_sample_rows,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["eval_stage", "gan_app", "gan_config", "train_stage"]


def gan_config(params: dict[str, Any], seed: int) -> Any:
    """``Pix2PixHDConfig`` from ``gan.model`` with ``seed``; a bad setting is a :class:`ParamsError`."""
    from fp_diffusion.gan import ConfigError, Pix2PixHDConfig

    values = dict(section(params, "gan.model"))
    try:
        return Pix2PixHDConfig.from_dict({**values, "seed": int(seed)})
    except (ConfigError, TypeError) as err:
        raise ParamsError(f"gan.model: {err}") from err


def _export(params: dict[str, Any], variant: str) -> Path:
    from fp_pipeline.stages.parsing_common import export_dir

    variants = section(params, "parsing.variants")
    if variant not in variants:
        raise ParamsError(f"--variant {variant!r} is not a key of parsing.variants {sorted(variants)}")
    out = export_dir(variant, export_seed(params))
    if not (out / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{out}/manifest.json is missing: run `dvc repro parsing-export@{variant}-...` first"
        )
    return out


# -- training ----------------------------------------------------------------------------------------------


def _train_one(
    params: dict[str, Any], variant: str, export: Path, seed: int, run: Any, progress: bool
) -> Path:
    from fp_diffusion.data import PairedMaps
    from fp_diffusion.gan import save_generator, train_pix2pixhd

    config = gan_config(params, seed)
    data = PairedMaps(
        export,
        ["train", "val"],
        label_nc=config.label_nc,
        resolution=config.resolution,
        flip=config.flip,
        seed=config.seed,
    )
    several = len(gan_seeds(params)) > 1

    def log(metrics: Any, step: int) -> None:
        run({f"seed{seed}/{k}" if several else k: v for k, v in metrics.items()}, step)

    def on_samples(grid: np.ndarray, step: int) -> None:
        figure = grid_figure(
            grid, f"{variant}, seed {seed}, step {step}: maps | generated | real", pixels_per_inch=48
        )
        run.log_figure(figure, f"samples/seed-{seed}/step-{step:06d}.png")

    ckpt = checkpoint_dir(f"gan-{variant}-seed-{seed}")
    generator = train_pix2pixhd(
        config,
        data,
        checkpoint_dir=ckpt,
        log=log,
        on_samples=on_samples,
        sample_every=int(section(params, "gan.sample_every")),
        tracking_id=run.run_id,
        progress=progress,
    )
    notes = list(getattr(generator, "training_notes", []))
    out = save_generator(
        generator,
        config,
        model_dir(variant, seed),
        inputs={"export": str(export), "splits": ["train", "val"]},
        extra={"variant": variant, "pairs": len(data), "training_notes": notes},
    )
    if notes:
        run.set_tags({f"note.seed{seed}": " | ".join(notes)[:4000]})
    shutil.rmtree(ckpt, ignore_errors=True)  # trained and saved: the next run of this stage starts afresh
    return out


def train_stage(*, params_path: Path, variant: str, progress: bool = True) -> Path:
    """Train the variant's Pix2PixHD generators (one per ``gan.seeds``) on its export's train + val maps."""
    params = load_params(params_path)
    torch_threads(params)
    export = _export(params, variant)
    seeds = gan_seeds(params)
    logged = {"gan.model": section(params, "gan.model"), "gan.seeds": seeds, "export": str(export)}
    with stage_run(
        f"gan-train@{variant}",
        params=logged,
        variant=variant,
        seed=seeds[0] if len(seeds) == 1 else None,
        dataset=export,
    ) as run:
        for seed in seeds:
            _train_one(params, variant, export, seed, run, progress)
    typer.echo(f"gan-train@{variant}: {len(seeds)} generator(s) -> {model_dir(variant)}")
    return model_dir(variant)


# -- evaluation --------------------------------------------------------------------------------------------


def _set_names(manifest: dict[str, Any]) -> list[str]:
    return ["test", *sorted((manifest.get("perturbed") or {}).get("sets") or {})]


def _load_set(export: Path, name: str, resolution: int | None, label_nc: int) -> tuple[Any, Any]:
    """``(labels [N, H, W] int64, images [N, 3, H, W] in [0, 1])`` of a split or perturbed set."""
    import torch

    from fp_diffusion.data import PairedMaps

    data = PairedMaps(export, name, label_nc=label_nc, resolution=resolution)
    items = [data[i] for i in range(len(data))]
    return torch.stack([it[0] for it in items]), (torch.stack([it[1] for it in items]) + 1) / 2


def _score(
    generated: Any,
    real: Any,
    real_feats: np.ndarray,
    features: Callable,
    lpips: Any,
    ecfg: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """FD with its bootstrap s.e. over test images; LPIPS per pair with its s.e. over images."""
    gen_feats = features(generated)
    fd, se = fd_with_se(gen_feats, real_feats, samples=int(ecfg["bootstrap"]), seed=seed)
    out: dict[str, Any] = {"fd": fd, "fd_bootstrap_se": se, "images": len(gen_feats)}
    if lpips is not None:
        per_pair = lpips(generated * 2 - 1, real * 2 - 1).double().numpy()
        out["lpips"], out["lpips_se"] = mean_se(per_pair)
    return out


def _aggregate(per_seed: list[dict[str, Any]], lpips_reason: str | None) -> dict[str, Any]:
    """One set's mean and s.e. (bootstrap / over images with one seed, over seeds with several)."""
    if len(per_seed) == 1:
        row = per_seed[0]
        out = {"mean": row["fd"], "se": row["fd_bootstrap_se"], "se_kind": "bootstrap over test images"}
        lp = (
            {"mean": row["lpips"], "se": row["lpips_se"], "se_kind": "over test images"}
            if "lpips" in row
            else lpips_reason
        )
    else:
        fd_mean, fd_se = mean_se([r["fd"] for r in per_seed])
        out = {"mean": fd_mean, "se": fd_se, "se_kind": f"over {len(per_seed)} GAN seeds"}
        lp = lpips_reason
        if "lpips" in per_seed[0]:
            lp_mean, lp_se = mean_se([r["lpips"] for r in per_seed])
            lp = {"mean": lp_mean, "se": lp_se, "se_kind": f"over {len(per_seed)} GAN seeds"}
    return {"fd": out, "lpips": lp, "images": per_seed[0]["images"]}


def _fig6(variant: str, labels: Any, generated: Any, real: Any, palette: Any, count: int, run: Any) -> None:
    from fp_diffusion.gan import sample_grid
    from fp_diffusion.gan.sampling import colorize, to_uint8

    k = min(count, len(labels))
    grid = sample_grid(labels[:k], generated[:k], real[:k], palette)
    save_figure(
        grid_figure(grid, f"Fig. 6, {variant}: test maps | generated | real", pixels_per_inch=48),
        eval_dir(variant) / "fig6.png",
        run,
    )
    maps = colorize(labels[:k], palette) if palette is not None else labels[:k].numpy().astype(np.uint8)
    write_sample_rows(eval_dir(variant) / "samples.npz", maps, to_uint8(generated[:k]), to_uint8(real[:k]))


def _floor(export: Path, config: Any, features: Callable, real_feats: np.ndarray) -> dict[str, Any]:
    """The FD between two sets of **real** faces (the export's val images vs the test images): what a perfect
    generator would score with this many images, the floor to read the generated FDs against."""
    from fp_metrics.generative import fid_from_features

    _, val = _load_set(export, "val", config.resolution, config.label_nc)
    return {"fd": fid_from_features(features(val), real_feats), "images": len(val)}


def _score_all(
    variant: str,
    export: Path,
    names: list[str],
    seeds: list[int],
    config: Any,
    ecfg: dict[str, Any],
    lpips: Any,
    palette: Any,
    run: Any,
) -> dict[str, list[dict[str, Any]]]:
    """Per set, one score per GAN seed (:func:`_score`); writes the Fig. 6 grid of the first seed's test maps."""
    from fp_core.seeds import derive_seed
    from fp_diffusion.gan import generate, load_generator

    features = feature_fn(ecfg)
    _, real = _load_set(export, "test", config.resolution, config.label_nc)
    real_feats = features(real)
    scores: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    scores["_floor"] = [_floor(export, config, features, real_feats)]
    for seed in seeds:
        generator = load_generator(model_dir(variant, seed))
        for name in names:
            labels, _ = _load_set(export, name, config.resolution, config.label_nc)
            generated = generate(generator, labels, int(ecfg["batch_size"]))
            bootstrap_seed = derive_seed(seed, "gan-eval-bootstrap", name)
            scores[name].append(_score(generated, real, real_feats, features, lpips, ecfg, bootstrap_seed))
            if name == "test" and seed == seeds[0]:
                colours = None if palette is None else np.asarray(palette, np.uint8)
                _fig6(variant, labels, generated, real, colours, int(ecfg["grid_maps"]), run)
    return scores


def eval_stage(*, params_path: Path, variant: str, progress: bool = True) -> Path:
    """Generate from the variant's test and perturbed test maps; FD and LPIPS against the real test images."""
    from fp_core.atomic import write_json
    from fp_diffusion.data import PairedMaps

    params = load_params(params_path)
    torch_threads(params)
    ecfg = dict(section(params, "gan.eval"))
    label = fd_label(str(ecfg.get("features", "clip")))
    export, seeds = _export(params, variant), gan_seeds(params)
    config = gan_config(params, seeds[0])
    manifest = PairedMaps(export, "test", label_nc=config.label_nc).manifest
    names = _set_names(manifest)
    with stage_run(
        f"gan-eval@{variant}",
        params={"gan.eval": ecfg, "gan.seeds": seeds},
        variant=variant,
        seed=seeds[0] if len(seeds) == 1 else None,
        dataset=export,
    ) as run:
        lpips, reason = lpips_or_reason(str(ecfg.get("lpips_net", "alex")))
        with blas_threads(params):
            scores = _score_all(
                variant, export, names, seeds, config, ecfg, lpips, manifest.get("palette"), run
            )
        floor = scores.pop("_floor")[0]
        sets = {name: _aggregate(rows, reason) for name, rows in scores.items()}
        result = _metrics_file(variant, label, sets, seeds, reason, ecfg)
        result["real_vs_real"] = {
            label: floor["fd"],
            "images": floor["images"],
            "sets": "val vs test (real images)",
        }
        write_json(eval_dir(variant) / "metrics.json", result)
        run({k: v for k, v in _flat_numbers(result).items()}, 0)
        run.log_artifact(eval_dir(variant) / "metrics.json")
    fd, lp = sets["test"]["fd"], sets["test"]["lpips"]
    lp_text = format_cell(lp) if isinstance(lp, dict) else reason
    typer.echo(f"gan-eval@{variant}: {label} {format_cell(fd)} on test; LPIPS {lp_text}")
    return eval_dir(variant) / "metrics.json"


def _metrics_file(
    variant: str, label: str, sets: dict[str, Any], seeds: list[int], reason: str | None, ecfg: dict[str, Any]
) -> dict[str, Any]:
    """metrics.json: ``{label: {set: {mean, se, se_kind}}, "LPIPS (<net>)": {set: ...} or the reason, ...}``."""
    lp_name = f"LPIPS ({ecfg.get('lpips_net', 'alex')})"
    return {
        "variant": variant,
        "fd_label": label,
        label: {name: row["fd"] for name, row in sets.items()},
        lp_name: reason if reason is not None else {name: row["lpips"] for name, row in sets.items()},
        "images": {name: row["images"] for name, row in sets.items()},
        "gan_seeds": seeds,
        "reference": "the clean test images (for every set, perturbed ones included)",
    }


def _flat_numbers(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat_numbers(value, f"{name}/")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


# -- the `fp gan` commands (registered in cli.py as `app.add_typer(gan_app, name="gan")`) ----------------------

gan_app = typer.Typer(
    help="Pix2PixHD from the parser variants' label maps to faces: embedded face CLIP, train, eval, report.",
    no_args_is_help=True,
)
ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read every setting from.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
VariantOption = Annotated[str, typer.Option("--variant", help="Parser variant: a key of parsing.variants.")]


@gan_app.command("clip-faces")
def gan_clip_faces(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Train the embedded face CLIP on the train split and captions (clip_faces); zero-shot test accuracy."""
    from fp_pipeline.stages.clip_faces import clip_faces_stage

    clip_faces_stage(params_path=params, progress=progress)


@gan_app.command("train")
def gan_train(
    variant: VariantOption = "single",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """Train the variant's Pix2PixHD (gan.model, gan.seeds) on its exported train + val maps; resumes."""
    from fp_pipeline.stages.gan import train_stage

    train_stage(params_path=params, variant=variant, progress=progress)


@gan_app.command("eval")
def gan_eval(
    variant: VariantOption = "single",
    params: ParamsOption = DEFAULT_PARAMS_PATH,
    progress: ProgressOption = True,
) -> None:
    """FD and LPIPS of the faces generated from the variant's test and perturbed test maps (gan.eval)."""
    from fp_pipeline.stages.gan import eval_stage

    eval_stage(params_path=params, variant=variant, progress=progress)


@gan_app.command("report")
def gan_report(params: ParamsOption = DEFAULT_PARAMS_PATH, progress: ProgressOption = True) -> None:
    """Tables IV (GAN rows) and II, Fig. 6 and the verdict against gan.report.baseline."""
    from fp_pipeline.stages.gan_report import report_stage

    report_stage(params_path=params, progress=progress)
