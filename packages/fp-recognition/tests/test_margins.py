import math

import pytest
import torch

from fp_recognition.margins import (
    AdaFaceMargin,
    ArcFaceMargin,
    CombinedMargin,
    CosFaceMargin,
    NormalisedLinear,
)


def _cos(*rows):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=True)


def _grad_of_sum(margin, cos, labels, norms=None):
    logits = margin(cos, labels, norms)
    (grad,) = torch.autograd.grad(logits.sum(), cos)
    return logits.detach(), grad


def test_arcface_logits_and_gradients_by_hand():
    s, m = 64.0, 0.5
    cos = _cos([0.5, 0.1, -0.2], [0.3, -0.95, 0.0], [0.2, 0.4, 0.6])
    labels = torch.tensor([0, 1, -1])
    logits, grad = _grad_of_sum(ArcFaceMargin(s=s, m=m), cos, labels)
    # row 0: theta + m < pi -> cos(acos(0.5) + 0.5)
    assert logits[0, 0].item() == pytest.approx(s * math.cos(math.acos(0.5) + m), abs=1e-9)
    d0 = s * (math.cos(m) + math.sin(m) * 0.5 / math.sqrt(1 - 0.25))
    assert grad[0, 0].item() == pytest.approx(d0, abs=1e-9)
    # row 1: cos = -0.95 <= cos(pi - 0.5) = -0.8776 -> fallback cos - m sin(m), gradient s
    assert math.cos(math.pi - m) > -0.95
    assert logits[1, 1].item() == pytest.approx(s * (-0.95 - m * math.sin(m)), abs=1e-9)
    assert grad[1, 1].item() == pytest.approx(s)
    # non-targets and the -1 row: only scaled
    assert logits[0, 1].item() == pytest.approx(s * 0.1)
    assert torch.allclose(logits[2], s * torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64))
    mask = torch.ones_like(grad, dtype=torch.bool)
    mask[0, 0] = mask[1, 1] = False
    assert torch.allclose(grad[mask], torch.full_like(grad[mask], s))


def test_arcface_fallback_boundary_and_easy_margin():
    m = 0.5
    th = math.cos(math.pi - m)
    arc = ArcFaceMargin(s=1.0, m=m)
    lab = torch.tensor([0])
    above = arc(torch.tensor([[th + 1e-9]], dtype=torch.float64), lab).item()
    below = arc(torch.tensor([[th - 1e-9]], dtype=torch.float64), lab).item()
    assert above == pytest.approx(-1.0, abs=1e-6)  # cos(pi)
    assert below == pytest.approx(-math.cos(m) - m * math.sin(m), abs=1e-6)  # the fallback's jump
    easy = ArcFaceMargin(s=2.0, m=m, easy_margin=True)
    assert easy(torch.tensor([[-0.3]], dtype=torch.float64), lab).item() == pytest.approx(-0.6)
    assert easy(torch.tensor([[0.3]], dtype=torch.float64), lab).item() == pytest.approx(
        2 * math.cos(math.acos(0.3) + m)
    )


def test_cosface_by_hand():
    s, m = 64.0, 0.4
    cos = _cos([0.5, 0.1], [0.3, -0.2])
    logits, grad = _grad_of_sum(CosFaceMargin(s=s, m=m), cos, torch.tensor([1, -1]))
    expected = torch.tensor([[0.5, 0.1 - m], [0.3, -0.2]], dtype=torch.float64) * s
    assert torch.allclose(logits, expected)
    assert torch.allclose(grad, torch.full_like(grad, s))


def test_combined_by_hand():
    s, m1, m2, m3 = 32.0, 0.9, 0.4, 0.15
    cos = _cos([0.6, 0.1], [0.3, -0.2])
    logits, grad = _grad_of_sum(CombinedMargin(s, m1, m2, m3), cos, torch.tensor([0, -1]))
    theta = math.acos(0.6)
    assert logits[0, 0].item() == pytest.approx(s * (math.cos(m1 * theta + m2) - m3), abs=1e-9)
    # d/dc cos(m1 acos(c) + m2) = sin(m1 theta + m2) * m1 / sqrt(1 - c^2)
    d = s * math.sin(m1 * theta + m2) * m1 / math.sqrt(1 - 0.36)
    assert grad[0, 0].item() == pytest.approx(d, rel=1e-6)
    assert torch.allclose(logits[1], s * torch.tensor([0.3, -0.2], dtype=torch.float64))
    assert grad[0, 1].item() == pytest.approx(s)


def test_combined_special_cases_match_arcface_and_cosface():
    cos = torch.tensor([[0.5, 0.2], [0.1, 0.7]], dtype=torch.float64)
    lab = torch.tensor([0, 1])
    assert torch.allclose(CombinedMargin(64, 1.0, 0.5, 0.0)(cos, lab), ArcFaceMargin(64, 0.5)(cos, lab))
    assert torch.allclose(CombinedMargin(64, 1.0, 0.0, 0.4)(cos, lab), CosFaceMargin(64, 0.4)(cos, lab))


