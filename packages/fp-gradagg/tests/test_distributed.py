"""Data parallelism: MPD on the global batch's per-objective gradients, not the mean of per-rank Gramians.

The slow test starts two gloo processes (torch.multiprocessing spawn) that each hold half of a batch, and
checks that MPD's weights and the DDP-averaged ``.grad`` equal the single-process values on the whole batch,
with and without a differentiable collective in the loss (the fast path then falls back to naive), and that
the former mean-of-Gramians rule does not; loss weightings (SI, UW) also match the whole batch. Run it with
``uv run pytest -m slow packages/fp-gradagg/tests/test_distributed.py``. The fast test checks the same
identity in one process.
"""

from __future__ import annotations

import importlib
import socket
import sys
import textwrap

import pytest
import torch

from fp_gradagg import MPD, ScaleInvariant, UncertaintyWeighting, backward
from fp_gradagg.gradients import gramian_from_gradients, objective_gradients, stack_losses

WORLD = 2
TOL = {"rtol": 1e-5, "atol": 1e-8}

# Shared by the workers and the single-process references (the workers import this same text as a module).
SETUP = textwrap.dedent(
    """
    import torch
    from torch import nn

    BATCH = 12

    def make_data():
        generator = torch.Generator().manual_seed(7)
        inputs = torch.randn(BATCH, 4, generator=generator, dtype=torch.float64)
        targets = torch.randn(BATCH, 3, generator=generator, dtype=torch.float64)
        targets[: BATCH // 2] += 2.0  # the two halves differ, so per-rank gradients differ
        return inputs, targets

    def shard(tensor, rank, world):
        size = tensor.shape[0] // world
        return tensor[rank * size : (rank + 1) * size]

    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()

    def make_losses(out, targets, center=None):
        # Means of per-sample losses of three objectives pulling output 0 in different directions. With
        # `center`, the third is centred by a global-batch statistic: center(sum over the local samples)
        # returns the sum over the whole batch.
        third = out[:, 2] - out[:, 0]
        if center is not None:
            third = third - center(third.sum()) / BATCH
        return [
            (out[:, 0] - targets[:, 0]).pow(2).mean(),
            (out[:, 1] + out[:, 0] - targets[:, 1]).pow(2).mean(),
            (third - targets[:, 2]).pow(2).mean(),
        ]
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import os
    import warnings

    import torch.distributed as dist
    from torch.distributed.nn.functional import all_reduce

    from fp_gradagg import MPD, FastPathFallbackWarning, ScaleInvariant, UncertaintyWeighting, backward

    def run(rank, world, port, out_dir):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        try:
            torch.set_num_threads(1)
            model = nn.parallel.DistributedDataParallel(make_model())
            inputs, targets = (shard(t, rank, world) for t in make_data())
            record = {}
            uw = UncertaintyWeighting(3).double()
            for name, center, mode, method in [
                ("global", None, "global", MPD()),
                ("gramian_mean", None, "gramian_mean", MPD()),
                ("collective", lambda s: all_reduce(s), "global", MPD()),
                ("si", None, "global", ScaleInvariant()),
                ("uw", None, "global", uw),
            ]:
                model.zero_grad(set_to_none=True)
                losses = make_losses(model(inputs), targets, center)
                params = [*model.parameters(), *([uw.log_variances] if method is uw else [])]
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = backward(losses, params, method, path="fast", distributed=mode)
                record[name] = {
                    "weights": result.weights,
                    "grad": torch.cat([p.grad.flatten() for p in model.parameters()]),
                    "path": result.path,
                    "fell_back": any(issubclass(w.category, FastPathFallbackWarning) for w in caught),
                    "uw_grad": None if method is not uw else uw.log_variances.grad.clone(),
                }
            torch.save(record, os.path.join(out_dir, f"rank{rank}.pt"))
        finally:
            dist.destroy_process_group()
    """
)


def _helpers() -> dict:
    namespace: dict = {}
    exec(SETUP, namespace)
    return namespace


