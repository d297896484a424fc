"""Two gloo processes under accelerate (the fp-core harness, a DDP-wrapped module): one FairHuman step on each
rank's half of a batch writes the same ``.grad`` as one process on the whole batch, for the exact MPD (global
Gramian of the rank-averaged per-objective gradients), the output-space MPD (the rank-summed output Gramian)
and LS (DDP's own averaging), and every rank logs the same weights.

The three losses are means over the batch, so the global batch's loss is the mean of the two halves' losses,
which is what data parallelism assumes. The workers are plain subprocesses (``gloo_workers`` from the
fp-parsing tests, on the pytest pythonpath).

Slow (two processes importing torch and accelerate): ``uv run pytest -m slow <this file>``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from gloo_workers import run_gloo_workers  # noqa: I001  (test helper on the pytest pythonpath)

WORLD = 2
WEIGHTINGS = ("mpd", "mpd_output", "ls")

SETUP = textwrap.dedent(
    """
    import torch
    from fp_core.training import HarnessConfig, TrainingHarness
    from fp_diffusion.fairhuman import FairHumanStep

    def batch(n=8):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 4, 3, 3, generator=g)
        target = torch.randn(n, 4, 3, 3, generator=g)
        face = (torch.rand(n, 1, 3, 3, generator=g) < 0.4).float()
        hand = (torch.rand(n, 1, 3, 3, generator=g) < 0.2).float()
        return x, target, face, hand

    def module():
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1), torch.nn.Tanh(), torch.nn.Conv2d(8, 4, 1))

    def step(harness, data, name):
        net = module()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        net, optimizer = harness.prepare(net, optimizer)
        x, target, face, hand = data
        out = net(x)
        err = (out - target) ** 2
        losses = {
            "global": err.mean(),
            "face": (err * face).mean(),
            "hand": (err * hand).mean(),
        }
        params = list(harness.unwrap(net).parameters())
        result = FairHumanStep(name, params)(losses, output=out)
        return result.weights.detach().double(), [p.grad.detach().clone() for p in params]
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import sys
    out = sys.argv[1]
    harness = TrainingHarness(HarnessConfig(checkpoint_dir=out + "/ck", cpu=True, progress=False))
    rank, world = harness.accelerator.process_index, harness.accelerator.num_processes
    assert world == 2, world
    share = 8 // world
    local = tuple(t[rank * share : (rank + 1) * share] for t in batch())
    results = {name: step(harness, local, name) for name in ("mpd", "mpd_output", "ls")}
    torch.save(results, f"{out}/rank{rank}.pt")
    """
)


@pytest.mark.slow
def test_two_process_fairhuman_step_equals_one_process_on_the_global_batch(tmp_path: Path) -> None:
    run_gloo_workers(WORKER, tmp_path, world=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    helpers: dict = {}
    exec(SETUP, helpers)  # the same text the workers ran, here in one process on the whole batch
    harness = helpers["TrainingHarness"](
        helpers["HarnessConfig"](checkpoint_dir=tmp_path / "single", cpu=True, progress=False)
    )
    for name in WEIGHTINGS:
        weights, grads = helpers["step"](harness, helpers["batch"](), name)
        for rank in ranks:
            rank_weights, rank_grads = rank[name]
            torch.testing.assert_close(rank_weights, weights, rtol=1e-5, atol=1e-7, msg=name)
            for got, want in zip(rank_grads, grads, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7, msg=name)
