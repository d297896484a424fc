"""``train_recognizer``: margin-loss training of one backbone on the fp-core harness.

Two stages as in QDGS: pretrain on a set P, then train on a set T starting from P's **backbone only**
(``init_backbone=path``); the head (class centres + margin, AdaFace's norm statistics) is always built fresh
for the dataset's identities. Every random choice derives from ``config.seed``: the backbone initialisation
``(seed, "init")``, the head ``(seed, "head")``, the order and augmentation (:mod:`.sampling`), so a killed
run started again with the same arguments resumes from its last checkpoint and ends with the weights of an
uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from fp_core.atomic import atomic_output_dir, write_json
from fp_core.logging import LogFn
from fp_core.seeds import derive_seed
from fp_recognition.backbones import build_backbone
from fp_recognition.train.config import ConfigError, RecognitionTrainConfig
from fp_recognition.train.head import MarginHead, build_margin
from fp_recognition.train.sampling import EpochPermutation, TrainingView, describe_items
from fp_recognition.train.schedule import lr_factor
from fp_recognition.train.weights import load_backbone_weights, read_backbone_config, save_backbone

__all__ = ["HEAD_WEIGHTS", "TrainResult", "build_models", "num_identities", "train_recognizer"]

HEAD_WEIGHTS = "head.safetensors"


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_recognizer` returns.

    Attributes:
        out_dir: the written model directory. history: per-epoch means (``epoch/loss``, ``epoch/accuracy``,
        ``epoch/lr``, ``epoch/xnorm``). resumed_from_epoch: the epoch this call resumed in (None: fresh).
        tracking_id: the run id stored in the checkpoints. num_classes: identities of the training set.
    """

    out_dir: Path
    history: list[dict[str, float]]
    resumed_from_epoch: int | None
    tracking_id: str | None
    num_classes: int


def num_identities(dataset: Any) -> int:
    """The dataset's number of identities (``num_classes``)."""
    count = getattr(dataset, "num_classes", None)
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"the training set must say its number of identities (num_classes), got {count!r}")
    return count


def _check_compatible(config: RecognitionTrainConfig, path: str | os.PathLike[str]) -> None:
    saved = read_backbone_config(path)
    wanted = config.backbone_config()
    different = {
        k: (saved.get(k), wanted[k])
        for k in ("name", "input_size", "embedding_size", "width")
        if saved.get(k) != wanted[k]
    }
    if different:
        raise ConfigError(f"init_backbone {path} was saved with other settings (saved, wanted): {different}")


def build_models(
    config: RecognitionTrainConfig, num_classes: int, init_backbone: str | os.PathLike[str] | None = None
) -> tuple[nn.Module, MarginHead]:
    """The backbone (fresh from ``(seed, "init")`` or loaded from ``init_backbone``) and a fresh head.

    The head is initialised from ``(seed, "head")`` whether or not a backbone is loaded, so loading a
    pretrained backbone never changes it.
    """
    torch.manual_seed(derive_seed(config.seed, "init"))
    backbone = build_backbone(
        config.backbone,
        input_size=config.input_size,
        embedding_size=config.embedding_size,
        dropout=config.dropout,
        width=config.width,
    )
    if init_backbone is not None:
        _check_compatible(config, init_backbone)
        load_backbone_weights(backbone, init_backbone)
    torch.manual_seed(derive_seed(config.seed, "head"))
    head = MarginHead(config.embedding_size, num_classes, build_margin(config))
    return backbone, head


def _batch_record(
    loss: torch.Tensor, head: MarginHead, labels: torch.Tensor, embeddings: torch.Tensor, lr: float
) -> dict[str, float]:
    """What one step logs: the loss, the top-1 accuracy of the plain cosines (no margin), the mean feature
    norm (insightface's XNorm) and the learning rate."""
    with torch.no_grad():
        cos = head.classifier(embeddings.float())
        accuracy = (cos.argmax(dim=1) == labels).float().mean()
        xnorm = embeddings.float().norm(dim=1).mean()
    return {
        "train/loss": float(loss),
        "train/accuracy": float(accuracy),
        "train/xnorm": float(xnorm),
        "train/lr": lr,
    }