def _adaface_expected(cos_t, norm, mean, std, m=0.4, h=0.333, s=64.0, eps=1e-3):
    scaler = min(max((norm - mean) / (std + eps) * h, -1.0), 1.0)
    theta = math.acos(min(max(cos_t, -1 + eps), 1 - eps))
    theta_m = min(max(theta - m * scaler, eps), math.pi - eps)
    return s * (math.cos(theta_m) - (m + m * scaler)), scaler


def test_adaface_ema_sequence_by_hand():
    alpha = 0.01
    head = AdaFaceMargin(t_alpha=alpha).double().train()
    batches = [[10.0, 20.0, 30.0], [5.0, 5.0, 80.0], [0.0001, 150.0, 40.0]]
    mean, std = 20.0, 100.0
    for norms in batches:
        safe = [min(max(n, 0.001), 100.0) for n in norms]
        mu = sum(safe) / 3
        sd = math.sqrt(sum((x - mu) ** 2 for x in safe) / 2)  # unbiased
        mean = alpha * mu + (1 - alpha) * mean
        std = alpha * sd + (1 - alpha) * std
        cos = torch.tensor([[0.5, 0.1], [0.2, 0.7], [-0.3, 0.4]], dtype=torch.float64)
        logits = head(cos, torch.tensor([0, 1, -1]), torch.tensor(norms, dtype=torch.float64))
        assert head.batch_mean.item() == pytest.approx(mean, rel=1e-12)
        assert head.batch_std.item() == pytest.approx(std, rel=1e-12)
        exp0, _ = _adaface_expected(0.5, safe[0], mean, std)
        exp1, _ = _adaface_expected(0.7, safe[1], mean, std)
        assert logits[0, 0].item() == pytest.approx(exp0, abs=1e-9)
        assert logits[1, 1].item() == pytest.approx(exp1, abs=1e-9)
        assert torch.allclose(logits[2], 64 * cos[2])  # label -1: only scaled
        assert logits[0, 1].item() == pytest.approx(64 * 0.1)


def test_adaface_eval_mode_keeps_statistics_and_gradient():
    head = AdaFaceMargin().double().eval()
    cos = _cos([0.5, 0.1])
    norms = torch.tensor([25.0], dtype=torch.float64, requires_grad=True)
    logits = head(cos, torch.tensor([0]), norms)
    assert head.batch_mean.item() == 20.0 and head.batch_std.item() == 100.0
    exp, scaler = _adaface_expected(0.5, 25.0, 20.0, 100.0)
    assert logits[0, 0].item() == pytest.approx(exp, abs=1e-9)
    g_cos, g_norm = torch.autograd.grad(logits[0, 0], (cos, norms), allow_unused=True)
    theta = math.acos(0.5)
    d = 64 * math.sin(theta - 0.4 * scaler) / math.sqrt(1 - 0.25)
    assert g_cos[0, 0].item() == pytest.approx(d, rel=1e-9)
    assert g_norm is None or g_norm.abs().sum() == 0  # the norm is detached
    assert set(dict(head.named_buffers())) == {"batch_mean", "batch_std"}


def test_adaface_needs_norms():
    with pytest.raises(ValueError, match="norms"):
        AdaFaceMargin()(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_all_minus_one_rows_untouched():
    cos = torch.rand(4, 5, dtype=torch.float64) * 2 - 1
    labels = torch.full((4,), -1)
    for head in (ArcFaceMargin(), CosFaceMargin(), CombinedMargin(64, 1.2, 0.3, 0.1), AdaFaceMargin()):
        assert torch.allclose(head(cos, labels, torch.ones(4, dtype=torch.float64) * 20), 64 * cos)


def test_bad_labels():
    with pytest.raises(ValueError, match=r"-1 or in \[0, 3\)"):
        ArcFaceMargin()(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integers"):
        CosFaceMargin()(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))


def test_normalised_linear_gives_cosines():
    torch.manual_seed(0)
    head = NormalisedLinear(8, 5)
    x = torch.randn(3, 8) * 7
    cos = head(x)
    w = head.weight.detach()
    expected = (x / x.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).T
    assert cos.shape == (3, 5)
    assert torch.allclose(cos, expected, atol=1e-6)
    loss = torch.nn.functional.cross_entropy(
        ArcFaceMargin()(cos, torch.tensor([0, 1, 2])), torch.tensor([0, 1, 2])
    )
    loss.backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize(
    "make_head",
    [
        lambda: ArcFaceMargin(s=16, m=0.3),
        lambda: CosFaceMargin(s=16, m=0.2),
        lambda: CombinedMargin(16, 1.0, 0.2, 0.1),
        lambda: AdaFaceMargin(s=16, m=0.3),
    ],
)
def test_a_few_steps_separate_a_toy_problem(make_head):
    torch.manual_seed(0)
    features = torch.nn.Parameter(torch.randn(12, 4))
    classifier = NormalisedLinear(4, 3)
    head = make_head().train()
    labels = torch.arange(12) % 3
    params = [features, classifier.weight]
    losses = []
    for _ in range(30):
        logits = head(classifier(features), labels, features.norm(dim=1))
        loss = torch.nn.functional.cross_entropy(logits, labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():  # plain SGD (torch.optim's first import costs seconds)
            for p, g in zip(params, grads):
                p -= 0.1 * g
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
