"""QDGS on faces (issue 13): the generator and the sampling stages.

* ``qdgs-faces-generator``: the default generator, :class:`fp_qdgs.faces.FaceVAE` trained on the train split of
  ``data/`` (the synthetic faces at ``qdgs.faces.generator.image_size``). It learns the renderer's 7:1
  light:dark skew, so its prior is biased the way the paper's FFHQ StyleGAN2 is: that bias is what QDGS is
  meant to undo. (A StyleGAN2 in q-space, :class:`fp_qdgs.faces.QSpaceGenerator`, is the real-scale choice; it
  needs weights this box cannot download.)
* ``qdgs-faces@qd``: CMA-MAEGA on the VAE's latents with the CLIP scorer on the paper's four measures (skin,
  gender presentation, hair, age; prompts in :data:`~fp_pipeline.stages.qdgs_faces_common.FACES_PROMPTS`),
  objective prompt pair, latent regularisation and image margin. It checkpoints every
  ``sampler.checkpoint_every`` iterations and a rerun resumes from the checkpoint. The sets (``qdgs.faces.sets``,
  the paper's QD15 / QD50) are nested draws of elites, uniformly over the occupied cells.
* ``qdgs-faces@rand``: the paper's Rand15 / Rand50: plain prior draws (no archive selection), scored for their
  measures; they are also binned into a result archive so both methods report coverage.

Measure ranges: ``sampler.measure_ranges: auto`` sets each range to the ``auto_range.quantiles`` of the measures
of ``auto_range.samples`` seeded prior draws (both methods get the same ranges), as docs/qdgs.md explains for
shapes: the embedded CLIP's angle differences span a different scale from the real CLIP's (+-0.1).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, section
from fp_pipeline.stages.qdgs_faces_common import (
    ARCHIVE_DIR,
    FACES_PROMPTS,
    MEASURE_NAMES,
    METHODS,
    PLOTS_DIR,
    RUNS_DIR,
    SOLUTIONS_DIR,
    VAE_DIR,
    checkpoint_dir,
    faces_params,
    sample_grid,
    set_sizes,
    write_solutions,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["auto_ranges", "generator_stage", "sample_stage", "throttled"]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from fp_core.atomic import write_json

    write_json(path, data)


# -- the generator -----------------------------------------------------------------------------------------


def throttled(log: Any, every: int) -> Any:
    """``log`` for epoch metrics (``epoch/...`` keys) and every ``every``-th step's others: one MLflow call
    per step cost more than the toy VAE's training itself."""

    def call(metrics: Any, step: int) -> None:
        epoch = {k: v for k, v in metrics.items() if k.startswith("epoch/")}
        if epoch:
            log(epoch, step)
        rest = {k: v for k, v in metrics.items() if not k.startswith("epoch/")}
        if rest and every > 0 and step % every == 0:
            log(rest, step)

    return call


