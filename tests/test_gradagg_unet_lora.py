"""fp-gradagg on the benchmark's case (b): a tiny diffusers UNet2DConditionModel with peft LoRA adapters and
three masked-MSE objectives (FairHuman's global / face / hand losses) sharing one forward.

The batched (vmap) backward of the fast path must go through diffusers' attention and peft's LoRA layers and
give the same per-objective gradients, Gramian, MPD weights and written direction as K plain backward passes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from fp_gradagg import MPD, backward
from fp_gradagg.gradients import gramian_from_gradients, objective_gradients, stack_losses

pytest.importorskip("diffusers")
pytest.importorskip("peft")

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "gradagg_step.py"


def _build_case():
    spec = importlib.util.spec_from_file_location("gradagg_step_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_unet_lora(size=8, batch=2)


@pytest.fixture(scope="module")
def case():
    return _build_case()


def test_only_lora_adapters_train(case) -> None:
    names = [name for name, p in case.model.named_parameters() if p.requires_grad]
    assert names, "no trainable parameter"
    assert all("lora_" in name for name in names)


def test_fast_and_naive_per_objective_gradients_agree(case) -> None:
    per_path = {}
    for path in ("naive", "fast"):
        stacked = stack_losses(case.losses())
        per_path[path] = objective_gradients(stacked, case.params, path=path)
    reached = 0
    for naive, fast in zip(per_path["naive"], per_path["fast"]):
        assert (naive is None) == (fast is None)
        if naive is None:
            continue
        reached += 1
        assert fast.shape == naive.shape and fast.shape[0] == 3
        scale = naive.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(fast / scale, naive / scale, atol=2e-5, rtol=0)
    assert reached == len(case.params)  # every adapter is reached by the losses
    gram_naive = gramian_from_gradients(per_path["naive"])
    gram_fast = gramian_from_gradients(per_path["fast"])
    torch.testing.assert_close(gram_fast, gram_naive, rtol=1e-4, atol=0)
    # three genuinely different objectives: the Gramian is full rank, not a multiple of one gradient
    assert torch.linalg.matrix_rank(gram_naive, rtol=1e-6) == 3


def test_both_paths_write_the_same_mpd_direction_at_the_fixed_point(case) -> None:
    written = {}
    for path in ("naive", "fast"):
        for p in case.params:
            p.grad = None
        result = backward(case.losses(), case.params, MPD(), path=path)
        assert result.residual <= 1e-8
        assert bool((result.weights > 0).all())
        gramian = result.gramian.numpy()
        weights = result.weights.double().numpy()
        # (G Gᵀ) w = w^(-1/2): each objective's first-order progress matches its weight
        np.testing.assert_allclose(gramian @ weights, weights**-0.5, rtol=1e-5)
        written[path] = [p.grad.detach().clone() for p in case.params]
    for naive, fast in zip(written["naive"], written["fast"]):
        scale = naive.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(fast / scale, naive / scale, atol=5e-5, rtol=0)
