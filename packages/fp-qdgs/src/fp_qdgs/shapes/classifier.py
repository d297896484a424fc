"""The shapes classifier of the public QDGS code (triangle vs square) and its balanced group accuracy.

Three 3x3 convolutions (padding 1, ReLU), channels 3 -> 16 -> 32 -> 64, each followed by 2x2 max-pooling
(128 -> 64 -> 32 -> 16), then ``64 * 16 * 16 = 16384 -> 128`` (ReLU) ``-> 1`` and a sigmoid: the probability
that the image is a square. Trained with binary cross-entropy, Adam (lr 1e-3), batches of 128. (The public
code also rotates each batch at random by up to 180 degrees while training; that is left to the caller.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fp_core.logging import LogFn, null_log
from fp_core.seeds import torch_generator
from fp_metrics.classification import group_accuracy, mean_group_accuracy

__all__ = ["ShapeClassifier", "balanced_group_accuracy", "predict_shapes", "train_classifier"]


class ShapeClassifier(nn.Module):
    """``images [B, 3, 128, 128] -> P(square) [B]``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(64 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 128, 128] -> [B]`` probabilities in ``(0, 1)``."""
        return torch.sigmoid(self.head(self.features(images))).squeeze(1)


def train_classifier(
    model: ShapeClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    log: LogFn = null_log,
    device: str | torch.device = "cpu",
) -> list[float]:
    """BCE + Adam on ``images [N, 3, 128, 128]`` and ``labels [N]`` (1 = square); the mean loss per epoch.

    Call it again on other data to fine-tune (the paper trains on biased real data, then fine-tunes on QDGS
    samples, each with a fresh Adam). ``log({"classifier/loss": ...}, epoch)`` at every epoch end.
    """
    if len(images) != len(labels):
        raise ValueError(f"images ({len(images)}) and labels ({len(labels)}) differ in length")
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=torch_generator(seed, "classifier", epoch))
        total = 0.0
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            x, y = images[idx].to(device), labels[idx].to(device).float()
            loss = F.binary_cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / max(len(images), 1))
        log({"classifier/loss": losses[-1]}, epoch + 1)
    model.eval()
    return losses


@torch.no_grad()
def predict_shapes(
    model: ShapeClassifier, images: torch.Tensor, *, batch_size: int = 256, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Predicted shape labels ``[N]`` int64 (1 = square when ``P(square) >= 0.5``)."""
    model.to(device).eval()
    out = [model(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return (torch.cat(out) >= 0.5).long() if out else torch.zeros(0, dtype=torch.long)


def balanced_group_accuracy(pred: torch.Tensor, shape: torch.Tensor, colour: torch.Tensor) -> float:
    """Mean of the four colour x shape group accuracies (``fp_metrics`` ``mean_group_accuracy``).

    ``pred, shape, colour [N]``; group ``2 * shape + colour``. Every group must be present (evaluate on a
    balanced set, bias 0.5, so that each group counts equally by construction as well).
    """
    groups = 2 * shape.long() + colour.long()
    acc = group_accuracy(pred, shape, groups, num_groups=4)
    if torch.isnan(acc).any():
        missing = [int(g) for g in torch.nonzero(torch.isnan(acc)).reshape(-1)]
        raise ValueError(f"colour x shape groups {missing} are empty; evaluate on a set with all four groups")
    return mean_group_accuracy(pred, shape, groups, num_groups=4)
