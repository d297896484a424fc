"""The QDGS sampler (Alg. 1 of Chang et al., AAAI 2024): CMA-MAEGA over a generator's latent space.

Each iteration, through a ``ribs.schedulers.Scheduler`` holding the CMA-MAE search archive, the emitters and
the result archive:

1. ``ask_dqd``: each emitter's solution point ``theta`` ``[num_emitters, n]``;
2. one forward pass of generator + scorer and one batched backward pass give the objective, the ``k``
   measures and their ``[num_emitters, k + 1, n]`` Jacobian (:mod:`fp_qdgs.jacobian`); ``tell_dqd``;
3. ``ask``: ``batch_size`` solutions per emitter around ``theta`` along the (normalised) gradients;
4. score them without gradients; ``tell``. Both tells add to both archives.

After each evaluated batch the scorer's ``update`` sees the images and which of them the search archive
accepted (the ``ask`` batch is scored in chunks of ``config.eval_batch``, each observed as it is scored, so a
memory-keeping scorer may see its memory grow between chunks; with ``eval_batch >= num_emitters * batch_size``
there is one chunk). Measures outside ``config.measure_ranges`` are clipped into the edge cells by ribs; the share of
such solutions per iteration is logged as ``clipped_share``.

Evaluations: a generator evaluation is one latent through the generator. The start point costs
``config.x0_samples`` (the best-objective prior draw becomes every emitter's ``x0``, as in the public code), each
iteration ``config.evaluations_per_iteration``; :attr:`QDGSSampler.evaluations` counts them, and
:func:`fp_qdgs.baseline.random_sampling` takes the same count.

Checkpoints (``checkpoint_dir`` and ``config.checkpoint_every``): both archives, thresholds included, plus the
counters and the scorer's state tensors, every ``checkpoint_every`` iterations and at the end of :meth:`run`.
A sampler built on a directory that holds a checkpoint resumes from it (``resume=True``): the archives are
restored exactly, and the emitters *restart* from ``num_emitters`` elites of the restored search archive
(drawn with a seed derived from the run seed and the iteration), with fresh CMA-ES coefficient distributions
and Adam moments. So a resumed run continues to the same iteration and evaluation counts as an uninterrupted
one, but not along the identical trajectory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from ribs.archives import GridArchive
from ribs.schedulers import Scheduler

from fp_core.logging import LogFn, null_log
from fp_core.seeds import derive_seed, torch_generator
from fp_qdgs.archives import (
    acceptance_mask,
    archive_metrics,
    clipped_share,
    make_result_archive,
    make_search_archive,
)
from fp_qdgs.checkpoint import load_checkpoint, save_checkpoint
from fp_qdgs.config import SamplerConfig
from fp_qdgs.emitters import QDGSArborescenceEmitter, make_emitters
from fp_qdgs.jacobian import Evaluation, evaluate, evaluate_with_jacobian
from fp_qdgs.protocols import Generator, Scorer

__all__ = ["QDGSSampler", "score_in_batches"]


def score_in_batches(
    generator: Generator, scorer: Scorer, latents: torch.Tensor, batch: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``evaluate`` in chunks of ``batch`` (images dropped): ``latents [N, n] -> (objective [N], measures [N, k])``."""
    parts = [evaluate(generator, scorer, latents[i : i + batch]) for i in range(0, len(latents), batch)]
    return torch.cat([p.objective for p in parts]), torch.cat([p.measures for p in parts])


def _check_finite(objective: np.ndarray, measures: np.ndarray) -> None:
    bad = ~np.isfinite(objective) | ~np.isfinite(measures).all(axis=1)
    if bad.any():
        raise ValueError(
            f"the scorer returned non-finite objective or measures for {int(bad.sum())} solutions"
        )


