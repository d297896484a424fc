"""Learning-rate factor per optimiser step: linear warm-up, then multi-step, polynomial or constant decay."""

from __future__ import annotations

from collections.abc import Callable

from fp_recognition.train.config import RecognitionTrainConfig

__all__ = ["lr_factor"]


def lr_factor(config: RecognitionTrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """``step -> factor`` of the base learning rate (for ``torch.optim.lr_scheduler.LambdaLR``).

    ``step`` counts optimiser steps from 0; an epoch has ``steps_per_epoch`` of them. During the first
    ``warmup_epochs`` the factor rises linearly ``(step + 1) / warmup_steps``; then:

    * ``multistep``: ``gamma ** k``, ``k`` the milestones (in epochs) already reached, as AdaFace's
      ``MultiStepLR`` stepped per epoch;
    * ``poly``: ``(1 - (step - warmup) / (total - warmup)) ** poly_power`` (insightface's PolyScheduler);
    * ``constant``: 1.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    total = config.epochs * steps_per_epoch
    milestones = [m * steps_per_epoch for m in config.milestones]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "multistep":
            return config.gamma ** sum(step >= m for m in milestones)
        if config.schedule == "poly":
            span = max(total - warmup, 1)
            return max(0.0, 1.0 - (step - warmup) / span) ** config.poly_power
        return 1.0

    return factor
