"""QDGS on the CPU: the batched DQD Jacobian against k + 1 passes, and coverage against random sampling.

Three entries, each measured side by side in one run:

* ``jacobian``: one DQD evaluation (objective, ``k = 4`` measures and their ``[B, 5, 6]`` Jacobian) of the
  DQD step's batch (``ask_dqd`` gives one point per emitter: 1 with params.yaml's one emitter;
  ``jacobian_large_batch`` repeats it at 36 latents) through the shapes VAE decoder (random init) and a CLIP
  scorer on a small open_clip ViT at the embedded shapes CLIP's size (``EmbeddedCLIPConfig()``, random
  weights: timing only). ``batched`` is :func:`fp_qdgs.evaluate_with_jacobian` (one forward, one vmapped
  backward); ``reference`` is the public code's way, ``k + 1`` separate forward and backward passes.
  Repetitions alternate which arm runs first; medians and their ratio are reported (goal: ratio <= 0.75),
  with the largest absolute difference between the two Jacobians.
* ``coverage_sphere``: QDGS against :func:`fp_qdgs.random_sampling` at exactly the same number of generator
  evaluations on the toy sphere (:mod:`fp_qdgs.toy`, linear-projection measures); coverage ratio (goal >= 3).
* ``coverage_shapes``: the same on the trained shapes VAE and the trained embedded CLIP, read from ``--vae``
  and ``--clip`` or the pipeline's default outputs ``outputs/qdgs-shapes-vae`` and ``outputs/clip-shapes``;
  without them the entry is the string ``"unavailable: ..."`` (no number from random weights).

Prints ONE JSON line. ribs' numba kernels run uncompiled (``NUMBA_DISABLE_JIT=1`` unless set), which is faster
than compiling them at these sizes. Default run: about 1-2 minutes on 2 CPU threads.
    uv run python benchmarks/qdgs_step.py [--reps 5] [--batch 36] [--sphere-iterations 150]
        [--shapes-iterations 100] [--vae DIR] [--clip DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import torch  # noqa: E402

from fp_qdgs import (  # noqa: E402
    CLIPScorer,
    CLIPScorerConfig,
    QDGSSampler,
    SamplerConfig,
    archive_metrics,
    evaluate_with_jacobian,
    random_sampling,
)
from fp_qdgs.shapes.vae import DecoderGenerator, ShapesVAE  # noqa: E402
from fp_qdgs.toy import LinearSigmoidGenerator, SphereScorer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VAE = ROOT / "outputs" / "qdgs-shapes-vae"
DEFAULT_CLIP = ROOT / "outputs" / "clip-shapes"
UNAVAILABLE = "unavailable: run `uv run dvc repro qdgs-shapes-vae clip-shapes` first"
PROMPTS = [  # objective pair, then k = 4 measure pairs
    ("A regular square or a triangle.", "Splatters of colors."),
    ("A red shape.", "A blue shape."),
    ("A triangle with 3 edges.", "A square or diamond with 4 edges."),
    ("A small shape.", "A large shape."),
    ("A shape on the left.", "A shape on the right."),
]


def _clip_model() -> tuple[Any, torch.Tensor, dict[str, Any]]:
    """The embedded shapes CLIP's architecture with random weights, the prompt embeddings ``[10, D]``, a note."""
    from fp_qdgs.embedded_clip import EmbeddedCLIPConfig, as_loaded_clip, build_embedded_clip

    loaded = as_loaded_clip(build_embedded_clip(EmbeddedCLIPConfig(), seed=0))
    texts = loaded.encode_texts([p for pair in PROMPTS for p in pair])
    info = {"source": "fp_qdgs.embedded_clip.EmbeddedCLIPConfig()", "image_size": int(loaded.image_size)}
    info["mean"], info["std"] = [float(v) for v in loaded.mean], [float(v) for v in loaded.std]
    return loaded.model.eval().requires_grad_(False), texts.float(), info


