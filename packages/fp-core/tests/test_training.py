"""The training harness: resume equals uninterrupted, checkpoints are complete and pruned, checks name the
batch, tracking ids survive, logging happens on the main process, fp16 overflow is left to the scaler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fp_core.seeds import derive_seed
from fp_core.training import (
    CheckpointMismatchError,
    HarnessConfig,
    NonFiniteError,
    TrainingHarness,
    latest_checkpoint,
    list_checkpoints,
    stored_tracking_id,
)


class Points(Dataset):
    def __init__(self, n: int = 24) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i], "index": torch.tensor(i)}


class EpochOrder(Sampler[int]):
    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(derive_seed(0, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class Crash(RuntimeError):
    pass


def _train(
    ckpt: Path,
    *,
    epochs: int = 3,
    crash_at: int | None = None,
    every: int = 0,
    run_config: dict | None = None,
    log: list | None = None,
    tracking_id: str | None = None,
) -> tuple[torch.nn.Module, TrainingHarness]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    data = Points()
    loader = DataLoader(data, batch_size=4, sampler=EpochOrder(len(data)))
    harness = TrainingHarness(
        HarnessConfig(checkpoint_dir=ckpt, checkpoint_every=every, progress=False, cpu=True),
        run_config=run_config or {"lr": 0.05},
        log=(lambda m, s: log.append((dict(m), s))) if log is not None else None,
        tracking_id=tracking_id,
        describe_batch=lambda b: [f"item-{int(i)}" for i in b["index"]],
    )
    model, optimizer, loader, scheduler = harness.prepare(model, optimizer, loader, scheduler)
    harness.resume()
    for epoch in harness.epochs(epochs):
        for batch in harness.batches(loader, epoch):
            if crash_at is not None and harness.state.global_step == crash_at:
                raise Crash
            loss = torch.nn.functional.mse_loss(model(batch["x"]).squeeze(-1), batch["y"])
            harness.check_finite({"loss": loss}, batch)
            harness.backward(loss)
            harness.step(optimizer, model.parameters(), batch, scheduler)
            harness.log_step({"train/loss": float(loss.detach())})
    return harness.unwrap(model), harness


@pytest.mark.parametrize(("crash_at", "every"), [(8, 0), (8, 4), (13, 5)])
def test_resume_equals_uninterrupted(tmp_path: Path, crash_at: int, every: int) -> None:
    reference, ref_harness = _train(tmp_path / "a")
    with pytest.raises(Crash):
        _train(tmp_path / "b", crash_at=crash_at, every=every)
    resumed, harness = _train(tmp_path / "b", every=every)
    assert harness.resumed_from is not None
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert harness.state.global_step == ref_harness.state.global_step == 18
    ref_hist = [h["epoch/loss"] for h in ref_harness.state.history]
    assert [h["epoch/loss"] for h in harness.state.history] == pytest.approx(ref_hist, rel=1e-12)


def test_checkpoints_are_complete_pruned_and_named_by_step(tmp_path: Path) -> None:
    _, harness = _train(tmp_path, every=4)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["checkpoint-00000016", "checkpoint-00000018"]  # keep=2, the newest
    latest = latest_checkpoint(tmp_path)
    state = json.loads((latest / "trainer_state.json").read_text())
    assert state["state"]["epoch"] == 3 and state["state"]["global_step"] == 18
    assert (latest / "model.safetensors").is_file() and (latest / "optimizer.bin").is_file()
    assert not list(tmp_path.glob(".*.tmp"))


def test_incomplete_checkpoint_directory_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-00000099").mkdir(parents=True)  # no trainer_state.json: a crash mid-write
    assert latest_checkpoint(tmp_path) is None
    _, harness = _train(tmp_path, epochs=1)
    assert harness.resumed_from is None


def test_other_settings_refuse_to_resume(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        _train(tmp_path, crash_at=8)  # after the first epoch's checkpoint
    with pytest.raises(CheckpointMismatchError, match="other settings"):
        _train(tmp_path, run_config={"lr": 0.1})


def test_tracking_id_survives_a_crash(tmp_path: Path) -> None:
    with pytest.raises(Crash):
        _train(tmp_path, crash_at=7, tracking_id="run-123")
    assert stored_tracking_id(tmp_path) == "run-123"
    _, harness = _train(tmp_path, tracking_id=None)
    assert harness.state.tracking_id == "run-123"


def test_logging_per_step_and_epoch_means(tmp_path: Path) -> None:
    records: list = []
    _, harness = _train(tmp_path, epochs=2, log=records)
    steps = [s for m, s in records if "train/loss" in m]
    assert steps == list(range(12))
    epoch_records = [(m, s) for m, s in records if "epoch/loss" in m]
    assert [s for _, s in epoch_records] == [0, 1]
    first_epoch = [m["train/loss"] for m, s in records if "train/loss" in m and s < 6]
    assert epoch_records[0][0]["epoch/loss"] == pytest.approx(sum(first_epoch) / 6)


def test_non_finite_loss_names_step_and_files(tmp_path: Path) -> None:
    harness = TrainingHarness(
        HarnessConfig(checkpoint_dir=tmp_path, progress=False, cpu=True),
        describe_batch=lambda b: [f"img/{int(i)}.jpg" for i in b["index"]],
    )
    batch = {"index": torch.tensor([3, 7])}
    with pytest.raises(NonFiniteError, match=r"non-finite loss at epoch 0, step 0.*img/3.jpg, img/7.jpg"):
        harness.check_finite({"loss": torch.tensor(float("nan"))}, batch)
    assert harness.check_finite({"loss": torch.tensor(1.0)}, batch)


def test_non_finite_gradient_raises_without_a_scaler(tmp_path: Path) -> None:
    harness = TrainingHarness(HarnessConfig(checkpoint_dir=tmp_path, progress=False, cpu=True))
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = harness.prepare(model, optimizer)
    model.weight.grad = torch.full_like(model.weight, float("inf"))
    before = model.weight.detach().clone()
    with pytest.raises(NonFiniteError, match="non-finite gradient in 1 of 1"):
        harness.step(optimizer, model.parameters(), {"index": torch.tensor([0])})
    torch.testing.assert_close(model.weight.detach(), before)  # nothing applied


def test_fp16_overflow_is_left_to_the_scaler(tmp_path: Path) -> None:
    """With an active GradScaler an inf gradient is a skipped step, not a crash (CPU GradScaler here)."""
    harness = TrainingHarness(HarnessConfig(checkpoint_dir=tmp_path, progress=False, cpu=True))
    # accelerate builds a GradScaler only on accelerators; give the CPU run one (as fp16 on a GPU would).
    harness.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = harness.prepare(model, optimizer)
    before = model.weight.detach().clone()
    loss = model(torch.ones(1, 2)).sum() * float("inf")
    assert harness.check_finite({"loss": loss}) is False
    harness.backward(loss)
    assert harness.step(optimizer, model.parameters()) is False
    assert harness.state.skipped_steps == 1
    torch.testing.assert_close(model.weight.detach(), before)
    assert harness.scaler.get_scale() == 2.0**7  # backed off
    harness.backward(model(torch.ones(1, 2)).sum())
    assert harness.step(optimizer, model.parameters()) is True


def test_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mixed_precision"):
        HarnessConfig(checkpoint_dir=tmp_path, mixed_precision="fp8")
    with pytest.raises(ValueError, match="keep"):
        HarnessConfig(checkpoint_dir=tmp_path, keep=0)


def test_harness_config_from_a_trainer_config(tmp_path: Path) -> None:
    class Settings:
        mixed_precision = "bf16"
        cpu = True
        checkpoint_every = 7
        keep_checkpoints = 3
        max_grad_norm = 1.5

    config = HarnessConfig.from_settings(Settings(), tmp_path, progress=False)
    assert (
        config.mixed_precision,
        config.cpu,
        config.checkpoint_every,
        config.keep,
        config.max_grad_norm,
    ) == (
        "bf16",
        True,
        7,
        3,
        1.5,
    )
    assert config.checkpoint_dir == tmp_path and config.progress is False
    assert HarnessConfig.from_settings(object(), tmp_path).keep == 2  # missing names keep the defaults
