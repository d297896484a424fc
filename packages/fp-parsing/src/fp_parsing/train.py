"""Training of one parser variant: homotopy-scheduled or MPD-weighted Dice + robustness + fairness.

The loop reads like a recipe::

    config = TrainConfig.from_dict(params)            # epochs, schedule, robustness, fairness, ...
    result = train_parser(config, CelebAMaskHQ(root, "train", hflip=True), "model/",
                          checkpoint_dir="ckpt/", log=my_logger)

It runs under accelerate, so the same code trains on the CPU here and on many GPUs with
``accelerate launch``. Every epoch ends with an atomic checkpoint; a killed run started again with the same
arguments resumes from the last one and ends with the same weights as an uninterrupted run, because every
random choice (shuffling, flips, perturbations, logit noise) is derived from ``(seed, epoch, step)``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fp_core.atomic import atomic_output_dir, write_json
from fp_parsing.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from fp_parsing.groups import build_groupings, group_ids
from fp_parsing.losses import OBJECTIVE_MINIMA, ParsingObjectives, combine
from fp_parsing.model import build_parser, load_parser, save_parser
from fp_parsing.perturbations import PERTURBATIONS
from fp_parsing.schedules import build_schedule, schedule_csv, schedule_table

__all__ = [
    "EpochPermutationSampler",
    "FairnessConfig",
    "LogFn",
    "RobustnessConfig",
    "TrainConfig",
    "TrainResult",
    "load_parser",
    "step_seed",
    "train_parser",
]

LogFn = Callable[[Mapping[str, float], int], None]
WEIGHTINGS = ("schedule", "mpd")
MPD_LOSSES = ("log", "raw")
# A loss at or below this is treated as this value when MPD runs on log-losses (its gradient is then ~0 anyway).
LOG_LOSS_FLOOR = 1e-12


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
        mode: ``"output"`` (noise on the logits of the one forward, the paper's Algorithm 1) or ``"input"``
            (a share of the batch perturbed with the suite and passed through the model once more).
        noise_std: standard deviation of the logit noise in output mode.
        input_share: share of the batch perturbed in input mode.
        max_severity: severities are drawn uniformly from ``[0, max_severity]`` in input mode.
        perturbations: the perturbation kinds drawn from in input mode.
    """

    mode: str = "output"
    noise_std: float = 1.0
    input_share: float = 0.25
    max_severity: float = 0.8
    perturbations: list[str] = field(default_factory=lambda: list(PERTURBATIONS))

    def __post_init__(self) -> None:
        if self.mode not in ("output", "input"):
            raise ConfigError(f"robustness.mode must be 'output' or 'input', got {self.mode!r}")
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
        schedule: the homotopy schedule spec (:func:`fp_parsing.schedules.build_schedule`).
        weighting: ``"schedule"`` (α, β, γ from the schedule) or ``"mpd"`` (adaptive weights from
            fp-gradagg's MPD fairness over the three objectives, per step; the schedule is then unused).
        mpd_path: ``"fast"`` or ``"naive"`` per-objective gradients for MPD.
        mpd_losses: what MPD balances: ``"log"`` (default) the log-losses ``log(L_i - min_i)``
            (:data:`fp_parsing.losses.OBJECTIVE_MINIMA`), whose gradients ``∇L_i / (L_i - min_i)`` do not
            depend on each loss's units, or ``"raw"`` the losses themselves. MPD weights follow gradient size,
            and the fairness loss (a variance of mIoU, ~1e-4) has a gradient orders of magnitude below Dice's:
            on raw losses MPD hands it almost all of the step and accuracy collapses.
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
    schedule: dict[str, Any] = field(default_factory=lambda: {"kind": "constant"})
    weighting: str = "schedule"
    mpd_path: str = "fast"
    mpd_losses: str = "log"
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
            raise ConfigError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.mpd_path not in ("fast", "naive"):
            raise ConfigError(f"mpd_path must be 'fast' or 'naive', got {self.mpd_path!r}")
        if self.mpd_losses not in MPD_LOSSES:
            raise ConfigError(f"mpd_losses must be one of {MPD_LOSSES}, got {self.mpd_losses!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a params mapping; unknown keys raise :class:`ConfigError` naming them."""
        return _from_mapping(cls, dict(values), "parsing training settings")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (for manifests and MLflow params)."""
        return dataclasses.asdict(self)

    def model_config(self) -> dict[str, Any]:
        """The settings that rebuild the network (what :func:`load_parser` needs)."""
        return {
            "encoder_name": self.encoder_name,
            "encoder_weights": self.encoder_weights,
            "num_classes": self.num_classes,
        }


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_parser` returns.

    Attributes:
        model_dir: where the model was written.
        history: per-epoch means of every logged value (``epoch/loss``, ``epoch/weights/alpha``, ...).
        resumed_from_epoch: the first epoch this call trained after resuming, None for a fresh run.
        weights_table: the (α, β, γ) used per epoch as a :func:`fp_parsing.schedules.schedule_table`: the
            schedule's values, or for ``weighting: mpd`` the epoch means of MPD's weight shares.
    """

    model_dir: Path
    history: list[dict[str, float]]
    resumed_from_epoch: int | None
    weights_table: dict[str, list[float]]


def step_seed(seed: int, epoch: int, step: int) -> int:
    """The seed of the random choices at one training step (a fixed, collision-free mix of the three)."""
    return (seed * 1_000_003 + epoch * 100_003 + step) % (2**63 - 1)


class EpochPermutationSampler(Sampler[int]):
    """A shuffling sampler whose order depends only on ``(seed, epoch)``, so a resumed run sees the same
    batches as an uninterrupted one."""

    def __init__(self, num_items: int, seed: int) -> None:
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(step_seed(self.seed, self.epoch, 0) + 7)
        return iter(torch.randperm(self.num_items, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_items


def _skin_tone_group_count(dataset: Any) -> int:
    names = getattr(dataset, "skin_tone_groups", None)
    return len(names) if names else 0


def _mpd_step(
    terms: Mapping[str, torch.Tensor],
    params: Sequence[torch.Tensor],
    path: str,
    losses_kind: str,
    scale: float,
) -> tuple[Any, list[float]]:
    """Write MPD's direction over (accuracy, robustness, fairness) into ``.grad``.

    ``losses_kind="log"`` balances ``log(L_i - min_i)`` (each loss divided by its detached distance from its
    infimum, so its gradient is ``∇L_i / (L_i - min_i)``); ``"raw"`` the losses as they are. ``scale`` is the
    AMP loss scale (1 without a scaler): the losses are multiplied by it and fp-gradagg solves on the unscaled
    Gramian.

    Returns:
        fp-gradagg's ``BackwardResult`` and the weights in effect on the raw losses ``[3]``
        (``w_i / (L_i - min_i)`` for log-losses), which are what a schedule's (α, β, γ) would be.
    """
    from fp_gradagg import MPD, backward

    names = ("accuracy", "robustness", "fairness")
    raw = [terms[name] for name in names]
    if losses_kind == "log":
        divisors = [
            max(float(loss.detach().float()) - OBJECTIVE_MINIMA[name], LOG_LOSS_FLOOR)
            for name, loss in zip(names, raw, strict=True)
        ]
    else:
        divisors = [1.0, 1.0, 1.0]
    balanced = [loss / divisor * scale for loss, divisor in zip(raw, divisors, strict=True)]
    result = backward(balanced, params, MPD(), path=path, grad_scale=scale)
    effective = [float(w) / divisor for w, divisor in zip(result.weights, divisors, strict=True)]
    return result, effective


def train_parser(
    config: TrainConfig,
    train_set: Dataset,
    model_dir: str | os.PathLike[str],
    *,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one parser and write it to ``model_dir`` (``model.safetensors``, config, history, schedule).

    Args:
        config: the run's settings.
        train_set: a dataset of dicts with ``image [3,H,W]``, ``mask [H,W]``, ``attributes [40]``,
            ``skin_tone []`` (like :class:`fp_parsing.data.CelebAMaskHQ`), with ``attribute_names``.
        model_dir: where the final model goes (replaced atomically at the end).
        checkpoint_dir: per-epoch checkpoints; an existing one is resumed from.
        log: ``log(metrics, step)`` callback (e.g. an MLflow run); called every step and every epoch.
        progress: show tqdm progress bars.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=config.cpu)
    checkpoint_dir = Path(checkpoint_dir)
    torch.manual_seed(config.seed)
    model = build_parser(
        encoder_name=config.encoder_name,
        encoder_weights=config.encoder_weights,
        num_classes=config.num_classes,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch, global_step, resumed_from = 0, 0, None
    latest = latest_checkpoint(checkpoint_dir)
    if latest is not None:
        checkpoint = load_checkpoint(latest)
        if checkpoint.extra.get("config") != config.to_dict():
            raise ConfigError(
                f"checkpoint {latest} was written with other settings; delete {checkpoint_dir} to start afresh"
            )
        model.load_state_dict(checkpoint.model_state)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        history = list(checkpoint.extra.get("history", []))
        global_step = int(checkpoint.extra.get("global_step", 0))
        start_epoch = resumed_from = checkpoint.epoch + 1

    sampler = EpochPermutationSampler(len(train_set), config.seed)  # type: ignore[arg-type]
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=config.num_workers,
    )
    if len(loader) == 0:
        raise ConfigError(
            f"the training split has {len(train_set)} images, fewer than batch_size={config.batch_size}"
        )  # type: ignore[arg-type]
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps_per_epoch = (
        len(loader) if config.max_steps_per_epoch <= 0 else min(len(loader), config.max_steps_per_epoch)
    )
    schedule = build_schedule(config.schedule, config.epochs)
    groupings = build_groupings(
        list(train_set.attribute_names),  # type: ignore[attr-defined]
        list(config.fairness.attributes),
        include_skin_tone=config.fairness.skin_tone and _skin_tone_group_count(train_set) > 0,
        num_skin_tone_groups=_skin_tone_group_count(train_set),
    )
    objectives = ParsingObjectives(
        num_classes=config.num_classes,
        robustness_mode=config.robustness.mode,
        noise_std=config.robustness.noise_std,
        input_share=config.robustness.input_share,
        perturbations=tuple(config.robustness.perturbations),
        max_severity=config.robustness.max_severity,
        fairness=config.fairness.kind,
        num_groups=groupings.num_groups,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    use_mpd = config.weighting == "mpd"

    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        if hasattr(
            loader, "set_epoch"
        ):  # accelerate's loader re-sets the sampler's epoch from its own counter
            loader.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        model.train()
        sums: dict[str, float] = {}
        bar = tqdm(
            loader,
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for step, batch in enumerate(bar):
            if step >= steps_per_epoch:
                break
            alpha, beta, gamma = schedule(epoch + step / steps_per_epoch)
            generator = torch.Generator(device=accelerator.device).manual_seed(
                step_seed(config.seed, epoch, step)
            )
            groups = group_ids(batch["attributes"], batch["skin_tone"], groupings)
            need = {"robustness": use_mpd or beta > 0, "fairness": use_mpd or gamma > 0}
            with accelerator.autocast():
                terms = objectives(
                    model, batch["image"], batch["mask"], groups, generator=generator, need=need
                )
            optimizer.zero_grad(set_to_none=True)
            record: dict[str, float] = {}
            if use_mpd:
                scaler = getattr(accelerator, "scaler", None)
                scale = float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0
                result, effective = _mpd_step(terms, params, config.mpd_path, config.mpd_losses, scale)
                names = ("alpha", "beta", "gamma")
                record.update(
                    {f"mpd/weight_{name}": float(w) for name, w in zip(names, result.weights, strict=True)}
                )
                record["mpd/residual"] = float(result.residual)
                # Logged weights/* are the shares of the weights in effect on the raw losses, comparable with the
                # schedules' (α, β, γ); mpd/weight_* are MPD's own weights on the objectives it balanced.
                total = sum(effective)
                alpha, beta, gamma = (w / total for w in effective) if total > 0 else (1.0, 0.0, 0.0)
                loss = combine({k: v.detach() for k, v in terms.items()}, (alpha, beta, gamma))
            else:
                loss = combine(terms, (alpha, beta, gamma))
                accelerator.backward(loss)
            optimizer.step()
            record.update(
                {
                    "train/loss": float(loss.detach()),
                    "train/accuracy": float(terms["accuracy"].detach()),
                    "train/robustness": float(terms["robustness"].detach()),
                    "train/fairness": float(terms["fairness"].detach()),
                    "weights/alpha": alpha,
                    "weights/beta": beta,
                    "weights/gamma": gamma,
                }
            )
            for key, value in record.items():
                sums[key] = sums.get(key, 0.0) + value
            if not all(math.isfinite(v) for v in record.values()):
                raise FloatingPointError(f"non-finite training value at epoch {epoch}, step {step}: {record}")
            if log is not None and accelerator.is_main_process:
                log(record, global_step)
            bar.set_postfix(loss=f"{record['train/loss']:.4f}")
            global_step += 1
        epoch_means = {
            "epoch/" + key.removeprefix("train/"): value / steps_per_epoch for key, value in sums.items()
        }
        epoch_means["epoch"] = float(epoch)
        history.append(epoch_means)
        if log is not None and accelerator.is_main_process:
            log({k: v for k, v in epoch_means.items() if k != "epoch"}, epoch)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            save_checkpoint(
                checkpoint_dir,
                epoch,
                accelerator.unwrap_model(model),
                optimizer,
                {"history": history, "global_step": global_step, "config": config.to_dict()},
            )

    model_dir = Path(model_dir)
    if use_mpd:  # the schedule is unused: record the weight shares MPD chose, epoch means
        table = {"epoch": [int(h["epoch"]) for h in history]}
        table.update(
            {name: [h[f"epoch/weights/{name}"] for h in history] for name in ("alpha", "beta", "gamma")}
        )
    else:
        table = schedule_table(schedule, config.epochs)
    if accelerator.is_main_process:
        with atomic_output_dir(model_dir) as tmp:
            save_parser(accelerator.unwrap_model(model), tmp, config.model_config())
            write_json(tmp / "history.json", history)
            write_json(tmp / "train_config.json", config.to_dict())
            (tmp / "schedule.csv").write_text(schedule_csv(table), encoding="utf-8")
    accelerator.wait_for_everyone()
    return TrainResult(
        model_dir=model_dir, history=history, resumed_from_epoch=resumed_from, weights_table=table
    )