def generator_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the face VAE on the train split of ``data.root``; write it and a grid of prior samples."""
    from types import SimpleNamespace

    import torch

    from fp_core.training import HarnessConfig, stored_tracking_id
    from fp_pipeline.stages.clip_faces import face_set
    from fp_qdgs.faces import FaceDecoderGenerator, FaceVAE, FaceVAEConfig, save_face_vae, train_face_vae

    params, faces = faces_params(params_path)
    cfg = section(faces, "generator", source="qdgs.faces")
    seed = int(faces["seed"])
    root, order = Path(section(params, "data.root")), str(section(params, "data.label_order"))
    try:
        model_cfg = FaceVAEConfig(int(cfg["image_size"]), int(cfg["latent_dim"]), tuple(cfg["channels"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ParamsError(f"qdgs.faces.generator: {err}") from err
    images, _, _ = face_set(root, "train", model_cfg.image_size, order)
    ckpt = checkpoint_dir("vae")
    resumed = stored_tracking_id(ckpt)
    with stage_run(
        "qdgs-faces-generator", params={"qdgs.faces.generator": cfg}, seed=seed, dataset=root, run_id=resumed
    ) as run:
        torch.manual_seed(seed)
        vae = FaceVAE(model_cfg)
        losses = train_face_vae(
            vae,
            images,
            epochs=int(cfg["epochs"]),
            seed=seed,
            checkpoint_dir=ckpt,
            batch_size=int(cfg["batch_size"]),
            lr=float(cfg["lr"]),
            log=throttled(run, int(cfg.get("log_every", 50))),
            harness=HarnessConfig.from_settings(SimpleNamespace(**cfg), ckpt, progress=progress),
            tracking_id=run.run_id,
        )
        save_face_vae(
            vae, VAE_DIR, extra={"train_set": f"{root} train", "images": len(images), "losses": losses}
        )
        generator = FaceDecoderGenerator(vae)
        with torch.no_grad():
            samples = generator(generator.sample_prior(32, torch.Generator().manual_seed(seed)))
        save_figure(sample_grid(samples, "face VAE prior samples"), PLOTS_DIR / "vae-samples.png", run)
        run({"train_images": float(len(images))}, 0)
    shutil.rmtree(ckpt, ignore_errors=True)  # the model is written; a rerun starts afresh
    typer.echo(f"qdgs-faces-generator: final ELBO loss {losses[-1]:.1f} on {len(images)} faces -> {VAE_DIR}")
    return VAE_DIR


# -- sampling ----------------------------------------------------------------------------------------------


def _clip_source(faces: dict[str, Any]) -> str | Path:
    from fp_pipeline.stages.gan_common import CLIP_FACES_DIR

    real = (faces.get("clip") or {}).get("real")
    return str(real) if real else CLIP_FACES_DIR


def auto_ranges(measures: Any, quantiles: tuple[float, float]) -> list[list[float]]:
    """Per measure ``[q_lo, q_hi]`` of ``measures [N, k]`` (widened to ``+-1e-3`` around the median if flat)."""
    import torch

    lo_q, hi_q = (float(q) for q in quantiles)
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ParamsError(f"qdgs.faces.auto_range.quantiles must be 0 <= low < high <= 1, got {quantiles}")
    m = torch.as_tensor(measures, dtype=torch.float64)
    lo, hi = torch.quantile(m, lo_q, dim=0), torch.quantile(m, hi_q, dim=0)
    out = []
    for a, b, mid in zip(lo.tolist(), hi.tolist(), m.median(dim=0).values.tolist()):
        out.append([a, b] if b - a > 2e-3 else [mid - 1e-3, mid + 1e-3])
    return out


def _setup(faces: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(generator, scorer, SamplerConfig, notes) from ``qdgs.faces``; ``auto`` ranges are measured here."""
    from dataclasses import replace

    from fp_core.seeds import torch_generator
    from fp_metrics.clip_models import load_clip
    from fp_qdgs import CLIPScorerConfig, SamplerConfig
    from fp_qdgs.faces import FaceDecoderGenerator, load_face_vae
    from fp_qdgs.sampler import score_in_batches
    from fp_qdgs.shapes.scorer import shapes_scorer

    sampler_cfg = dict(section(faces, "sampler", source="qdgs.faces"))
    sampler_cfg.setdefault("seed", int(faces["seed"]))
    auto = sampler_cfg.get("measure_ranges") == "auto"
    if auto:
        sampler_cfg["measure_ranges"] = [[-1.0, 1.0]] * len(sampler_cfg.get("measure_dims", []))
    try:
        config = SamplerConfig.from_dict(sampler_cfg)
        scorer_cfg = CLIPScorerConfig(**(faces.get("scorer") or {}))
    except (TypeError, ValueError) as err:
        raise ParamsError(f"qdgs.faces.sampler / qdgs.faces.scorer: {err}") from err
    generator = FaceDecoderGenerator(load_face_vae(VAE_DIR))
    clip = load_clip(_clip_source(faces))
    scorer = shapes_scorer(clip, scorer_cfg, FACES_PROMPTS, mean_prior_norm=generator.mean_prior_norm)
    config.check_measures(scorer.num_measures)
    notes: dict[str, Any] = {"clip": str(_clip_source(faces)), "auto_ranges": auto}
    if auto:
        cfg = section(faces, "auto_range", source="qdgs.faces")
        draws = generator.sample_prior(int(cfg["samples"]), torch_generator(config.seed, "faces-auto-range"))
        _, measures = score_in_batches(generator, scorer, draws, config.eval_batch)
        ranges = auto_ranges(measures.detach(), tuple(cfg["quantiles"]))
        config = replace(config, measure_ranges=tuple(tuple(r) for r in ranges))
        notes["measured_ranges"] = ranges
    return generator, scorer, config, notes


