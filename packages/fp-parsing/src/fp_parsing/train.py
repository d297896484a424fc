"""Training of one parser variant: homotopy-scheduled or MPD-weighted Dice + robustness + fairness.

The loop reads like a recipe::

    config = TrainConfig.from_dict(params)            # epochs, schedule, robustness, fairness, ...
    result = train_parser(config, CelebAMaskHQ(root, "train", hflip=True), "model/",
                          checkpoint_dir="ckpt/", log=my_logger)

It runs on :class:`fp_core.training.TrainingHarness` (accelerate), so the same code trains on the CPU here and
on many GPUs with ``accelerate launch``. Checkpoints (accelerate ``save_state``) are written every
``checkpoint_every`` steps and at each epoch end; a killed run started again with the same arguments resumes
from the last one and ends with the same weights as an uninterrupted run, because every random choice
(shuffling, flips, perturbations, logit noise) is derived from ``(seed, epoch, step)`` by
:func:`fp_core.seeds.derive_seed`. How the objectives become a gradient (a schedule or any fp-gradagg method):
:mod:`fp_parsing.weighting`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fp_core.atomic import atomic_output_dir, write_json
from fp_core.logging import LogFn
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed, torch_generator
from fp_parsing.groups import GroupingSpec, group_ids, groupings_for
from fp_parsing.losses import ROBUSTNESS_MODES, ParsingObjectives
from fp_parsing.model import build_parser, load_parser, save_parser
from fp_parsing.perturbations import PERTURBATIONS
from fp_parsing.schedules import build_schedule, schedule_csv, schedule_table
from fp_parsing.weighting import BALANCES, WEIGHTINGS, ObjectiveWeighting

__all__ = [
    "FairnessConfig",
    "LogFn",
    "RobustnessConfig",
    "TrainConfig",
    "TrainResult",
    "load_parser",
    "parser_step",
    "train_parser",
]


class ConfigError(ValueError):
    """A training setting that is unknown or out of range."""


def _from_mapping(cls: type, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    return cls(**values)


@dataclass
class RobustnessConfig:
    """How L_rob is computed (see :class:`fp_parsing.losses.ParsingObjectives`).

    Attributes:
        mode: ``"output"`` (default: noise on the per-pixel standardised logits of the one forward, invariant
            to a rescaling of the logits), ``"output_literal"`` (the paper's Algorithm 1 as written: noise on
            the raw logits, which a model beats by inflating its logits) or ``"input"`` (a share of the batch
            perturbed with the suite and passed through the model once more, BatchNorm statistics frozen).
        noise_std: standard deviation of the logit noise in the output modes.
        temperature: softmax temperature of the standardised logits in ``"output"`` mode.
        input_share: share of the batch perturbed in input mode.
        max_severity: severities are drawn uniformly from ``[0, max_severity]`` in input mode.
        perturbations: the perturbation kinds drawn from in input mode.
    """

    mode: str = "output"
    noise_std: float = 1.0
    temperature: float = 0.25
    input_share: float = 0.25
    max_severity: float = 0.8
    perturbations: list[str] = field(default_factory=lambda: list(PERTURBATIONS))

    def __post_init__(self) -> None:
        if self.mode not in ROBUSTNESS_MODES:
            raise ConfigError(f"robustness.mode must be one of {list(ROBUSTNESS_MODES)}, got {self.mode!r}")
        if not self.temperature > 0:
            raise ConfigError(f"robustness.temperature must be > 0, got {self.temperature}")
        if not 0 < self.input_share <= 1:
            raise ConfigError(f"robustness.input_share must be in (0, 1], got {self.input_share}")


@dataclass
class FairnessConfig:
    """How L_fair is computed.

    Attributes:
        kind: ``"variance"`` (variance of per-group soft mIoU) or ``"shortfall"`` (the alternative fairness:
            each group's shortfall from the best group).
        attributes: CelebA attribute names whose present/absent groups enter the loss.
        skin_tone: whether the skin-tone groups (``fp_skin_tone.txt``) form one more grouping.
    """

    kind: str = "variance"
    attributes: list[str] = field(
        default_factory=lambda: ["Male", "Young", "Pale_Skin", "Eyeglasses", "Wearing_Hat"]
    )
    skin_tone: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("variance", "shortfall"):
            raise ConfigError(f"fairness.kind must be 'variance' or 'shortfall', got {self.kind!r}")


@dataclass
class TrainConfig:
    """Everything one training run reads (the merge of ``parsing.model``, ``parsing.train`` and a variant).

    Attributes:
        epochs: number of epochs (the schedules run over them; real scale: 30).
        batch_size: images per step and process.
        lr, weight_decay: Adam settings (the paper: lr 1e-4).
        seed: seeds the model's initialisation and every random choice of the run.
        num_workers: DataLoader worker processes.
        mixed_precision: accelerate's ``"no"``, ``"fp16"`` or ``"bf16"``.
        cpu: force the CPU even when an accelerator is present.
        encoder_name, encoder_weights, num_classes: the U-Net (``encoder_weights: imagenet`` at real scale).
        encoder_depth, decoder_channels: the U-Net's depth and decoder widths (None: smp's defaults).
        schedule: the homotopy schedule spec (:func:`fp_parsing.schedules.build_schedule`).
        weighting: ``"schedule"`` (α, β, γ from the schedule) or an fp-gradagg method computing weights every
            step (:data:`fp_parsing.weighting.WEIGHTINGS`: ``mpd``, ``nash_mtl``, ``mgda``, ``cagrad``,
            ``pcgrad``, ``linear``, ``dwa``, ``uw``, ``rlw``, ``si``); the schedule is then unused.
        weighting_options: keyword options of that method (e.g. ``{mode: step}`` for per-step DWA).
        gradient_path: ``"fast"`` or ``"naive"`` per-objective gradients for the Gramian methods.
        balance: what the Gramian methods balance: ``"log"`` (default) the log-losses ``log(L_i - min_i)``
            (:data:`fp_parsing.losses.OBJECTIVE_MINIMA`), whose gradients ``∇L_i / (L_i - min_i)`` do not
            depend on each loss's units, or ``"raw"`` the losses themselves. MPD weights follow gradient size,
            and the fairness loss (a variance of mIoU, ~1e-4) has a gradient orders of magnitude below Dice's:
            on raw losses MPD hands it almost all of the step and accuracy collapses.
        checkpoint_every: also checkpoint every this many steps (0: at epoch ends only).
        keep_checkpoints: how many checkpoints to keep.
        max_grad_norm: clip the gradient norm (None: no clipping).
        robustness, fairness: see :class:`RobustnessConfig` and :class:`FairnessConfig`.
        max_steps_per_epoch: cap on steps per epoch (0: the whole split), for quick runs.
    """

    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0
    mixed_precision: str = "no"
    cpu: bool = False
    encoder_name: str = "resnet34"
    encoder_weights: str | None = None
    num_classes: int = 19
    encoder_depth: int = 5
    decoder_channels: list[int] | None = None
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "constant"})
    weighting: str = "schedule"
    weighting_options: dict[str, Any] = field(default_factory=dict)
    gradient_path: str = "fast"
    balance: str = "log"
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    max_grad_norm: float | None = None
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    fairness: FairnessConfig = field(default_factory=FairnessConfig)
    max_steps_per_epoch: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.robustness, Mapping):
            self.robustness = _from_mapping(RobustnessConfig, self.robustness, "robustness")
        if isinstance(self.fairness, Mapping):
            self.fairness = _from_mapping(FairnessConfig, self.fairness, "fairness")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting must be one of {list(WEIGHTINGS)}, got {self.weighting!r}")
        if self.gradient_path not in ("fast", "naive"):
            raise ConfigError(f"gradient_path must be 'fast' or 'naive', got {self.gradient_path!r}")
        if self.balance not in BALANCES:
            raise ConfigError(f"balance must be one of {list(BALANCES)}, got {self.balance!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"mixed_precision must be 'no', 'fp16' or 'bf16', got {self.mixed_precision!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a params mapping; unknown keys raise :class:`ConfigError` naming them."""
        return _from_mapping(cls, dict(values), "parsing training settings")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (for manifests and MLflow params)."""
        return dataclasses.asdict(self)

    def model_config(self) -> dict[str, Any]:
        """The settings that rebuild the network (what :func:`load_parser` needs)."""
        config = {
            "encoder_name": self.encoder_name,
            "encoder_weights": self.encoder_weights,
            "num_classes": self.num_classes,
            "encoder_depth": self.encoder_depth,
        }
        if self.decoder_channels is not None:
            config["decoder_channels"] = list(self.decoder_channels)
        return config


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_parser` returns.

    Attributes:
        model_dir: where the model was written.
        history: per-epoch means of every logged value (``epoch/loss``, ``epoch/weights/alpha``, ...).
        resumed_from_epoch: the epoch this call resumed in (None for a fresh run).
        weights_table: the (α, β, γ) used per epoch as a :func:`fp_parsing.schedules.schedule_table`: the
            schedule's values, or for an fp-gradagg method the epoch means of its weight shares.
        tracking_id: the tracking run id stored in the checkpoints (the one given, or a resumed run's).
    """

    model_dir: Path
    history: list[dict[str, float]]
    resumed_from_epoch: int | None
    weights_table: dict[str, list[float]]
    tracking_id: str | None = None