def train_recognizer(
    config: RecognitionTrainConfig,
    dataset: Any,
    out_dir: str | os.PathLike[str],
    *,
    checkpoint_dir: str | os.PathLike[str],
    log: LogFn | None = None,
    progress: bool = True,
    init_backbone: str | os.PathLike[str] | None = None,
    tracking_id: str | None = None,
) -> TrainResult:
    """Train a backbone with a margin head on ``dataset`` and write it to ``out_dir``.

    Args:
        config: the run's settings.
        dataset: ``dataset[i] -> (image [3, H, W] in [-1, 1], label)`` with ``num_classes``
            (:class:`~fp_recognition.data.RecordDataset`, :class:`~fp_recognition.data.ImageFolderDataset`).
        out_dir: replaced atomically at the end by ``backbone.safetensors`` + ``backbone.json`` (see
            :func:`~fp_recognition.train.save_backbone`), ``head.safetensors``, ``history.json`` and
            ``train_config.json``.
        checkpoint_dir: the harness's checkpoints; the newest one is resumed from.
        log: ``log(metrics, step)`` (main process only), every step and every epoch.
        progress: progress bars.
        init_backbone: a saved backbone (directory or weights file) to start from; the head stays fresh.
        tracking_id: the tracking run id stored in the checkpoints (a resumed run keeps its own).
    """
    from safetensors.torch import save_file

    from fp_core.training import HarnessConfig, TrainingHarness

    num_classes = num_identities(dataset)
    run_config = {
        **config.to_dict(),
        "num_classes": num_classes,
        "init_backbone": None if init_backbone is None else str(init_backbone),
    }
    harness = TrainingHarness(
        HarnessConfig.from_settings(config, checkpoint_dir, progress=progress),
        run_config=run_config,
        log=log,
        tracking_id=tracking_id,
        describe_batch=describe_items(dataset),
    )
    backbone, head = build_models(config, num_classes, init_backbone)
    view = TrainingView(dataset, config.input_size, config.augment, config.seed)
    loader = DataLoader(
        view,
        batch_size=config.batch_size,
        sampler=EpochPermutation(len(view), config.seed),
        drop_last=True,
        num_workers=config.num_workers,
    )
    if len(loader) == 0:
        raise ConfigError(
            f"the training set has {len(view)} images, fewer than batch_size={config.batch_size}"
        )
    steps = len(loader) if config.max_steps_per_epoch <= 0 else min(len(loader), config.max_steps_per_epoch)
    params = [p for p in (*backbone.parameters(), *head.parameters()) if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, steps))
    backbone, head, optimizer, loader, scheduler = harness.prepare(
        backbone, head, optimizer, loader, scheduler
    )
    resumed = harness.resume()
    resumed_from = harness.state.epoch if resumed else None
    criterion = nn.CrossEntropyLoss()

    for epoch in harness.epochs(config.epochs):
        view.set_epoch(epoch)
        backbone.train()
        head.train()
        for batch in harness.batches(loader, epoch, config.max_steps_per_epoch):
            images, labels, _ = batch
            lr = float(optimizer.param_groups[0]["lr"])
            with harness.autocast():
                embeddings = backbone(images)
            logits = head(embeddings, labels)
            loss = criterion(logits, labels)
            harness.check_finite({"loss": loss}, batch)
            harness.backward(loss)
            harness.step(optimizer, params, batch, scheduler)
            record = _batch_record(loss.detach(), harness.unwrap(head), labels, embeddings.detach(), lr)
            harness.log_step(record)

    out_dir = Path(out_dir)
    history = harness.state.history
    if harness.is_main_process:
        plain_head = harness.unwrap(head)
        with atomic_output_dir(out_dir) as tmp:
            save_backbone(
                harness.unwrap(backbone),
                tmp,
                config.backbone_config(),
                extra={"loss": config.loss, "num_classes": num_classes, "seed": config.seed},
            )
            head_state = {k: v.detach().cpu().contiguous() for k, v in plain_head.state_dict().items()}
            save_file(head_state, str(tmp / HEAD_WEIGHTS))
            write_json(tmp / "history.json", history)
            write_json(tmp / "train_config.json", run_config)
    harness.wait()
    return TrainResult(out_dir, history, resumed_from, harness.state.tracking_id, num_classes)