class QDGSSampler:
    """Ask-tell QDGS run: :meth:`step` one iteration, :meth:`run` to ``config.iterations``.

    Args:
        generator: latents ``[B, n]`` -> images ``[B, 3, H, W]`` in ``[0, 1]`` (:class:`~fp_qdgs.Generator`).
        scorer: images, latents -> objective ``[B]``, measures ``[B, k]`` (:class:`~fp_qdgs.Scorer`);
            ``k`` must equal ``len(config.measure_dims)``.
        config: the settings.
        log: ``log(metrics, step)`` called after every iteration (step = iteration, from 1).
        checkpoint_dir: where checkpoints go; ``None`` for none.
        resume: resume from ``checkpoint_dir`` when it holds a checkpoint.
        device: where latents are put before the generator sees them.
    """

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer,
        config: SamplerConfig,
        *,
        log: LogFn = null_log,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        config.check_measures(scorer.num_measures)
        self.generator, self.scorer, self.config, self.log = generator, scorer, config, log
        self.device = torch.device(device)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.iteration = 0
        self.evaluations = 0
        self.best_objective = -math.inf
        self.resumed_from: int | None = None
        if self.checkpoint_dir is not None and resume and (self.checkpoint_dir / "state.json").exists():
            self._resume()
        else:
            self._start()

    # -- construction ------------------------------------------------------------------------------------

    def _build(self, search: GridArchive, result: GridArchive, x0: np.ndarray, purpose: str | int) -> None:
        self.emitters: list[QDGSArborescenceEmitter] = make_emitters(self.config, search, x0, purpose=purpose)
        self.scheduler = Scheduler(search, self.emitters, result_archive=result)

    def _start(self) -> None:
        self.x0 = self.initial_point()
        n = self.generator.latent_dim
        self._build(
            make_search_archive(self.config, n),
            make_result_archive(self.config, n),
            np.tile(self.x0, (self.config.num_emitters, 1)),
            purpose="start",
        )

    def _resume(self) -> None:
        assert self.checkpoint_dir is not None
        search, result, state, scorer_state = load_checkpoint(self.checkpoint_dir)
        saved = SamplerConfig.from_dict(state["config"])
        if {**saved.to_dict(), "iterations": 0} != {**self.config.to_dict(), "iterations": 0}:
            raise ValueError(
                f"the checkpoint in {self.checkpoint_dir} was written with a different config "
                f"(only `iterations` may change on resume): {saved} vs {self.config}"
            )
        self.iteration = int(state["iteration"])
        self.evaluations = int(state["evaluations"])
        self.best_objective = float(state["best_objective"])
        self.x0 = np.asarray(state["x0"], dtype=np.float64)
        self.resumed_from = self.iteration
        if scorer_state and hasattr(self.scorer, "load_state_tensors"):
            self.scorer.load_state_tensors(scorer_state)
        if search.empty:
            x0 = np.tile(self.x0, (self.config.num_emitters, 1))
        else:  # restart every emitter from an elite of the restored search archive
            solutions = search.data("solution")
            rng = np.random.default_rng(derive_seed(self.config.seed, "resume", self.iteration))
            x0 = solutions[rng.choice(len(solutions), size=self.config.num_emitters)]
        self._build(search, result, x0, purpose=self.iteration)

    def initial_point(self) -> np.ndarray:
        """The prior draw with the best objective among ``config.x0_samples``: ``[n]`` (counted as evaluations)."""
        gen = torch_generator(self.config.seed, "x0", device=self.device)
        latents = self.generator.sample_prior(self.config.x0_samples, gen).to(self.device)
        objective, _ = score_in_batches(self.generator, self.scorer, latents, self.config.eval_batch)
        self.evaluations += len(latents)
        self.best_objective = max(self.best_objective, float(objective.max()))
        return latents[int(torch.argmax(objective))].detach().cpu().double().numpy()

    # -- archives ----------------------------------------------------------------------------------------

    @property
    def search_archive(self) -> GridArchive:
        """The CMA-MAE archive the emitters rank against."""
        return self.scheduler.archive

    @property
    def result_archive(self) -> GridArchive:
        """The elitist archive: best solution per cell."""
        return self.scheduler.result_archive

    # -- iterations --------------------------------------------------------------------------------------

    def _latents(self, solutions: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(solutions, dtype=torch.float32, device=self.device)

    def _observe(self, ev: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        objective = ev.objective.detach().double().cpu().numpy()
        measures = ev.measures.detach().double().cpu().numpy()
        _check_finite(objective, measures)
        accepted = acceptance_mask(self.search_archive, objective, measures)
        self.scorer.update(ev.images, torch.as_tensor(accepted, device=ev.images.device))
        return objective, measures, accepted

    def step(self) -> dict[str, float]:
        """One iteration (DQD pass then the arborescence batch); returns the metrics it logged."""
        sched = self.scheduler
        # 1-2: the solution points with their Jacobians, one forward and one batched backward pass.
        points = sched.ask_dqd()
        ev = evaluate_with_jacobian(self.generator, self.scorer, self._latents(points))
        obj_dqd, meas_dqd, acc_dqd = self._observe(ev)
        assert ev.jacobian is not None
        sched.tell_dqd(obj_dqd, meas_dqd, ev.jacobian.double().cpu().numpy())
        # 3-4: the arborescence samples, no gradients.
        solutions = sched.ask()
        latents, size = self._latents(solutions), self.config.eval_batch
        chunks = [
            self._observe(evaluate(self.generator, self.scorer, latents[i : i + size]))
            for i in range(0, len(latents), size)
        ]
        obj, meas, acc = (np.concatenate(parts) for parts in zip(*chunks))
        sched.tell(obj, meas)

        self.iteration += 1
        self.evaluations += len(points) + len(solutions)
        all_obj = np.concatenate([obj_dqd, obj])
        all_meas = np.concatenate([meas_dqd, meas])
        self.best_objective = max(self.best_objective, float(all_obj.max()))
        metrics = archive_metrics(self.result_archive)
        metrics.update(
            {
                "search_coverage": float(self.search_archive.stats.coverage),
                "batch_objective_max": float(all_obj.max()),
                "batch_objective_mean": float(all_obj.mean()),
                "best_objective": self.best_objective,
                "clipped_share": clipped_share(self.result_archive, all_meas),
                "accepted_share": float(np.concatenate([acc_dqd, acc]).mean()),
                "evaluations": float(self.evaluations),
                "restarts": float(sum(e.restarts for e in self.emitters)),
            }
        )
        self.log(metrics, self.iteration)
        every = self.config.checkpoint_every
        if self.checkpoint_dir is not None and every and self.iteration % every == 0:
            self.save()
        return metrics

    def run(self, iterations: int | None = None) -> GridArchive:
        """Step until ``iterations`` (default ``config.iterations``) in total; checkpoint; the result archive."""
        target = self.config.iterations if iterations is None else iterations
        while self.iteration < target:
            self.step()
        if self.checkpoint_dir is not None:
            self.save()
        return self.result_archive

    def save(self) -> Path:
        """Write a checkpoint to ``checkpoint_dir`` now."""
        if self.checkpoint_dir is None:
            raise ValueError("this sampler has no checkpoint_dir")
        scorer_state = self.scorer.state_tensors() if hasattr(self.scorer, "state_tensors") else None
        return save_checkpoint(
            self.checkpoint_dir,
            search=self.search_archive,
            result=self.result_archive,
            state={
                "iteration": self.iteration,
                "evaluations": self.evaluations,
                "best_objective": self.best_objective,
                "config": self.config.to_dict(),
                "x0": [float(v) for v in self.x0],
            },
            scorer_state=scorer_state,
        )
