"""The classifier-repair experiment of the QDGS paper's shapes proof of concept.

One *trial* (a colour bias ``b`` and a seed): train a :class:`ShapeClassifier` on the biased real set for
``base_epochs`` (the paper's 20) and measure its balanced group accuracy on a balanced set (arm ``"real"``);
then, from a copy of that model and with a fresh Adam, fine-tune on each synthetic set given (e.g. QDGS's
samples ``"qd"`` and the random baseline's ``"random"``) for ``finetune_epochs`` (the paper's 30) and measure
again. Every arm of a trial fine-tunes from the same base model with the same seed, so arms are paired.

:func:`summarise_trials` gives, over trials, each arm's mean and standard error and the paired differences
(``qd - real``, ``qd - random`` by default) with theirs, and a verdict: a mean difference beyond two standard
errors is ``"higher"`` / ``"lower"``, anything else ``"no detectable difference"``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import torch

from fp_core.logging import LogFn, null_log
from fp_core.seeds import derive_seed
from fp_metrics.classification import group_accuracy
from fp_qdgs.shapes.classifier import (
    ShapeClassifier,
    balanced_group_accuracy,
    predict_shapes,
    train_classifier,
)
from fp_qdgs.shapes.render import ShapesData, make_shapes

__all__ = [
    "ArmSummary",
    "Difference",
    "RepairConfig",
    "TrialResult",
    "make_repair_data",
    "run_repair_trial",
    "summarise_trials",
    "verdict",
]

REAL = "real"


@dataclass(frozen=True)
class RepairConfig:
    """Epochs, batch size and learning rate of the base training and of every fine-tuning (the paper's)."""

    base_epochs: int = 20
    finetune_epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    eval_batch: int = 256
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("base_epochs", "finetune_epochs", "batch_size", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class TrialResult:
    """One trial: balanced group accuracy per arm (``"real"`` and each synthetic set), the four group
    accuracies per arm (groups ``2 * shape + colour``: red triangle, blue triangle, red square, blue square),
    and the training losses per arm."""

    seed: int
    bias: float | None
    accuracy: dict[str, float]
    group_accuracy: dict[str, list[float]]
    losses: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def make_repair_data(bias: float, seed: int, *, n_train: int, n_test: int) -> tuple[ShapesData, ShapesData]:
    """The biased real training set (``bias``) and a balanced test set (bias 0.5), from separate streams."""
    train = make_shapes(n_train, bias, derive_seed(seed, "repair", "train"))
    test = make_shapes(n_test, 0.5, derive_seed(seed, "repair", "test"))
    return train, test


def _progress_log(log: LogFn, prefix: str, epochs: int, show: bool) -> tuple[LogFn, object]:
    from tqdm.auto import tqdm

    bar = tqdm(total=epochs, desc=prefix, disable=not show, leave=False)

    def inner(metrics: Mapping[str, float], step: int) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{metrics.get('classifier/loss', float('nan')):.4f}")
        log({f"repair/{prefix}/{name}": value for name, value in metrics.items()}, step)

    return inner, bar


def _evaluate(
    model: ShapeClassifier, test: ShapesData, config: RepairConfig, device
) -> tuple[float, list[float]]:
    pred = predict_shapes(model, test.images, batch_size=config.eval_batch, device=device)
    groups = 2 * test.shape + test.colour
    per_group = group_accuracy(pred, test.shape, groups, num_groups=4)
    return balanced_group_accuracy(pred, test.shape, test.colour), [float(a) for a in per_group]


def _train(model, images, labels, epochs, seed, name, config, log, device) -> list[float]:
    inner, bar = _progress_log(log, name, epochs, config.progress)
    try:
        return train_classifier(
            model,
            images,
            labels,
            epochs=epochs,
            seed=seed,
            batch_size=config.batch_size,
            lr=config.lr,
            log=inner,
            device=device,
        )
    finally:
        bar.close()  # type: ignore[attr-defined]


def run_repair_trial(
    train: ShapesData,
    test: ShapesData,
    synthetic: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    seed: int,
    config: RepairConfig | None = None,
    bias: float | None = None,
    log: LogFn = null_log,
    device: str | torch.device = "cpu",
) -> TrialResult:
    """One trial of the repair protocol (module docstring).

    Args:
        train: the biased real set (``images [N, 3, 128, 128]``, ``shape`` labels used).
        test: a balanced set with all four colour x shape groups.
        synthetic: arm name -> ``(images [M, 3, 128, 128] in [0, 1], shape labels [M])``; not ``"real"``.
        seed: seeds the base model's initialisation and every arm's shuffling.
        bias: recorded in the result.
        log: ``log({"repair/<arm>/classifier/loss": ...}, epoch)``.
    """
    config = config or RepairConfig()
    if REAL in synthetic:
        raise ValueError(f"'{REAL}' names the base arm; give the synthetic sets other names")
    for name, (images, labels) in synthetic.items():
        if images.dim() != 4 or images.shape[1:] != (3, 128, 128) or len(images) != len(labels):
            raise ValueError(
                f"synthetic set {name!r}: expected images [M, 3, 128, 128] and labels [M], got "
                f"{tuple(images.shape)} and {tuple(labels.shape)}"
            )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "repair", "init"))
        base = ShapeClassifier()
    losses = {
        REAL: _train(base, train.images, train.shape, config.base_epochs, seed, REAL, config, log, device)
    }
    accuracy, groups = {}, {}
    accuracy[REAL], groups[REAL] = _evaluate(base, test, config, device)
    for name, (images, labels) in synthetic.items():
        model = copy.deepcopy(base)
        ft_seed = derive_seed(seed, "repair", "finetune")
        losses[name] = _train(
            model, images, labels.long(), config.finetune_epochs, ft_seed, name, config, log, device
        )
        accuracy[name], groups[name] = _evaluate(model, test, config, device)
    return TrialResult(seed=seed, bias=bias, accuracy=accuracy, group_accuracy=groups, losses=losses)


