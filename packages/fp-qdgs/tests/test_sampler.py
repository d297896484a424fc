from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_qdgs import QDGSSampler, SamplerConfig, random_sampling, sample_archive
from fp_qdgs.toy import LinearSigmoidGenerator, SphereScorer


class CountingGenerator(LinearSigmoidGenerator):
    """Counts the latents that go through the generator."""

    def __init__(self) -> None:
        super().__init__(latent_dim=20)
        self.count = 0

    def forward(self, latents):
        self.count += latents.shape[0]
        return super().forward(latents)


def _config(**kw):
    base = {
        "measure_dims": (10, 10),
        "measure_ranges": ((-20.0, 20.0), (-20.0, 20.0)),
        "batch_size": 16,
        "iterations": 50,
        "x0_samples": 64,
        "eval_batch": 32,
    }
    return SamplerConfig(**{**base, **kw})


class Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def __call__(self, metrics, step):
        self.rows.append((step, dict(metrics)))


def test_sphere_high_coverage_and_beats_random_at_equal_evaluations():
    config = _config()
    gen, scorer, log = CountingGenerator(), SphereScorer(20), Recorder()
    sampler = QDGSSampler(gen, scorer, config, log=log)
    archive = sampler.run()
    assert sampler.evaluations == gen.count == 64 + 50 * 17
    assert [step for step, _ in log.rows] == list(range(1, 51))
    keys = {"coverage", "qd_score", "norm_qd_score", "objective_max", "objective_mean", "clipped_share"}
    assert keys <= set(log.rows[-1][1])
    assert archive.stats.coverage >= 0.8

    gen.count = 0
    baseline = random_sampling(gen, scorer, config, sampler.evaluations)
    assert gen.count == sampler.evaluations
    assert archive.stats.coverage > baseline.stats.coverage + 0.3
    assert archive.stats.norm_qd_score > baseline.stats.norm_qd_score
    # normalised QD score = QD score / cells, objective offset 0
    m = log.rows[-1][1]
    assert m["norm_qd_score"] == pytest.approx(m["qd_score"] / 100)


@pytest.mark.slow
@pytest.mark.parametrize("selection_rule", ["mu", "filter"])
def test_sphere_bigger(selection_rule):
    config = _config(
        measure_dims=(25, 25),
        measure_ranges=((-30.0, 30.0), (-30.0, 30.0)),
        batch_size=36,
        iterations=500,
        num_emitters=2,
        selection_rule=selection_rule,
    )
    gen, scorer = LinearSigmoidGenerator(), SphereScorer(20)
    sampler = QDGSSampler(gen, scorer, config)
    archive = sampler.run()
    baseline = random_sampling(gen, scorer, config, sampler.evaluations)
    assert archive.stats.coverage >= 0.9
    assert archive.stats.coverage > 3 * baseline.stats.coverage
    assert archive.stats.norm_qd_score > 2 * baseline.stats.norm_qd_score


def test_clipped_share_is_logged():
    config = _config(measure_ranges=((-0.5, 0.5), (-0.5, 0.5)), iterations=3, eval_batch=5)  # ask in 4 chunks
    log = Recorder()
    QDGSSampler(LinearSigmoidGenerator(), SphereScorer(20), config, log=log).run()
    shares = [m["clipped_share"] for _, m in log.rows]
    assert all(0.0 <= s <= 1.0 for s in shares) and max(shares) > 0.5


class _Killed(RuntimeError):
    pass


