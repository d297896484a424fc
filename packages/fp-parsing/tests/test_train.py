"""Training: config validation and a killed run resuming to the same weights (the harness itself is tested in
fp-core)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from toy_dataset import ToyFaces  # noqa: I001  (test helper beside this file)

from fp_core.sampling import EpochPermutation
from fp_core.training import CheckpointMismatchError, latest_checkpoint
from fp_parsing.train import ConfigError, TrainConfig, train_parser

TINY = {
    "epochs": 2,
    "batch_size": 4,
    "encoder_name": "resnet18",
    "num_classes": 3,
    "seed": 3,
    "cpu": True,
    "fairness": {"attributes": ["Male", "Young"]},
}


def _config(**overrides: object) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **overrides})


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="epochz"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match=r"robustness: unknown key\(s\) \['nois_std'\]"):
        TrainConfig.from_dict({"robustness": {"nois_std": 1.0}})
    with pytest.raises(ConfigError, match="weighting"):
        TrainConfig.from_dict({"weighting": "magic"})


def test_sampler_order_depends_on_seed_and_epoch_only() -> None:
    a, b = EpochPermutation(10, 1, "order"), EpochPermutation(10, 1, "order")
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(3)
    assert list(a) != list(b)


class _Kill(Exception):
    pass


def _killer(at_step: int):
    def log(metrics: dict, step: int) -> None:
        if "train/loss" in metrics and step == at_step:
            raise _Kill(f"killed at step {step}")

    return log


@pytest.mark.parametrize(
    "overrides", [{}, {"schedule": {"kind": "linear"}, "robustness": {"mode": "input", "input_share": 0.5}}]
)
def test_a_killed_run_resumes_to_the_same_weights(tmp_path: Path, overrides: dict) -> None:
    data = ToyFaces(n=8, size=32)
    config = _config(**overrides)
    straight = train_parser(
        config, data, tmp_path / "a" / "model", checkpoint_dir=tmp_path / "a" / "ck", progress=False
    )
    assert straight.resumed_from_epoch is None

    # Killed in the middle of epoch 1 (steps 0-1 are epoch 0, 2-3 epoch 1): epoch 0's checkpoint survives.
    with pytest.raises(_Kill):
        train_parser(
            config,
            data,
            tmp_path / "b" / "model",
            checkpoint_dir=tmp_path / "b" / "ck",
            log=_killer(3),
            progress=False,
        )
    assert not (tmp_path / "b" / "model").exists()
    assert latest_checkpoint(tmp_path / "b" / "ck").name == "checkpoint-00000002"
    resumed = train_parser(
        config, data, tmp_path / "b" / "model", checkpoint_dir=tmp_path / "b" / "ck", progress=False
    )
    assert resumed.resumed_from_epoch == 1

    weights_a = load_file(str(tmp_path / "a" / "model" / "model.safetensors"))
    weights_b = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    assert straight.history == resumed.history


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    data = ToyFaces(n=8, size=32)
    with pytest.raises(_Kill):
        train_parser(
            _config(), data, tmp_path / "m", checkpoint_dir=tmp_path / "ck", log=_killer(3), progress=False
        )
    with pytest.raises(CheckpointMismatchError, match="other settings"):
        train_parser(_config(lr=1e-3), data, tmp_path / "m", checkpoint_dir=tmp_path / "ck", progress=False)


def test_training_logs_every_term_and_writes_the_model(tmp_path: Path) -> None:
    data = ToyFaces(n=8, size=32)
    seen: list[tuple[dict, int]] = []
    config = _config(epochs=1, schedule={"kind": "linear"})
    result = train_parser(
        config,
        data,
        tmp_path / "model",
        checkpoint_dir=tmp_path / "ck",
        log=lambda m, s: seen.append((dict(m), s)),
        progress=False,
    )
    steps = [m for m, _ in seen if "train/loss" in m]
    assert len(steps) == 2
    for record in steps:
        assert {"train/accuracy", "train/robustness", "train/fairness", "weights/alpha"} <= set(record)
        assert record["weights/alpha"] + record["weights/beta"] + record["weights/gamma"] == pytest.approx(
            1.0
        )
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert "model.safetensors" in files and "history.json" in files and "schedule.csv" in files
    assert len(result.history) == 1


def test_mpd_weighting_trains_with_positive_weights(tmp_path: Path) -> None:
    data = ToyFaces(n=8, size=32)
    seen: list[dict] = []
    config = _config(epochs=1, weighting="mpd")
    train_parser(
        config,
        data,
        tmp_path / "model",
        checkpoint_dir=tmp_path / "ck",
        log=lambda m, s: seen.append(dict(m)),
        progress=False,
    )
    steps = [m for m in seen if "train/loss" in m]
    assert steps and all(m["weights/alpha"] > 0 and "mpd/residual" in m for m in steps)