def _whole_batch_reference(center: bool, method=None, extra=()) -> tuple[torch.Tensor, torch.Tensor]:
    helpers = _helpers()
    model = helpers["make_model"]()
    inputs, targets = helpers["make_data"]()
    losses = helpers["make_losses"](model(inputs), targets, (lambda s: s) if center else None)
    params = [*model.parameters(), *extra]
    result = backward(losses, params, MPD() if method is None else method, path="naive")
    return result.weights, torch.cat([p.grad.flatten() for p in model.parameters()])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_equal_the_whole_batch_and_the_gramian_mean_does_not(tmp_path, monkeypatch):
    (tmp_path / "gradagg_ddp_worker.py").write_text(WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawn children inherit sys.path and import the worker
    worker = importlib.import_module("gradagg_ddp_worker")
    try:
        torch.multiprocessing.spawn(worker.run, args=(WORLD, _free_port(), str(tmp_path)), nprocs=WORLD)
    finally:
        sys.modules.pop("gradagg_ddp_worker", None)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    weights, grad = _whole_batch_reference(center=False)
    for rank in ranks:
        torch.testing.assert_close(rank["global"]["weights"], weights, **TOL)
        torch.testing.assert_close(rank["global"]["grad"], grad, **TOL)  # after DDP's averaging
        assert rank["global"]["path"] == "fast" and not rank["global"]["fell_back"]
    torch.testing.assert_close(ranks[0]["global"]["grad"], ranks[1]["global"]["grad"], rtol=0, atol=0)

    # The former rule (mean of per-rank Gramians) gives other weights: this test tells them apart.
    old = ranks[0]["gramian_mean"]["weights"]
    assert float((old - weights).abs().max()) > 1e-2 * float(weights.abs().max())
    assert float((ranks[0]["gramian_mean"]["grad"] - grad).norm()) > 1e-3 * float(grad.norm())

    # A differentiable all_reduce in the loss: vmap cannot batch it, so the naive path is used (warned).
    weights, grad = _whole_batch_reference(center=True)
    for rank in ranks:
        torch.testing.assert_close(rank["collective"]["weights"], weights, **TOL)
        torch.testing.assert_close(rank["collective"]["grad"], grad, **TOL)
        assert rank["collective"]["path"] == "naive" and rank["collective"]["fell_back"]

    # Loss weightings: weights from the rank-averaged losses (SI: 1 / l̄), UW's own gradient averaged.
    weights, grad = _whole_batch_reference(center=False, method=ScaleInvariant())
    uw = UncertaintyWeighting(3).double()
    _, uw_grad = _whole_batch_reference(center=False, method=uw, extra=[uw.log_variances])
    for rank in ranks:
        torch.testing.assert_close(rank["si"]["weights"], weights, **TOL)
        torch.testing.assert_close(rank["si"]["grad"], grad, **TOL)
        torch.testing.assert_close(rank["uw"]["grad"], uw_grad, **TOL)
        torch.testing.assert_close(rank["uw"]["uw_grad"], uw.log_variances.grad, **TOL)


def test_averaged_per_rank_gradients_give_the_whole_batch_gramian_and_mean_gramians_do_not():
    helpers = _helpers()
    model = helpers["make_model"]()
    params = list(model.parameters())
    inputs, targets = helpers["make_data"]()

    def gradients(x, y):
        return objective_gradients(stack_losses(helpers["make_losses"](model(x), y)), params, path="fast")

    whole = gramian_from_gradients(gradients(inputs, targets))
    shards = [
        gradients(helpers["shard"](inputs, r, WORLD), helpers["shard"](targets, r, WORLD))
        for r in range(WORLD)
    ]
    averaged = [sum(shard[j] for shard in shards) / WORLD for j in range(len(params))]  # what all-reduce does
    torch.testing.assert_close(gramian_from_gradients(averaged), whole)
    torch.testing.assert_close(MPD()(gramian_from_gradients(averaged)), MPD()(whole))
    mean_of_gramians = sum(gramian_from_gradients(shard) for shard in shards) / WORLD
    assert float((MPD()(mean_of_gramians) - MPD()(whole)).abs().max()) > 1e-2


def test_single_process_group_leaves_backward_unchanged(tmp_path):
    import torch.distributed as dist

    helpers = _helpers()
    model = helpers["make_model"]()
    inputs, targets = helpers["make_data"]()
    reference = backward(helpers["make_losses"](model(inputs), targets), model.parameters(), MPD())
    model.zero_grad(set_to_none=True)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        result = backward(helpers["make_losses"](model(inputs), targets), model.parameters(), MPD())
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(result.weights, reference.weights, rtol=0, atol=0)
    assert result.path == "fast"
    with pytest.raises(ValueError, match="'global', 'gramian_mean' or 'local'"):
        backward(helpers["make_losses"](model(inputs), targets), model.parameters(), MPD(), distributed="all")
