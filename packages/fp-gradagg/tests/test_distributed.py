"""Two gloo ranks under DistributedDataParallel: identical weights, and DDP averages the written direction.

Slow (starts two processes): ``uv run pytest -m slow packages/fp-gradagg/tests/test_distributed.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from fp_gradagg import MPD

WORLD = 2

# Shared by the workers and the single-process reference below (the workers exec this same text).
SETUP = textwrap.dedent(
    """
    import torch
    from torch import nn

    def make_data(rank):
        generator = torch.Generator().manual_seed(100 + rank)
        inputs = torch.randn(6, 4, generator=generator, dtype=torch.float64)
        return inputs, torch.randn(6, 3, generator=generator, dtype=torch.float64)

    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()

    def make_losses(model, inputs, targets):
        out = model(inputs)
        return [(out[:, k] - targets[:, k]).pow(2).mean() for k in range(3)]
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import os, sys
    import torch.distributed as dist
    from fp_gradagg import MPD, backward

    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", rank=rank, world_size=int(os.environ["WORLD_SIZE"]))
    try:
        model = nn.parallel.DistributedDataParallel(make_model())
        result = backward(make_losses(model, *make_data(rank)), model.parameters(), MPD())
        grads = [p.grad for p in model.parameters()]
        torch.save({"weights": result.weights, "gramian": result.gramian, "grads": grads},
                   os.path.join(sys.argv[1], f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ddp_ranks_agree_on_weights_and_direction(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(_free_port())
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            env=dict(
                os.environ, RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=port
            ),
        )
        for rank in range(WORLD)
    ]
    assert [worker.wait(timeout=120) for worker in workers] == [0] * WORLD
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    torch.testing.assert_close(ranks[0]["weights"], ranks[1]["weights"], rtol=0, atol=0)

    # Reference in this process: the mean of the ranks' Gramians, MPD on it, and DDP's mean of Σ_i w_i g_i.
    helpers: dict = {}
    exec(SETUP, helpers)  # the same helper text the workers run
    local = []
    for rank in range(WORLD):
        model: nn.Module = helpers["make_model"]()
        losses = helpers["make_losses"](model, *helpers["make_data"](rank))
        rows = [
            torch.cat(
                [g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)]
            )
            for loss in losses
        ]
        local.append(torch.stack(rows))
    mean_gramian = sum(j @ j.T for j in local) / WORLD
    torch.testing.assert_close(ranks[0]["gramian"], mean_gramian)
    weights = MPD()(mean_gramian)
    torch.testing.assert_close(ranks[0]["weights"], weights)
    direction = sum(j.T @ weights for j in local) / WORLD
    for rank in ranks:
        torch.testing.assert_close(torch.cat([g.flatten() for g in rank["grads"]]), direction)