def _describe_batch(dataset: Any) -> Any:
    """``batch -> image files`` for error messages (the CelebA-HQ image of each ``index``)."""
    root = getattr(dataset, "root", None)

    def describe(batch: Mapping[str, Any]) -> list[str]:
        indices = [int(i) for i in batch["index"]]
        if root is None:
            return [f"index {i}" for i in indices]
        return [str(Path(root) / "CelebA-HQ-img" / f"{i}.jpg") for i in indices]

    return describe


def _objectives(config: TrainConfig, groupings: GroupingSpec) -> ParsingObjectives:
    return ParsingObjectives(
        num_classes=config.num_classes,
        robustness_mode=config.robustness.mode,
        noise_std=config.robustness.noise_std,
        temperature=config.robustness.temperature,
        input_share=config.robustness.input_share,
        perturbations=tuple(config.robustness.perturbations),
        max_severity=config.robustness.max_severity,
        fairness=config.fairness.kind,
        num_groups=groupings.num_groups,
    )


def _weights_table(
    weighting: ObjectiveWeighting, history: list[dict[str, float]], schedule: Any, epochs: int
) -> dict[str, list[float]]:
    if not weighting.adaptive:
        return schedule_table(schedule, epochs)
    table: dict[str, list[float]] = {"epoch": [int(h["epoch"]) for h in history]}
    for name in ("alpha", "beta", "gamma"):
        table[name] = [h[f"epoch/weights/{name}"] for h in history]
    return table


