"""Two gloo processes under accelerate (the harness, a DDP-wrapped model): one parser training step equals the
step of one process on the same global batch, for a schedule and for a Gramian method (MPD), to 1e-5.

This is the whole chain: ``fp_parsing.losses`` forms the objectives and fairness groups over the global batch
(differentiable all_reduce of the statistics), fp-gradagg all-reduces the per-objective gradients before the
Gramian, and DDP averages the written direction. The workers are plain subprocesses running the text below.

Slow (two processes importing torch and accelerate): ``uv run pytest -m slow <this file>``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from gloo_workers import run_gloo_workers  # noqa: I001  (test helper beside this file)

TESTS = Path(__file__).resolve().parent
WORLD = 2
WEIGHTINGS = ("schedule", "mpd")

SETUP = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {str(TESTS)!r})
    import torch
    from test_weighting import _batch, _model
    from fp_core.training import HarnessConfig, TrainingHarness
    from fp_parsing.losses import ParsingObjectives
    from fp_parsing.schedules import build_schedule
    from fp_parsing.train import parser_step
    from fp_parsing.weighting import ObjectiveWeighting

    def step(harness, batch, spec, name):
        model = _model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model, optimizer = harness.prepare(model, optimizer)
        weighting = ObjectiveWeighting(name, build_schedule({{"kind": "linear"}}, 2))
        objectives = ParsingObjectives(num_classes=3, num_groups=spec.num_groups)
        params = list(model.parameters())
        record = parser_step(
            harness, model, objectives, weighting, batch, spec, params, 0.5, torch.Generator().manual_seed(3)
        )
        return record, [p.grad.detach().clone() for p in params]
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    out = sys.argv[1]
    harness = TrainingHarness(HarnessConfig(checkpoint_dir=out + "/ck", cpu=True, progress=False))
    rank, world = harness.accelerator.process_index, harness.accelerator.num_processes
    assert world == 2, world
    batch, spec = _batch(n=8)
    share = 8 // world
    local = {key: value[rank * share : (rank + 1) * share] for key, value in batch.items()}
    results = {name: step(harness, local, spec, name) for name in ("schedule", "mpd")}
    torch.save(results, f"{out}/rank{rank}.pt")
    """
)


@pytest.mark.slow
def test_two_process_step_equals_one_process_step_on_the_global_batch(tmp_path: Path) -> None:
    run_gloo_workers(WORKER, tmp_path, world=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    helpers: dict = {}
    exec(SETUP, helpers)  # the same text the workers ran, here in one process on the whole batch
    from fp_core.training import HarnessConfig, TrainingHarness

    harness = TrainingHarness(HarnessConfig(checkpoint_dir=tmp_path / "single", cpu=True, progress=False))
    batch, spec = helpers["_batch"](n=8)
    for name in WEIGHTINGS:
        record, grads = helpers["step"](harness, batch, spec, name)
        for rank in ranks:
            rank_record, rank_grads = rank[name]
            for key in (
                "train/accuracy",
                "train/robustness",
                "train/fairness",
                "weights/alpha",
                "weights/gamma",
            ):
                assert rank_record[key] == pytest.approx(record[key], abs=1e-5), (name, key)
            for got, expected in zip(rank_grads, grads, strict=True):
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4, msg=name)