def build_jacobian_case() -> tuple[DecoderGenerator, CLIPScorer, dict[str, Any]]:
    """The shapes decoder (random init) and a CLIP scorer with k = 4 measures on a small random open_clip."""
    torch.manual_seed(0)
    generator = DecoderGenerator(ShapesVAE())
    model, texts, info = _clip_model()
    pairs = [(texts[2 * i], texts[2 * i + 1]) for i in range(len(PROMPTS))]
    config = CLIPScorerConfig(image_size=int(info["image_size"]))
    if "mean" in info:
        config = CLIPScorerConfig(
            image_size=int(info["image_size"]), mean=tuple(info["mean"]), std=tuple(info["std"])
        )
    scorer = CLIPScorer(model, pairs[0], pairs[1:], mean_prior_norm=generator.mean_prior_norm, config=config)
    info["weights"] = "random (timing only)"
    info["parameters"] = sum(p.numel() for p in model.parameters())
    return generator, scorer, info


def reference_jacobian(generator: Any, scorer: Any, latents: torch.Tensor) -> torch.Tensor:
    """The public code's Jacobian: one forward and one backward pass per output, ``[B, k + 1, n]``."""
    rows = []
    for j in range(scorer.num_measures + 1):
        z = latents.detach().clone().requires_grad_(True)
        objective, measures = scorer(generator(z), z)
        outputs = torch.cat([objective[:, None], measures], dim=1)
        (grad,) = torch.autograd.grad(outputs[:, j].sum(), z)
        rows.append(grad)
    return torch.stack(rows, dim=1)


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000.0, out


def bench_jacobian(reps: int, batch: int) -> dict[str, Any]:
    """Median ms of the batched and the reference Jacobian, alternating which runs first."""
    generator, scorer, info = build_jacobian_case()
    latents = generator.sample_prior(batch, torch.Generator().manual_seed(1))
    arms = {
        "batched": lambda: evaluate_with_jacobian(generator, scorer, latents).jacobian,
        "reference": lambda: reference_jacobian(generator, scorer, latents),
    }
    for fn in arms.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in arms}
    results: dict[str, torch.Tensor] = {}
    for rep in range(reps):
        order = list(arms) if rep % 2 == 0 else list(reversed(arms))
        for name in order:
            ms, results[name] = _timed(arms[name])
            times[name].append(ms)
    ms = {name: statistics.median(values) for name, values in times.items()}
    ratio = ms["batched"] / ms["reference"]
    diff = float((results["batched"] - results["reference"]).abs().max())
    scale = float(results["reference"].abs().max())
    return {
        "ms": {name: round(value, 2) for name, value in ms.items()},
        "ratio_batched_over_reference": round(ratio, 4),
        "goal_ratio_le_0_75": ratio <= 0.75,
        "max_abs_diff": diff,
        "max_abs_jacobian": scale,
        "batch": batch,
        "k": scorer.num_measures,
        "latent_dim": generator.latent_dim,
        "reps": reps,
        "clip": info,
    }


def compare_coverage(generator: Any, scorer: Any, config: SamplerConfig) -> dict[str, Any]:
    """QDGS for ``config.iterations`` and random sampling at the same evaluation count; their metrics."""
    start = time.perf_counter()
    sampler = QDGSSampler(generator, scorer, config)
    qd = archive_metrics(sampler.run())
    qd_s = time.perf_counter() - start
    start = time.perf_counter()
    random = archive_metrics(random_sampling(generator, scorer, config, sampler.evaluations))
    random_s = time.perf_counter() - start
    ratio = qd["coverage"] / random["coverage"] if random["coverage"] > 0 else None
    return {
        "evaluations": sampler.evaluations,
        "iterations": config.iterations,
        "cells": config.num_cells,
        "qd": {"coverage": qd["coverage"], "qd_score": qd["qd_score"], "seconds": round(qd_s, 2)},
        "random": {
            "coverage": random["coverage"],
            "qd_score": random["qd_score"],
            "seconds": round(random_s, 2),
        },
        "coverage_ratio": None if ratio is None else round(ratio, 4),
    }