def parser_step(
    harness: Any,
    model: torch.nn.Module,
    objectives: ParsingObjectives,
    weighting: ObjectiveWeighting,
    batch: Mapping[str, torch.Tensor],
    groupings: Any,
    params: list[torch.Tensor],
    progress: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """One batch's forward, checks and backward (the optimiser step is the caller's); returns what to log.

    ``batch`` holds ``image [B, 3, H, W]``, ``mask [B, H, W]``, ``attributes [B, 40]``, ``skin_tone [B]``;
    ``progress`` is the schedule's time in epochs; ``generator`` drives the logit noise / perturbations.
    """
    groups = group_ids(batch["attributes"], batch["skin_tone"], groupings)
    with harness.autocast():
        terms = objectives(
            model, batch["image"], batch["mask"], groups, generator=generator, need=weighting.needs(progress)
        )
    losses = {name: terms[name] for name in ("accuracy", "robustness", "fairness")}
    harness.check_finite(losses, batch)
    loss, record = weighting.backward(losses, params, progress, harness)
    record.update({f"train/{name}": float(value.detach()) for name, value in losses.items()})
    record["train/loss"] = float(loss)
    return record


def _harness(
    config: TrainConfig,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None,
    progress: bool,
    tracking_id: str | None,
    train_set: Any,
) -> Any:
    from fp_core.training import HarnessConfig, TrainingHarness

    return TrainingHarness(
        HarnessConfig.from_settings(config, checkpoint_dir, progress=progress),
        run_config=config.to_dict(),
        log=log,
        tracking_id=tracking_id,
        describe_batch=_describe_batch(train_set),
    )


def _training_objects(
    config: TrainConfig, train_set: Any
) -> tuple[Any, Any, DataLoader, ObjectiveWeighting, Any]:
    """The seeded U-Net, Adam (over the model's and the weighting's parameters), the loader, the weighting and
    the schedule."""
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = build_parser(
        encoder_name=config.encoder_name,
        encoder_weights=config.encoder_weights,
        num_classes=config.num_classes,
        encoder_depth=config.encoder_depth,
        decoder_channels=config.decoder_channels,
    )
    schedule = build_schedule(config.schedule, config.epochs)
    weighting = ObjectiveWeighting(
        config.weighting,
        schedule,
        options=config.weighting_options,
        balance=config.balance,
        path=config.gradient_path,
    )
    optimizer = torch.optim.Adam(
        [*model.parameters(), *weighting.parameters()], lr=config.lr, weight_decay=config.weight_decay
    )
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=EpochPermutation(len(train_set), config.seed, "order"),
        drop_last=True,
        num_workers=config.num_workers,
    )
    if len(loader) == 0:
        raise ConfigError(
            f"the training split has {len(train_set)} images, fewer than batch_size={config.batch_size}"
        )
    return model, optimizer, loader, weighting, schedule


