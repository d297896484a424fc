"""What the training loader draws: a shuffle that depends only on ``(seed, epoch)`` and augmented views.

Both make a resumed run see exactly the batches an uninterrupted one sees: the order of epoch ``e`` is
``randperm`` under ``torch_generator(seed, "order", e)``, and image ``i`` of epoch ``e`` is augmented with
``torch_generator(seed, "augment", e, i)`` (independent of DataLoader workers and batch position).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from fp_core.sampling import EpochPermutation
from fp_core.seeds import torch_generator
from fp_recognition.data import FaceAugment
from fp_recognition.train.config import AugmentConfig

__all__ = ["EpochPermutation", "TrainingView", "describe_items"]


class TrainingView(Dataset[tuple[torch.Tensor, int, int]]):
    """``view[i] -> (image [3, S, S] in [-1, 1], label, i)``: ``dataset[i]`` resized and augmented.

    Args:
        dataset: yields ``(image [3, H, W] in [-1, 1], label)`` (:class:`~fp_recognition.data.RecordDataset`,
            :class:`~fp_recognition.data.ImageFolderDataset`).
        image_size: S (images of another size are bilinearly resized).
        augment: the augmentation settings (``enabled: False``: none).
        seed: root of the per-image augmentation streams.
    """

    def __init__(self, dataset: Any, image_size: int, augment: AugmentConfig, seed: int) -> None:
        self.dataset, self.image_size, self.seed, self.epoch = dataset, image_size, seed, 0
        self.augment = (
            FaceAugment(
                flip_prob=augment.flip_prob,
                crop_prob=augment.crop_prob,
                low_res_prob=augment.low_res_prob,
                photometric_prob=augment.photometric_prob,
            )
            if augment.enabled
            else None
        )

    def set_epoch(self, epoch: int) -> None:
        """Augment with epoch ``epoch``'s streams."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.dataset[index]
        if tuple(image.shape[1:]) != (self.image_size, self.image_size):
            image = torch.nn.functional.interpolate(
                image[None], size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )[0]
        if self.augment is not None:
            generator = torch_generator(self.seed, "augment", self.epoch, int(index))
            image = self.augment(image * 0.5 + 0.5, generator) * 2.0 - 1.0
        return image, int(label), int(index)


def _item_name(dataset: Any, index: int) -> str:
    samples = getattr(dataset, "samples", None)
    if samples is not None:  # an image folder: (path, label)
        return str(samples[index][0])
    keys = getattr(dataset, "record_keys", None)
    reader = getattr(dataset, "reader", None)
    if keys is not None and reader is not None:  # a .rec set
        return f"{Path(reader.rec_path)}: record {keys[index]}"
    return f"item {index}"


def describe_items(dataset: Any) -> Any:
    """``batch -> the images it holds`` (files or records) for the harness's error messages."""

    def describe(batch: Any) -> list[str]:
        return [_item_name(dataset, int(i)) for i in batch[2]]

    return describe
