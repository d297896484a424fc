"""The training harness every fp trainer runs on: accelerate underneath, checkpoints, resume, checks, logging.

A trainer reads like a recipe::

    harness = TrainingHarness(HarnessConfig(checkpoint_dir="ckpt/", checkpoint_every=200),
                              run_config=config.to_dict(), log=log, tracking_id=run_id)
    model, optimizer, loader = harness.prepare(model, optimizer, loader)
    harness.register(loss_weighting)            # anything else with state_dict / load_state_dict
    harness.resume()                            # the latest checkpoint, if any (on by default)
    for epoch in harness.epochs(config.epochs):
        for batch in harness.batches(loader, epoch):
            loss = ...
            harness.check_finite({"loss": loss}, batch)
            harness.backward(loss)
            harness.step(optimizer, model.parameters(), batch)
            harness.log_step({"train/loss": float(loss)})
    model = harness.unwrap(model)               # then save it in its ecosystem's layout

What it does for the trainer:

* **Checkpoints** through accelerate's ``save_state`` / ``load_state`` (models, optimisers, schedulers,
  GradScaler, RNG states of every process, and the registered objects), plus ``trainer_state.json`` (epoch,
  step, history, the tracking run id, the run's config). Each is written to ``.checkpoint-<step>.tmp`` and
  renamed to ``checkpoint-<global step, 8 digits>``, every ``checkpoint_every`` steps and at each epoch end;
  the newest ``keep`` are kept. A directory with the final name is always complete.
* **Resume** by default: the newest complete checkpoint is loaded; a checkpoint written with another
  ``run_config`` is refused (:class:`CheckpointMismatchError`) rather than silently mixed. A resumed epoch
  skips the batches it already trained on (``accelerator.skip_first_batches``), so with a sampler whose order
  depends only on the epoch the resumed run sees the same batches as an uninterrupted one.
* **Tracking**: ``tracking_id`` (e.g. an MLflow run id) is stored in every checkpoint;
  :func:`stored_tracking_id` reads it back so the app can continue the same run after a crash.
* **Non-finite checks** before the optimiser step: without an active GradScaler a non-finite loss or
  gradient raises :class:`NonFiniteError` naming the step and the batch's files; with one (fp16), an overflow
  is left to the scaler, which skips the step (counted in ``amp/skipped_steps``); ``max_consecutive_skips``
  skipped steps in a row raise.
* **Main process only** for logging, progress bars and checkpoint renames; every process takes part in
  ``save_state`` (each writes its own RNG state).

Checkpoints hold pickled state written by accelerate / torch (optimiser, RNG, scaler): load only checkpoint
directories your own runs wrote, as you would run only your own code.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from fp_core.atomic import write_json
from fp_core.logging import LogFn

__all__ = [
    "CheckpointMismatchError",
    "HarnessConfig",
    "NonFiniteError",
    "TrainingHarness",
    "TrainingState",
    "latest_checkpoint",
    "list_checkpoints",
    "stored_tracking_id",
]

STATE_FILE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d{8,})$")
MIXED_PRECISION = ("no", "fp16", "bf16")


class NonFiniteError(FloatingPointError):
    """A loss or gradient that is inf or NaN where no GradScaler can skip the step."""


class CheckpointMismatchError(ValueError):
    """A checkpoint written by a run with other settings than the one resuming from it."""


@dataclass
class HarnessConfig:
    """How the harness runs a training loop.

    Attributes:
        checkpoint_dir: where ``checkpoint-<step>`` directories go (resumed from when present).
        mixed_precision: accelerate's ``"no"``, ``"fp16"`` (with a GradScaler, on accelerators) or ``"bf16"``.
        cpu: run on the CPU even when an accelerator is present.
        checkpoint_every: also checkpoint every this many optimiser steps (0: only at epoch ends).
        keep: how many of the newest checkpoints to keep (>= 1).
        max_grad_norm: clip the gradient norm to this before each step (None: no clipping).
        gradient_accumulation_steps: batches per optimiser step (accelerate's ``accumulate``).
        max_consecutive_skips: raise after this many GradScaler-skipped steps in a row.
        progress: tqdm bars (main process only).
        resume: resume from the newest checkpoint in ``checkpoint_dir`` (when :meth:`TrainingHarness.resume`
            is called).
    """

    checkpoint_dir: str | os.PathLike[str]
    mixed_precision: str = "no"
    cpu: bool = False
    checkpoint_every: int = 0
    keep: int = 2
    max_grad_norm: float | None = None
    gradient_accumulation_steps: int = 1
    max_consecutive_skips: int = 25
    progress: bool = True
    resume: bool = True

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.keep < 1:
            raise ValueError(f"keep must be >= 1, got {self.keep}")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(
                f"gradient_accumulation_steps must be >= 1, got {self.gradient_accumulation_steps}"
            )
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")

    @classmethod
    def from_settings(
        cls, settings: Any, checkpoint_dir: str | os.PathLike[str], *, progress: bool = True
    ) -> HarnessConfig:
        """The harness settings a trainer's config carries under the conventional names
        (``mixed_precision``, ``cpu``, ``checkpoint_every``, ``keep_checkpoints``, ``max_grad_norm``; any
        missing one keeps its default)."""
        names = {
            "mixed_precision": "mixed_precision",
            "cpu": "cpu",
            "checkpoint_every": "checkpoint_every",
            "keep_checkpoints": "keep",
            "max_grad_norm": "max_grad_norm",
        }
        values = {field: getattr(settings, name) for name, field in names.items() if hasattr(settings, name)}
        return cls(checkpoint_dir=checkpoint_dir, progress=progress, **values)


@dataclass
class TrainingState:
    """Where a run stands; saved in every checkpoint as ``trainer_state.json``.

    Attributes:
        epoch: the epoch in progress (the next to run once one ends).
        step_in_epoch: batches of ``epoch`` already trained on.
        global_step: batches trained on since the start of the run.
        history: one dict per finished epoch (``epoch`` and the epoch means of every logged value).
        tracking_id: the tracking run this training logs to (e.g. an MLflow run id).
        skipped_steps: optimiser steps a GradScaler skipped.
        extra: anything else the trainer wants saved (JSON-serialisable).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    tracking_id: str | None = None
    skipped_steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingState:
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        return cls(**known)


def list_checkpoints(checkpoint_dir: str | os.PathLike[str]) -> list[Path]:
    """The complete checkpoints under ``checkpoint_dir``, oldest first."""
    directory = Path(checkpoint_dir)
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint under ``checkpoint_dir``, or None."""
    found = list_checkpoints(checkpoint_dir)
    return found[-1] if found else None


def _read_state(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointMismatchError(f"{path} is not a readable trainer state: {error}") from None


def stored_tracking_id(checkpoint_dir: str | os.PathLike[str]) -> str | None:
    """The tracking run id saved in the newest checkpoint (None without one): resume that run."""
    latest = latest_checkpoint(checkpoint_dir)
    if latest is None:
        return None
    return _read_state(latest).get("state", {}).get("tracking_id")


def _jsonable(values: Mapping[str, Any] | None) -> Any:
    return json.loads(json.dumps(dict(values or {}), sort_keys=True, default=str))


def _scalar(value: torch.Tensor | float) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _batch_files(batch: Any, describe: Callable[[Any], Sequence[str]] | None) -> str:
    if describe is None or batch is None:
        return "(batch not described)"
    try:
        files = [str(f) for f in describe(batch)]
    except Exception as error:  # describing must never hide the real failure
        return f"(could not describe the batch: {error})"
    shown = ", ".join(files[:16])
    return shown + (f", ... ({len(files)} in all)" if len(files) > 16 else "")


class TrainingHarness:
    """Runs one training loop on accelerate (module docstring).

    Args:
        config: :class:`HarnessConfig`.
        run_config: the run's settings (JSON-serialisable); a checkpoint written with other settings is
            refused on resume.
        log: ``log(metrics, step)``, called on the main process only.
        tracking_id: the tracking run id to store in checkpoints.
        describe_batch: ``batch -> file names`` for error messages (e.g. the images a batch holds).
        accelerator: an existing ``accelerate.Accelerator`` (default: one built from ``config``).
    """

    def __init__(
        self,
        config: HarnessConfig,
        *,
        run_config: Mapping[str, Any] | None = None,
        log: LogFn | None = None,
        tracking_id: str | None = None,
        describe_batch: Callable[[Any], Sequence[str]] | None = None,
        accelerator: Any | None = None,
    ) -> None:
        if accelerator is None:
            from accelerate import Accelerator

            accelerator = Accelerator(
                mixed_precision=config.mixed_precision,
                cpu=config.cpu,
                gradient_accumulation_steps=config.gradient_accumulation_steps,
            )
        self.accelerator = accelerator
        self.config = config
        self.checkpoint_dir = Path(config.checkpoint_dir)
        self.run_config = _jsonable(run_config)
        self.state = TrainingState(tracking_id=tracking_id)
        self.resumed_from: Path | None = None
        self._log = log
        self._describe = describe_batch
        self._epoch_sums: dict[str, float] = {}
        self._epoch_counts: dict[str, int] = {}
        self._consecutive_skips = 0
        self._bar: Any = None

    # -- accelerate -------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The device the prepared models and batches live on."""
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        """Whether this process logs, shows progress and renames checkpoints."""
        return bool(self.accelerator.is_main_process)

    @property
    def num_processes(self) -> int:
        return int(self.accelerator.num_processes)

    @property
    def scaler(self) -> Any | None:
        """The active GradScaler (fp16), else None."""
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is None or (hasattr(scaler, "is_enabled") and not scaler.is_enabled()):
            return None
        return scaler

    def prepare(self, *objects: Any) -> Any:
        """``accelerator.prepare(*objects)`` (models, optimisers, loaders, schedulers)."""
        return self.accelerator.prepare(*objects)

    def register(self, *objects: Any) -> None:
        """Save and restore these objects (``state_dict`` / ``load_state_dict``) with every checkpoint."""
        self.accelerator.register_for_checkpointing(*objects)

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model without accelerate's / DDP's wrappers."""
        return self.accelerator.unwrap_model(model)

    def autocast(self) -> Any:
        """The mixed-precision context of the forward pass."""
        return self.accelerator.autocast()

    def accumulate(self, *models: torch.nn.Module) -> Any:
        """Gradient-accumulation context (no gradient sync until the last micro-batch)."""
        return self.accelerator.accumulate(*models)

    def wait(self) -> None:
        """Barrier across processes."""
        self.accelerator.wait_for_everyone()

    # -- resume and checkpoints -------------------------------------------------------------------------
    def resume(self) -> bool:
        """Load the newest checkpoint (when ``config.resume``); True when one was loaded."""
        if not self.config.resume:
            return False
        latest = latest_checkpoint(self.checkpoint_dir)
        if latest is None:
            return False
        saved = _read_state(latest)
        if saved.get("run_config") != self.run_config:
            raise CheckpointMismatchError(
                f"checkpoint {latest} was written by a run with other settings; delete {self.checkpoint_dir} "
                f"to start afresh, or restore the settings it was written with"
            )
        self.accelerator.load_state(str(latest))
        tracking_id = self.state.tracking_id
        self.state = TrainingState.from_dict(saved.get("state", {}))
        if self.state.tracking_id is None:
            self.state.tracking_id = tracking_id
        self._epoch_sums = dict(saved.get("epoch_sums", {}))
        self._epoch_counts = {k: int(v) for k, v in saved.get("epoch_counts", {}).items()}
        self.resumed_from = latest
        return True

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint-<global step>`` (all processes take part) and prune old ones."""
        final = self.checkpoint_dir / f"checkpoint-{self.state.global_step:08d}"
        tmp = self.checkpoint_dir / f".{final.name}.tmp"
        if self.is_main_process:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        self.wait()
        self.accelerator.save_state(str(tmp))
        self.wait()
        if self.is_main_process:
            write_json(
                tmp / STATE_FILE,
                {
                    "state": asdict(self.state),
                    "run_config": self.run_config,
                    "epoch_sums": self._epoch_sums,
                    "epoch_counts": self._epoch_counts,
                },
            )
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for old in list_checkpoints(self.checkpoint_dir)[: -self.config.keep]:
                shutil.rmtree(old, ignore_errors=True)
        self.wait()
        return final

    # -- the loop ---------------------------------------------------------------------------------------
    def epochs(self, num_epochs: int) -> Iterator[int]:
        """Yield the epochs still to run; after each, record its means in the history, log and checkpoint."""
        if num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1, got {num_epochs}")
        while self.state.epoch < num_epochs:
            epoch = self.state.epoch
            yield epoch
            means = {
                "epoch/" + name.removeprefix("train/"): total / max(self._epoch_counts.get(name, 1), 1)
                for name, total in self._epoch_sums.items()
            }
            self.state.history.append({"epoch": float(epoch), **means})
            self._emit(means, epoch)
            self._epoch_sums, self._epoch_counts = {}, {}
            self.state.epoch, self.state.step_in_epoch = epoch + 1, 0
            self.save_checkpoint()

    def batches(self, loader: Iterable[Any], epoch: int, max_steps: int = 0) -> Iterator[Any]:
        """Yield the batches of ``epoch`` still to train on (skipping those a resumed run already did).

        ``max_steps`` caps the batches per epoch (0: all). Each batch counts as done when the loop asks for
        the next one; a checkpoint follows every ``checkpoint_every`` steps.
        """
        from tqdm.auto import tqdm

        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        total = len(loader)  # type: ignore[arg-type]
        if max_steps > 0:
            total = min(total, max_steps)
        done = self.state.step_in_epoch if self.state.epoch == epoch else 0
        source = self.accelerator.skip_first_batches(loader, done) if done else loader
        self._bar = tqdm(
            total=total,
            initial=done,
            desc=f"epoch {epoch + 1}",
            disable=not (self.config.progress and self.is_main_process),
            leave=False,
        )
        try:
            for position, batch in enumerate(source, start=done):
                if position >= total:
                    break
                self._batch = batch
                yield batch
                self.state.step_in_epoch = position + 1
                self.state.global_step += 1
                self._bar.update(1)
                every = self.config.checkpoint_every
                if (
                    every
                    and self.state.global_step % every == 0
                    and position + 1 < total
                    and self.accelerator.sync_gradients
                ):
                    self.save_checkpoint()
        finally:
            self._bar.close()
            self._batch = None

    def backward(self, loss: torch.Tensor) -> None:
        """``accelerator.backward(loss)`` (scales the loss under fp16)."""
        self.accelerator.backward(loss)

    def check_finite(self, values: Mapping[str, torch.Tensor | float], batch: Any = None) -> bool:
        """Check losses before the backward pass; True when all are finite.

        Without an active GradScaler a non-finite value raises :class:`NonFiniteError` naming the step and
        the batch's files; with one, False is returned and the scaler will skip the step.
        """
        bad = [name for name, value in values.items() if not math.isfinite(_scalar(value))]
        if not bad:
            return True
        if self.scaler is not None:
            return False
        raise NonFiniteError(
            f"non-finite {', '.join(bad)} at epoch {self.state.epoch}, step {self.state.step_in_epoch} "
            f"(global step {self.state.global_step}); batch: {_batch_files(batch, self._describe)}"
        )

    def step(
        self,
        optimizer: torch.optim.Optimizer,
        parameters: Iterable[torch.Tensor] | None = None,
        batch: Any = None,
        scheduler: Any | None = None,
    ) -> bool:
        """Clip, check and apply one optimiser step, then zero the gradients; True when the step was applied.

        Without an active GradScaler a non-finite gradient raises :class:`NonFiniteError` (step and files);
        with one, the scaler skips the step (counted in ``skipped_steps``).
        """
        params = [p for p in (parameters or []) if p.grad is not None]
        if self.accelerator.sync_gradients:
            if self.config.max_grad_norm is not None and params:
                self.accelerator.clip_grad_norm_(params, self.config.max_grad_norm)
            if self.scaler is None and params:
                bad = [i for i, p in enumerate(params) if not bool(torch.isfinite(p.grad).all())]
                if bad:
                    raise NonFiniteError(
                        f"non-finite gradient in {len(bad)} of {len(params)} parameter tensors at epoch "
                        f"{self.state.epoch}, step {self.state.step_in_epoch} (global step "
                        f"{self.state.global_step}); batch: {_batch_files(batch, self._describe)}"
                    )
        optimizer.step()
        skipped = bool(self.accelerator.sync_gradients and self.accelerator.optimizer_step_was_skipped)
        if scheduler is not None and not skipped:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if skipped:
            self.state.skipped_steps += 1
            self._consecutive_skips += 1
            if self._consecutive_skips > self.config.max_consecutive_skips:
                raise NonFiniteError(
                    f"the GradScaler skipped {self._consecutive_skips} steps in a row (global step "
                    f"{self.state.global_step}): the losses or gradients are not finite even at a tiny "
                    f"loss scale; batch: {_batch_files(batch, self._describe)}"
                )
        else:
            self._consecutive_skips = 0
        return not skipped

    def log_step(self, metrics: Mapping[str, float], *, accumulate: bool = True) -> None:
        """Log ``metrics`` at the current global step (main process) and add them to the epoch means."""
        values = {name: float(value) for name, value in metrics.items()}
        if self.scaler is not None:
            values["amp/skipped_steps"] = float(self.state.skipped_steps)
        if accumulate:
            for name, value in values.items():
                if math.isfinite(value):
                    self._epoch_sums[name] = self._epoch_sums.get(name, 0.0) + value
                    self._epoch_counts[name] = self._epoch_counts.get(name, 0) + 1
        self._emit(values, self.state.global_step)
        if self._bar is not None and "train/loss" in values:
            self._bar.set_postfix(loss=f"{values['train/loss']:.4f}")

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at ``step`` (default: the current global step), main process only."""
        self._emit(
            {k: float(v) for k, v in metrics.items()}, self.state.global_step if step is None else step
        )

    def _emit(self, metrics: Mapping[str, float], step: int) -> None:
        if self._log is not None and self.is_main_process and metrics:
            self._log(metrics, int(step))