def _write_model(
    model_dir: Path,
    model: torch.nn.Module,
    config: TrainConfig,
    history: list[dict[str, float]],
    table: dict[str, list[float]],
) -> None:
    """``model_dir`` replaced atomically: weights, parser config, history, training config, weights table."""
    with atomic_output_dir(model_dir) as tmp:
        save_parser(model, tmp, config.model_config())
        write_json(tmp / "history.json", history)
        write_json(tmp / "train_config.json", config.to_dict())
        (tmp / "schedule.csv").write_text(schedule_csv(table), encoding="utf-8")


def train_parser(
    config: TrainConfig,
    train_set: Dataset,
    model_dir: str | os.PathLike[str],
    *,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None = None,
    progress: bool = True,
    tracking_id: str | None = None,
    groupings: GroupingSpec | None = None,
) -> TrainResult:
    """Train one parser and write it to ``model_dir`` (``model.safetensors``, config, history, schedule).

    Args:
        config: the run's settings.
        train_set: a dataset of dicts with ``image [3,H,W]``, ``mask [H,W]``, ``attributes [40]``,
            ``skin_tone []``, ``index []`` (like :class:`fp_parsing.data.CelebAMaskHQ`), with
            ``attribute_names``.
        model_dir: where the final model goes (replaced atomically at the end).
        checkpoint_dir: the harness's checkpoints; the newest one is resumed from.
        log: ``log(metrics, step)`` callback (e.g. an MLflow run); called every step and every epoch, on the
            main process only.
        progress: show progress bars.
        tracking_id: the tracking run id to store in the checkpoints (a resumed run keeps its own).
        groupings: the fairness groupings (default :func:`fp_parsing.groups.groupings_for` of ``train_set``
            with ``config.fairness``, which warns when skin tone is asked for and the dataset has none).
    """
    harness = _harness(config, checkpoint_dir, log, progress, tracking_id, train_set)
    model, optimizer, loader, weighting, schedule = _training_objects(config, train_set)
    model, optimizer, loader = harness.prepare(model, optimizer, loader)
    if isinstance(weighting.method, torch.nn.Module):
        weighting.method.to(harness.device)
    if weighting.stateful() is not None:
        harness.register(weighting.stateful())
    resumed_from = harness.state.epoch if harness.resume() else None
    steps_per_epoch = (
        len(loader) if config.max_steps_per_epoch <= 0 else min(len(loader), config.max_steps_per_epoch)
    )
    if groupings is None:
        groupings = groupings_for(train_set, config.fairness.attributes, skin_tone=config.fairness.skin_tone)
    objectives = _objectives(config, groupings)
    params = [p for p in model.parameters() if p.requires_grad] + weighting.parameters()

    for epoch in harness.epochs(config.epochs):
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        model.train()
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            progress_t = epoch + harness.state.step_in_epoch / steps_per_epoch
            generator = torch_generator(
                config.seed, "step", epoch, harness.state.step_in_epoch, device=harness.device
            )
            record = parser_step(
                harness, model, objectives, weighting, batch, groupings, params, progress_t, generator
            )
            harness.step(optimizer, params, batch)
            harness.log_step(record)
        weighting.end_epoch()

    table = _weights_table(weighting, harness.state.history, schedule, config.epochs)
    if harness.is_main_process:
        _write_model(Path(model_dir), harness.unwrap(model), config, harness.state.history, table)
    harness.wait()
    return TrainResult(
        model_dir=Path(model_dir),
        history=harness.state.history,
        resumed_from_epoch=resumed_from,
        weights_table=table,
        tracking_id=harness.state.tracking_id,
    )