def _run_qd(
    generator: Any, scorer: Any, config: Any, run: Any, progress: bool
) -> tuple[Any, int, int | None]:
    from tqdm.auto import tqdm

    from fp_qdgs import QDGSSampler

    sampler = QDGSSampler(generator, scorer, config, log=run, checkpoint_dir=checkpoint_dir("qd"))
    with tqdm(total=config.iterations, initial=sampler.iteration, disable=not progress, desc="qdgs") as bar:
        while sampler.iteration < config.iterations:
            metrics = sampler.step()
            bar.update(1)
            bar.set_postfix(coverage=f"{metrics['coverage']:.3f}")
    sampler.save()
    return sampler.result_archive, sampler.evaluations, sampler.resumed_from


def _qd_set(archive: Any, size: int, seed: int) -> tuple[Any, Any, Any]:
    """``size`` elites drawn uniformly without replacement (all of them, in a random order, when fewer)."""
    from fp_qdgs.archives import sample_archive

    n = min(size, len(archive))
    sample = sample_archive(archive, n, seed=seed)
    return sample.latents, sample.measures, sample.objectives


def _rand_set(generator: Any, scorer: Any, config: Any, size: int) -> tuple[Any, Any, Any, Any]:
    """``size`` prior draws, scored; also binned into a result archive (same cells) for coverage."""
    import numpy as np

    from fp_core.seeds import torch_generator
    from fp_qdgs.archives import make_result_archive
    from fp_qdgs.sampler import score_in_batches

    latents = generator.sample_prior(size, torch_generator(config.seed, "faces-rand"))
    objective, measures = score_in_batches(generator, scorer, latents, config.eval_batch)
    objective, measures = objective.detach().float(), measures.detach().float()
    archive = make_result_archive(config, generator.latent_dim)
    if not (np.isfinite(objective.numpy()).all() and np.isfinite(measures.numpy()).all()):
        raise ValueError("the scorer returned non-finite objectives or measures for prior draws")
    archive.add(latents.double().numpy(), objective.double().numpy(), measures.double().numpy())
    return archive, latents.detach(), measures, objective


def sample_stage(*, params_path: Path, method: str, progress: bool = True) -> Path:
    """Sample the face VAE with QDGS (``qd``) or from its prior (``rand``); write the largest set."""
    from fp_qdgs import archive_metrics
    from fp_qdgs.checkpoint import archive_settings, save_archive
    from fp_qdgs.plotting import plot_archive_heatmap

    if method not in METHODS:
        raise ParamsError(f"--method must be one of {list(METHODS)}, got {method!r}")
    params, faces = faces_params(params_path)
    sizes = set_sizes(faces)
    largest = max(sizes.values())
    generator, scorer, config, notes = _setup(faces)
    logged = {"qdgs.faces.sampler": config.to_dict(), "qdgs.faces.scorer": faces.get("scorer") or {}}
    with stage_run(f"qdgs-faces@{method}", params=logged, variant=method, seed=config.seed) as run:
        resumed = None
        if method == "qd":
            archive, evaluations, resumed = _run_qd(generator, scorer, config, run, progress)
            latents, measures, objectives = _qd_set(archive, largest, config.seed)
        else:
            archive, latents, measures, objectives = _rand_set(generator, scorer, config, largest)
            evaluations = largest
        out = write_solutions(SOLUTIONS_DIR / f"{method}.npz", latents, measures, objectives)
        metrics = {
            **archive_metrics(archive),
            "evaluations": float(evaluations),
            "solutions": float(len(latents)),
        }
        _write_json(
            SOLUTIONS_DIR / f"{method}.json",
            {
                "method": method,
                "sets": {name: min(size, len(latents)) for name, size in sizes.items()},
                "requested_sets": sizes,
                "measure_names": list(MEASURE_NAMES),
                "measure_ranges": [list(r) for r in config.measure_ranges],
                "resumed_from": resumed,
                **notes,
                "note": "set <name> is the first sets[name] rows (nested draws)",
            },
        )
        ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
        save_archive(archive, ARCHIVE_DIR / f"{method}.npz")
        _write_json(ARCHIVE_DIR / f"{method}.json", archive_settings(archive))
        _write_json(RUNS_DIR / f"{method}.json", metrics)
        figure = plot_archive_heatmap(
            archive, measure_names=MEASURE_NAMES, title=f"{method}: objective per cell"
        )
        save_figure(figure, PLOTS_DIR / f"archive-{method}.png", run)
        run({"solutions": float(len(latents))}, 0)
        run.log_artifact(RUNS_DIR / f"{method}.json")
    shutil.rmtree(checkpoint_dir(method), ignore_errors=True)
    typer.echo(
        f"qdgs-faces@{method}: coverage {metrics['coverage']:.3f}, {len(latents)} solutions at "
        f"{evaluations} evaluations -> {out}"
    )
    return out