def test_killed_run_resumes_to_the_same_iteration_count(tmp_path):
    config = _config(iterations=6, checkpoint_every=3)
    uninterrupted = QDGSSampler(LinearSigmoidGenerator(), SphereScorer(20), config)
    uninterrupted.run()

    def killer(metrics, step):
        if step == 5:
            raise _Killed

    first = QDGSSampler(
        LinearSigmoidGenerator(), SphereScorer(20), config, log=killer, checkpoint_dir=tmp_path
    )
    with pytest.raises(_Killed):
        first.run()
    saved = sample_archive(first.result_archive)  # in memory: includes iterations 4-5, lost on the kill

    log = Recorder()
    resumed = QDGSSampler(
        LinearSigmoidGenerator(), SphereScorer(20), config, log=log, checkpoint_dir=tmp_path
    )
    assert resumed.resumed_from == 3 and resumed.iteration == 3
    starts = resumed.search_archive.data("solution")
    assert any(np.allclose(resumed.emitters[0].ask_dqd()[0], s) for s in starts)  # restarted from an elite
    resumed.run()
    assert resumed.iteration == 6
    assert [step for step, _ in log.rows] == [4, 5, 6]
    assert resumed.evaluations == uninterrupted.evaluations == 64 + 6 * 17
    assert len(saved.indices) > 0

    again = QDGSSampler(LinearSigmoidGenerator(), SphereScorer(20), config, checkpoint_dir=tmp_path)
    assert again.iteration == 6  # the final checkpoint
    assert again.run() is again.result_archive and again.iteration == 6


def test_resume_refuses_a_different_config(tmp_path):
    QDGSSampler(
        LinearSigmoidGenerator(), SphereScorer(20), _config(iterations=2), checkpoint_dir=tmp_path
    ).run()
    longer = QDGSSampler(
        LinearSigmoidGenerator(), SphereScorer(20), _config(iterations=4), checkpoint_dir=tmp_path
    )  # only iterations changed: fine
    assert longer.iteration == 2
    with pytest.raises(ValueError, match="different config"):
        QDGSSampler(LinearSigmoidGenerator(), SphereScorer(20), _config(sigma0=0.1), checkpoint_dir=tmp_path)


def test_sample_archive():
    sampler = QDGSSampler(LinearSigmoidGenerator(), SphereScorer(20), _config(iterations=5))
    archive = sampler.run()
    every = sample_archive(archive)
    n = len(archive)
    assert every.latents.shape == (n, 20) and every.measures.shape == (n, 2)
    assert every.objectives.shape == (n,) and every.indices.dtype == torch.int64
    assert torch.all(every.indices[1:] > every.indices[:-1])
    np.testing.assert_array_equal(archive.index_of(every.measures.double().numpy()), every.indices.numpy())
    some = sample_archive(archive, 3, seed=1)
    assert some.latents.shape == (3, 20)
    assert torch.equal(sample_archive(archive, 3, seed=1).indices, some.indices)
    with pytest.raises(ValueError, match="without replacement"):
        sample_archive(archive, n + 1)


class _MeanColourCLIP:
    def encode_image(self, images):
        return images.mean(dim=(2, 3))


def test_clip_scorer_run_checkpoints_its_memory(tmp_path):
    from fp_qdgs import CLIPScorer, CLIPScorerConfig

    def scorer():
        t = torch.eye(3)
        return CLIPScorer(
            _MeanColourCLIP(),
            (t[0], t[1]),
            [(t[1], t[2]), (t[0], t[2])],
            mean_prior_norm=LinearSigmoidGenerator(latent_dim=6).mean_prior_norm,
            config=CLIPScorerConfig(image_size=8, memory_size=5),
        )

    config = _config(
        measure_dims=(5, 5), measure_ranges=((-0.3, 0.3), (-0.3, 0.3)), iterations=4, checkpoint_every=2
    )
    first = scorer()
    sampler = QDGSSampler(LinearSigmoidGenerator(latent_dim=6), first, config, checkpoint_dir=tmp_path)
    sampler.run()
    assert 0 < len(first.memory) <= 5 and (tmp_path / "scorer.npz").exists()
    second = scorer()
    resumed = QDGSSampler(LinearSigmoidGenerator(latent_dim=6), second, config, checkpoint_dir=tmp_path)
    assert resumed.iteration == 4
    torch.testing.assert_close(second.memory.embeddings, first.memory.embeddings)