@dataclass(frozen=True)
class ArmSummary:
    """Mean and standard error (sample std / sqrt(n); NaN for n < 2) of one arm over ``n`` trials."""

    mean: float
    se: float
    n: int


@dataclass(frozen=True)
class Difference:
    """Paired difference ``first - second`` over trials, its standard error and :func:`verdict`."""

    first: str
    second: str
    mean: float
    se: float
    n: int
    verdict: str


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def verdict(mean: float, se: float) -> str:
    """``"higher"`` when ``mean > 2 se``, ``"lower"`` when ``mean < -2 se``, else ``"no detectable difference"``
    (also when ``se`` is NaN, i.e. fewer than two trials)."""
    if math.isnan(se) or math.isnan(mean):
        return "no detectable difference"
    if mean > 2 * se:
        return "higher"
    if mean < -2 * se:
        return "lower"
    return "no detectable difference"


def summarise_trials(
    results: Sequence[TrialResult | Mapping[str, float]],
    comparisons: Sequence[tuple[str, str]] = (("qd", REAL), ("qd", "random")),
) -> dict[str, dict]:
    """``{"arms": {arm: ArmSummary}, "differences": {"qd-real": Difference, ...}}`` over ``results`` (trial
    results or plain ``arm -> accuracy`` mappings); a comparison whose arms are not in every trial is left out."""
    if not results:
        raise ValueError("no trials to summarise")
    rows = [dict(r.accuracy) if isinstance(r, TrialResult) else dict(r) for r in results]
    arms = [a for a in rows[0] if all(a in row for row in rows)]
    summary = {a: ArmSummary(*_mean_se([row[a] for row in rows]), n=len(rows)) for a in arms}
    differences = {}
    for first, second in comparisons:
        if first in arms and second in arms:
            mean, se = _mean_se([row[first] - row[second] for row in rows])
            differences[f"{first}-{second}"] = Difference(
                first, second, mean, se, len(rows), verdict(mean, se)
            )
    return {"arms": summary, "differences": differences}
