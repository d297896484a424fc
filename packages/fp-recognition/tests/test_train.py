"""Recognition training: resume equals uninterrupted, backbone-only loading keeps the head fresh, the LR
schedules, and a tiny run that learns to verify coloured blobs well above chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from fp_core.training import list_checkpoints
from fp_recognition.evaluate import embed_images, evaluate_pairs
from fp_recognition.train import (
    ConfigError,
    RecognitionTrainConfig,
    build_models,
    load_backbone,
    lr_factor,
    read_backbone_config,
    train_recognizer,
)


class Blobs(Dataset):
    """``K`` identities, each a blob of its own colour at its own place on a grey background, with noise.

    ``dataset[i] -> (image [3, S, S] in [-1, 1], label)``; ``variant`` seeds the noise (held-out images).
    """

    def __init__(self, identities: int, per_identity: int, size: int = 16, variant: int = 0) -> None:
        rng = np.random.default_rng([identities, variant])
        colours = np.random.default_rng(7).uniform(0.0, 1.0, size=(identities, 3))
        centres = np.random.default_rng(8).uniform(0.3, 0.7, size=(identities, 2)) * size
        yy, xx = np.mgrid[0:size, 0:size]
        images, labels = [], []
        for k in range(identities):
            for _ in range(per_identity):
                cy, cx = centres[k] + rng.normal(0, 0.6, 2)
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.18 * size) ** 2))
                img = (
                    0.5
                    + blob[None] * (colours[k][:, None, None] - 0.5)
                    + rng.normal(0, 0.08, (3, size, size))
                )
                images.append(np.clip(img, 0, 1) * 2 - 1)
                labels.append(k)
        self.images = torch.tensor(np.stack(images), dtype=torch.float32)
        self.labels = labels
        self.num_classes = identities

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.labels[index]


def _config(**overrides) -> RecognitionTrainConfig:
    values = dict(
        backbone="iresnet18",
        input_size=16,
        embedding_size=16,
        width=4,
        epochs=2,
        batch_size=4,
        lr=0.05,
        cpu=True,
        scale=16.0,
    )
    values.update(overrides)
    return RecognitionTrainConfig.from_dict(values)


class Crash(RuntimeError):
    pass


def _crash_at(step: int):
    def log(metrics, s):
        if "train/loss" in metrics and s == step:
            raise Crash

    return log


@pytest.mark.parametrize("loss", ["arcface", "adaface"])
def test_resume_equals_uninterrupted(tmp_path: Path, loss: str) -> None:
    data = Blobs(3, 4)  # 12 images, 3 steps per epoch
    config = _config(loss=loss, checkpoint_every=2, warmup_epochs=0.5, milestones=[1.0])
    reference = train_recognizer(config, data, tmp_path / "a", checkpoint_dir=tmp_path / "ca", progress=False)
    with pytest.raises(Crash):
        train_recognizer(
            config, data, tmp_path / "b", checkpoint_dir=tmp_path / "cb", progress=False, log=_crash_at(4)
        )
    assert [p.name for p in list_checkpoints(tmp_path / "cb")][-1] == "checkpoint-00000004"  # mid-epoch 2
    resumed = train_recognizer(config, data, tmp_path / "b", checkpoint_dir=tmp_path / "cb", progress=False)
    assert resumed.resumed_from_epoch == 1 and reference.resumed_from_epoch is None
    a, b = load_backbone(tmp_path / "a"), load_backbone(tmp_path / "b")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    assert [h["epoch/loss"] for h in resumed.history] == pytest.approx(
        [h["epoch/loss"] for h in reference.history], rel=1e-12
    )
    from safetensors.torch import load_file

    for name, tensor in load_file(str(tmp_path / "a" / "head.safetensors")).items():
        torch.testing.assert_close(
            tensor, load_file(str(tmp_path / "b" / "head.safetensors"))[name], rtol=0, atol=0
        )


def test_backbone_only_loading_leaves_the_head_fresh(tmp_path: Path) -> None:
    config = _config(epochs=1)
    train_recognizer(config, Blobs(3, 4), tmp_path / "P", checkpoint_dir=tmp_path / "cp", progress=False)
    saved = load_backbone(tmp_path / "P")
    backbone, head = build_models(config, 5, init_backbone=tmp_path / "P")
    for p, q in zip(saved.state_dict().values(), backbone.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    fresh_backbone, fresh_head = build_models(config, 5)
    torch.testing.assert_close(head.classifier.weight, fresh_head.classifier.weight, rtol=0, atol=0)
    assert head.num_classes == 5
    assert not torch.equal(next(fresh_backbone.parameters()), next(backbone.parameters()))

    result = train_recognizer(
        config,
        Blobs(5, 4),
        tmp_path / "T",
        checkpoint_dir=tmp_path / "ct",
        progress=False,
        init_backbone=tmp_path / "P",
    )
    assert result.num_classes == 5 and read_backbone_config(tmp_path / "T")["num_classes"] == 5
    with pytest.raises(ConfigError, match="other settings"):
        build_models(_config(embedding_size=8), 5, init_backbone=tmp_path / "P")


def test_learning_rate_schedules() -> None:
    multi = lr_factor(_config(epochs=4, warmup_epochs=1, milestones=[2, 3], gamma=0.1), steps_per_epoch=10)
    assert [multi(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert [multi(s) for s in (10, 19, 20, 30, 39)] == pytest.approx([1, 1, 0.1, 0.01, 0.01])
    poly = lr_factor(_config(epochs=2, schedule="poly", poly_power=2.0), steps_per_epoch=10)
    assert [poly(0), poly(10), poly(19)] == pytest.approx([1.0, 0.25, 0.0025])
    with pytest.raises(ConfigError, match="unknown key"):
        RecognitionTrainConfig.from_dict({"lossy": "arcface"})
    with pytest.raises(ConfigError, match="loss must be"):
        RecognitionTrainConfig.from_dict({"loss": "sphereface"})


@pytest.mark.parametrize("loss", ["arcface", "adaface"])
def test_a_tiny_run_verifies_blobs_above_chance(tmp_path: Path, loss: str) -> None:
    config = _config(
        loss=loss, epochs=6, batch_size=16, lr=0.1, width=8, embedding_size=32, augment={"enabled": False}
    )
    train_recognizer(config, Blobs(6, 16), tmp_path / "m", checkpoint_dir=tmp_path / "c", progress=False)
    held_out = Blobs(6, 10, variant=1)
    emb = embed_images(load_backbone(tmp_path / "m"), held_out.images, batch_size=64)
    rng = np.random.default_rng(0)
    labels = np.asarray(held_out.labels)
    first, second, same = [], [], []
    for p in range(200):
        i = int(rng.integers(len(labels)))
        pool = np.flatnonzero(labels == labels[i]) if p % 2 == 0 else np.flatnonzero(labels != labels[i])
        j = int(rng.choice(pool[pool != i]))
        first.append(i)
        second.append(j)
        same.append(p % 2 == 0)
    result = evaluate_pairs(emb, np.asarray(first), np.asarray(second), np.asarray(same))
    assert result.accuracy > 0.6, result.accuracy


@pytest.fixture()
def fresh_accelerator_state():
    """accelerate keeps one process-wide state whose precision cannot change; reset it around the test."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_bf16_autocast_trains_and_saves_float32_weights(tmp_path: Path, fresh_accelerator_state) -> None:
    result = train_recognizer(
        _config(mixed_precision="bf16", loss="adaface", epochs=1),
        Blobs(3, 4),
        tmp_path / "m",
        checkpoint_dir=tmp_path / "c",
        progress=False,
    )
    assert np.isfinite(result.history[0]["epoch/loss"])
    assert all(p.dtype == torch.float32 for p in load_backbone(tmp_path / "m").parameters())
