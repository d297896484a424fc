import math

import numpy as np
import pytest
import torch
from torch import nn

from fp_metrics.verification import verify_pairs
from fp_recognition.backbones import build_backbone
from fp_recognition.data import load_bin, load_rfw, write_bin
from fp_recognition.evaluate import (
    ImageEmbeddings,
    embed_images,
    evaluate_bin,
    evaluate_bins,
    evaluate_pairs,
    evaluate_rfw,
    fairness_summary,
    tar_resolvable,
)


class MeanColour(nn.Module):
    """A flip-invariant 'recogniser': the mean colour of each half of the image rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = x.chunk(2, dim=2)
        return torch.cat([top.mean((2, 3)), bottom.mean((2, 3))], dim=1) + 2.0


class Asymmetric(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, :, 0]  # first image column: changes under a flip


def _pairs_set(make_jpegs, n_pairs, seed=0):
    """Genuine pairs are the same JPEG twice, impostor pairs two different images."""
    jpegs = make_jpegs(2 * n_pairs, seed=seed)
    images, issame = [], []
    for p in range(n_pairs):
        same = p % 2 == 0
        images += [jpegs[2 * p], jpegs[2 * p] if same else jpegs[2 * p + 1]]
        issame.append(same)
    return images, issame


def test_embed_images_flip_and_mode():
    x = torch.rand(5, 3, 8, 8)
    model = Asymmetric().train()
    emb = embed_images(model, x, batch_size=2)
    assert emb.plain.shape == (5, 8) and emb.plain.dtype == np.float64
    assert np.allclose(emb.plain, x[:, 0, :, 0].double().numpy())
    assert np.allclose(emb.flipped, x[:, 0, :, -1].double().numpy())
    assert np.allclose(emb.fused, emb.plain + emb.flipped)
    norms = np.linalg.norm(np.concatenate([emb.plain, emb.flipped]), axis=1)
    assert emb.xnorm == pytest.approx(norms.mean())
    assert model.training  # restored
    assert embed_images(model, list(x), flip=False).flipped is None


def test_perfect_model_on_a_bin_set(tmp_path, make_jpegs):
    images, issame = _pairs_set(make_jpegs, 20)
    vb = load_bin(write_bin(tmp_path / "lfw.bin", images, issame))
    res = evaluate_bin(MeanColour(), vb, image_size=16)
    assert res.accuracy == 1.0 and res.num_pairs == 20 and res.name == "lfw"
    assert math.isnan(res.tar)  # 10 impostor pairs cannot resolve FAR 1e-3


def test_evaluate_pairs_matches_verify_pairs_and_tar_rule():
    rng = np.random.default_rng(0)
    n = 2400
    plain, flipped = rng.normal(size=(2 * n, 6)), rng.normal(size=(2 * n, 6))
    issame = rng.random(n) < 0.5
    first, second = np.arange(n) * 2, np.arange(n) * 2 + 1
    plain[second[issame]] = plain[first[issame]] + 0.3 * rng.normal(size=(int(issame.sum()), 6))
    res = evaluate_pairs(ImageEmbeddings(plain, flipped), first, second, issame)
    ref = verify_pairs(
        plain[first], plain[second], issame, emb1_flip=flipped[first], emb2_flip=flipped[second]
    )
    assert res.accuracy == ref.accuracy and np.array_equal(res.fold_accuracies, ref.fold_accuracies)
    assert (~issame).sum() >= 1000 and res.tar == ref.tar and 0 <= res.tar <= 1
    assert tar_resolvable(1000, 1e-3) and not tar_resolvable(999, 1e-3)


def test_random_backbone_end_to_end_on_bin_sets(tmp_path, make_jpegs):
    sets = {}
    for k, name in enumerate(("lfw", "cfp_fp")):
        images, issame = _pairs_set(make_jpegs, 10, seed=k)
        sets[name] = load_bin(write_bin(tmp_path / f"{name}.bin", images, issame))
    torch.manual_seed(0)
    model = build_backbone("iresnet18", input_size=32, embedding_size=16)
    report = evaluate_bins(model, sets, image_size=32, batch_size=8)
    assert set(report.results) == {"lfw", "cfp_fp"}
    for r in report.results.values():
        assert 0.0 <= r.accuracy <= 1.0 and r.details.fold_accuracies.shape == (10,)
        assert r.xnorm > 0
    assert report.mean_accuracy == pytest.approx(np.mean([r.accuracy for r in report.results.values()]))


def test_fairness_summary_by_hand():
    s = fairness_summary({"African": 0.90, "Asian": 0.92, "Caucasian": 0.96, "Indian": 0.94})
    assert s.mean == pytest.approx(0.93)
    assert s.std == pytest.approx(math.sqrt((0.03**2 + 0.01**2 + 0.03**2 + 0.01**2) / 4))
    assert s.gap == pytest.approx(0.06)
    assert s.disparate_impact == pytest.approx(0.90 / 0.96)
    assert (s.worst_group, s.best_group) == ("African", "Caucasian")
    with pytest.raises(ValueError, match="finite"):
        fairness_summary({"a": float("nan")})


def test_rfw_end_to_end(tmp_path, write_rfw_group):
    for g, group in enumerate(("African", "Asian")):
        names = {f"m.{g}{k}": [1, 2] for k in range(10)}
        lines = []
        for k in range(10):
            if k % 2 == 0:
                lines.append(f"m.{g}{k}\t1\t2")
            else:
                lines.append(f"m.{g}{k}\t1\tm.{g}{k - 1}\t2")
        write_rfw_group(tmp_path, group, names, lines)
    groups = load_rfw(tmp_path, ("African", "Asian"))
    res = evaluate_rfw(MeanColour(), groups, image_size=16)
    for name in ("African", "Asian"):
        assert 0 <= res.summary.accuracies[name] <= 1
        assert res.summary.accuracies[name] == pytest.approx(res.per_group[name].accuracy)
    assert 0 <= res.summary.disparate_impact <= 1
    torch.manual_seed(0)
    backbone = build_backbone("ir18", input_size=32, embedding_size=8)
    res = evaluate_rfw(backbone, groups, image_size=32, batch_size=16)
    assert all(0 <= a <= 1 for a in res.summary.accuracies.values())