def bench_sphere(iterations: int, latent_dim: int = 20) -> dict[str, Any]:
    """Coverage on the toy sphere with linear-projection measures (ranges: the reachable sums of the box)."""
    bound = latent_dim // 2 * 5.12
    config = SamplerConfig(
        measure_dims=(20, 20),
        measure_ranges=((-bound, bound), (-bound, bound)),
        batch_size=36,
        iterations=iterations,
        x0_samples=64,
        eval_batch=64,
    )
    out = compare_coverage(LinearSigmoidGenerator(latent_dim=latent_dim), SphereScorer(latent_dim), config)
    out["latent_dim"] = latent_dim
    out["goal_ratio_ge_3"] = out["coverage_ratio"] is None or out["coverage_ratio"] >= 3
    return out


def _shapes_settings(params_path: Path, iterations: int) -> tuple[SamplerConfig, CLIPScorerConfig]:
    """The pipeline's ``qdgs.shapes.sampler`` / ``scorer`` from ``params_path``, ``iterations`` overridden."""
    import yaml

    shapes = yaml.safe_load(params_path.read_text(encoding="utf-8"))["qdgs"]["shapes"]
    sampler = {**shapes["sampler"], "iterations": iterations, "checkpoint_every": 0}
    sampler.setdefault("seed", int(shapes.get("seed", 0)))
    return SamplerConfig.from_dict(sampler), CLIPScorerConfig(**(shapes.get("scorer") or {}))


def bench_shapes(vae_dir: Path, clip_dir: Path, iterations: int, params_path: Path) -> dict[str, Any] | str:
    """Coverage on the trained shapes VAE + embedded CLIP with the pipeline's settings, or ``"unavailable: ..."``."""
    missing = [str(p) for p in (vae_dir, clip_dir) if not (p / "manifest.json").is_file()]
    missing += [] if params_path.is_file() else [str(params_path)]
    if missing:
        return f"{UNAVAILABLE} (not found: {', '.join(missing)})"
    from fp_metrics.clip_models import load_clip
    from fp_qdgs.shapes.scorer import SHAPES_PROMPTS, shapes_scorer
    from fp_qdgs.shapes.vae import load_vae

    config, scorer_config = _shapes_settings(params_path, iterations)
    generator = DecoderGenerator(load_vae(vae_dir))
    scorer = shapes_scorer(load_clip(clip_dir), scorer_config, mean_prior_norm=generator.mean_prior_norm)
    out = compare_coverage(generator, scorer, config)
    out.update(
        {
            "measure_names": list(SHAPES_PROMPTS.measure_names),
            "measure_ranges": [list(r) for r in config.measure_ranges],
            "vae": str(vae_dir),
            "clip": str(clip_dir),
            "settings": f"{params_path}: qdgs.shapes.sampler / scorer",
        }
    )
    out["goal_ratio_ge_3"] = out["coverage_ratio"] is None or out["coverage_ratio"] >= 3
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per Jacobian arm")
    parser.add_argument(
        "--batch", type=int, default=1, help="latents per DQD evaluation (= num_emitters: 1 in params.yaml)"
    )
    parser.add_argument("--large-batch", type=int, default=36, help="a second, larger DQD batch (0: skip)")
    parser.add_argument("--sphere-iterations", type=int, default=150)
    parser.add_argument("--shapes-iterations", type=int, default=100)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="sampler/scorer settings")
    parser.add_argument("--vae", type=Path, default=DEFAULT_VAE, help="a save_vae directory")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="a load_clip directory")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    report = {
        "benchmark": "qdgs_step",
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "jacobian": bench_jacobian(args.reps, args.batch),
        "jacobian_large_batch": bench_jacobian(args.reps, args.large_batch) if args.large_batch else None,
        "coverage_sphere": bench_sphere(args.sphere_iterations),
        "coverage_shapes": bench_shapes(args.vae, args.clip, args.shapes_iterations, args.params),
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
