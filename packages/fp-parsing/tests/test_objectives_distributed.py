"""Two gloo ranks on CPU: every objective and its gradient equal those of one process on the global batch.

Each rank holds half of an 8-image batch; the terms (summed over the ranks by all_reduce) must equal the
single-process terms of the whole batch on every rank, the per-term gradients averaged over the ranks must
equal the single-process gradients, and DDP's averaged gradient of the weighted sum must equal the
single-process gradient of the weighted sum. The workers are plain subprocesses running the text below
(picklable under pytest's importlib mode, unlike a function of this module handed to ``mp.spawn``).

Slow (two processes importing torch; about 80 s on a busy 2-core machine):
``uv run pytest -m slow packages/fp-parsing/tests/test_objectives_distributed.py``. The fast stand-in,
``test_objectives_semantics.py::test_statistics_of_two_shards_sum_to_those_of_the_whole_batch``, adds two
shards' statistics in one process, which is what the all_reduce does.
"""

from __future__ import annotations

import textwrap

import pytest
import torch
from gloo_workers import run_gloo_workers  # noqa: I001  (test helper beside this file)

WORLD = 2

SETUP = textwrap.dedent(
    """
    import torch
    from torch import nn
    from fp_parsing.distributed import BatchSlice
    from fp_parsing.losses import ParsingObjectives, combine

    C = 5
    CONFIGS = [("output", "variance"), ("output_literal", "shortfall"), ("input", "variance")]
    NAMES = ("accuracy", "robustness", "fairness")
    WEIGHTS = (0.4, 0.3, 0.3)

    def make_data():
        g = torch.Generator().manual_seed(0)
        masks = torch.randint(0, C - 1, (8, 8, 8), generator=g)  # class C - 1 absent everywhere
        images = torch.rand(8, 3, 8, 8, generator=g)
        images[:, 0] = 0.2 * masks
        groups = torch.stack([torch.arange(8) % 2, torch.randint(-1, 3, (8,), generator=g)], dim=1)
        return images, masks, groups

    def make_model():
        torch.manual_seed(1)
        return nn.Conv2d(3, C, 1)

    def run(model, images, masks, groups, mode, fairness, **kwargs):
        objectives = ParsingObjectives(
            num_classes=C, robustness_mode=mode, fairness=fairness, num_groups=[2, 3], input_share=0.5,
            **kwargs,
        )
        return objectives(model, images, masks, groups, torch.Generator().manual_seed(7), **kwargs_call(kwargs))

    def kwargs_call(kwargs):
        return {} if kwargs.get("distributed") is not False else {"batch_slice": BatchSlice(0, 8, 4)}

    def term_gradients(model, terms):
        return {
            name: [g.clone() for g in torch.autograd.grad(terms[name], list(model.parameters()), retain_graph=True)]
            for name in NAMES
        }
    """
)

WORKER = SETUP + textwrap.dedent(
    """
    import os, sys
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", rank=rank, world_size=int(os.environ["WORLD_SIZE"]))
    try:
        images, masks, groups = make_data()
        part = slice(4 * rank, 4 * rank + 4)
        out = {}
        for mode, fairness in CONFIGS:
            model = make_model()
            terms = run(model, images[part], masks[part], groups[part], mode, fairness)
            grads = term_gradients(model, terms)
            ddp = nn.parallel.DistributedDataParallel(make_model())
            ddp_terms = run(ddp, images[part], masks[part], groups[part], mode, fairness)
            combine(ddp_terms, WEIGHTS).backward()
            out[mode] = {
                "values": {n: float(terms[n].detach()) for n in NAMES},
                "grads": grads,
                "ddp": [p.grad.clone() for p in ddp.parameters()],
            }
        torch.save(out, os.path.join(sys.argv[1], f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_ranks_give_the_global_batch_objectives_and_gradients(tmp_path) -> None:
    run_gloo_workers(WORKER, tmp_path, world=WORLD, timeout=300)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    helpers: dict = {}
    exec(SETUP, helpers)  # the same text the workers ran
    images, masks, groups = helpers["make_data"]()
    for mode, fairness in helpers["CONFIGS"]:
        model = helpers["make_model"]()
        terms = helpers["run"](model, images, masks, groups, mode, fairness, distributed=False)
        grads = helpers["term_gradients"](model, terms)
        for name in helpers["NAMES"]:
            expected = float(terms[name].detach())
            for rank in ranks:
                assert rank[mode]["values"][name] == pytest.approx(expected, abs=1e-5), (mode, name)
            for k, expected_grad in enumerate(grads[name]):
                mean = sum(rank[mode]["grads"][name][k] for rank in ranks) / WORLD
                torch.testing.assert_close(mean, expected_grad, atol=1e-5, rtol=1e-4, msg=f"{mode} {name}")
        model.zero_grad()
        helpers["combine"](terms, helpers["WEIGHTS"]).backward()
        for rank in ranks:  # DDP averages W x the local contributions: the global-batch gradient
            for got, param in zip(rank[mode]["ddp"], model.parameters(), strict=True):
                torch.testing.assert_close(got, param.grad, atol=1e-5, rtol=1e-4, msg=f"{mode} ddp")
