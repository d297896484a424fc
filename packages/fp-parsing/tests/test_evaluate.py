"""Evaluation: runs on the requested device, batch size does not change the numbers, metric keys."""

from __future__ import annotations

import pytest
import torch
from toy_dataset import ToyFaces  # noqa: I001  (test helper beside this file)

from fp_metrics import confusion_matrix
from fp_metrics.segmentation import foreground_micro_f1
from fp_parsing.evaluate import evaluate_parser, predict, resolve_device


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))


def test_resolve_device_defaults_to_cuda_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == expected and resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_metrics_are_the_documented_definitions_and_batch_size_free() -> None:
    data = ToyFaces(n=6, size=16)
    model = _model()
    kwargs = {
        "perturbations": ["blur"],
        "severities": [0.5],
        "fairness_attributes": ["Male"],
        "progress": False,
    }
    small = evaluate_parser(model, data, batch_size=2, device="cpu", **kwargs)
    large = evaluate_parser(model, data, batch_size=6, device="cpu", **kwargs)
    assert torch.equal(small.scores.confusion, large.scores.confusion)
    metrics = small.to_metrics()
    images = torch.stack([item["image"] for item in data.items])
    masks = torch.stack([item["mask"] for item in data.items])
    cm = confusion_matrix(predict(model, images), masks, 3)
    assert torch.equal(small.scores.confusion, cm)
    assert metrics["dice"] == pytest.approx(float(torch.nanmean(small.scores.dice)))
    assert metrics["foreground_f1"] == pytest.approx(float(foreground_micro_f1(cm)))
    assert metrics["foreground_mean_f1"] == pytest.approx(float(torch.nanmean(small.scores.dice[1:])))
    assert metrics["dice"] != metrics["foreground_f1"]
    assert {"robustness/blur/miou", "robustness/drop", "fairness/Male/variance"} <= set(metrics)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_evaluation_matches_the_cpu_on_clean_inputs() -> None:
    data = ToyFaces(n=4, size=16)
    kwargs = {"perturbations": ["blur"], "severities": [0.5], "progress": False, "batch_size": 2}
    cpu = evaluate_parser(_model(), data, device="cpu", **kwargs)
    model = _model()
    gpu = evaluate_parser(model, data, device="cuda", **kwargs)
    assert next(model.parameters()).device.type == "cuda"
    # clean predictions can differ only where two logits tie within float error
    agreement = (cpu.scores.confusion.diagonal().sum() - gpu.scores.confusion.cpu().diagonal().sum()).abs()
    assert int(agreement) <= 2
    assert gpu.scores.miou == pytest.approx(cpu.scores.miou, abs=0.02)
