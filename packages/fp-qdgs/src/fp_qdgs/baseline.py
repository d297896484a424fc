"""Random sampling at a fixed number of generator evaluations, into the same kind of archive as QDGS's result.

The paper's baseline: draw latents from the generator's prior, score them, and keep the best per cell of an
elitist ``GridArchive`` with the sampler's cells, ranges and objective offset. Give it
``QDGSSampler.evaluations`` to compare at equal cost (the last batch is cut so the count is exact).
"""

from __future__ import annotations

import numpy as np
import torch
from ribs.archives import GridArchive

from fp_core.logging import LogFn, null_log
from fp_core.seeds import torch_generator
from fp_qdgs.archives import acceptance_mask, archive_metrics, clipped_share, make_result_archive
from fp_qdgs.config import SamplerConfig
from fp_qdgs.jacobian import evaluate
from fp_qdgs.protocols import Generator, Scorer

__all__ = ["random_sampling"]


def random_sampling(
    generator: Generator,
    scorer: Scorer,
    config: SamplerConfig,
    num_evaluations: int,
    *,
    log: LogFn = null_log,
    device: str | torch.device = "cpu",
) -> GridArchive:
    """Score exactly ``num_evaluations`` prior draws (batches of ``config.eval_batch``) into a result archive.

    Seeded by ``(config.seed, "random-baseline")``. ``log(metrics, step)`` after each batch, step = evaluations
    so far. The scorer's ``update`` sees each batch with the archive's acceptance mask, as in the sampler.
    """
    config.check_measures(scorer.num_measures)
    if num_evaluations < 0:
        raise ValueError(f"num_evaluations must be >= 0, got {num_evaluations}")
    archive = make_result_archive(config, generator.latent_dim)
    gen = torch_generator(config.seed, "random-baseline", device=device)
    done = 0
    while done < num_evaluations:
        n = min(config.eval_batch, num_evaluations - done)
        latents = generator.sample_prior(n, gen).to(device)
        ev = evaluate(generator, scorer, latents)
        objective = ev.objective.double().cpu().numpy()
        measures = ev.measures.double().cpu().numpy()
        accepted = acceptance_mask(archive, objective, measures)
        archive.add(latents.detach().double().cpu().numpy(), objective, measures)
        scorer.update(ev.images, torch.as_tensor(accepted, device=ev.images.device))
        done += n
        metrics = archive_metrics(archive)
        metrics.update(
            {
                "batch_objective_max": float(np.max(objective)),
                "batch_objective_mean": float(np.mean(objective)),
                "clipped_share": clipped_share(archive, measures),
                "evaluations": float(done),
            }
        )
        log(metrics, done)
    return archive
