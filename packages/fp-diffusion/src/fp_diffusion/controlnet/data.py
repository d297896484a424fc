"""(image, condition, caption) items for ControlNet training, read from a parsing export.

:class:`ConditionedFaces` wraps :class:`fp_diffusion.data.PairedMaps` (which reads the export's
``<split>/{labels,images}/<i>.png`` and its manifest): the image is resized with PIL bicubic, the label map with
nearest neighbour only and then drawn in the face palette
(:func:`~fp_diffusion.controlnet.conditioning.labels_to_condition`); a flip mirrors both, chosen from
``(seed, epoch, item)`` (call :meth:`ConditionedFaces.set_epoch`, as the trainer does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import torch
from torch.utils.data import Dataset

from fp_diffusion.controlnet.conditioning import labels_to_condition
from fp_diffusion.controlnet.palette import NUM_FACE_CLASSES
from fp_diffusion.data import PairedMaps, PairedMapsError

__all__ = ["ConditionedFaces", "caption_for", "stack_items"]


def caption_for(name: str, captions: Mapping[str, str] | str) -> str:
    """The caption of item ``name`` (``"train/labels/12.png"``): ``captions`` itself when it is a string, else
    ``captions[name]``, else ``captions["12"]`` (the CelebAMask-HQ index, the file's stem).

    Raises ``KeyError`` naming the item and both keys tried.
    """
    if isinstance(captions, str):
        return captions
    if name in captions:
        return str(captions[name])
    stem = PurePosixPath(name).stem
    if stem in captions:
        return str(captions[stem])
    raise KeyError(f"no caption for {name!r}: the captions mapping has neither {name!r} nor {stem!r}")


class ConditionedFaces(Dataset):
    """ControlNet training items of one or more splits of a parsing export.

    Args:
        export_dir: the export directory (``manifest.json``, kind ``"parsing-export"``).
        splits: as :class:`~fp_diffusion.data.PairedMaps` (``"train"``, a perturbed set, or a sequence).
        resolution: the square training size ``R``.
        captions: one prompt for every item, or a mapping from the item name (or its index) to its caption;
            every item must have one (checked here, naming the first one missing).
        flip: mirror a seeded half of the items each epoch (image and map together).
        seed: seeds the flips.

    Items are dicts ``{"pixel_values": float [3, R, R] in [-1, 1], "conditioning_pixel_values": float
    [3, R, R] in [0, 1], "caption": str, "name": str}``.
    """

    def __init__(
        self,
        export_dir: str | os.PathLike[str],
        splits: str | Sequence[str] = "train",
        *,
        resolution: int,
        captions: Mapping[str, str] | str,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise PairedMapsError(f"resolution must be a positive int, got {resolution!r}")
        self.pairs = PairedMaps(
            export_dir, splits, label_nc=NUM_FACE_CLASSES, resolution=resolution, flip=flip, seed=seed
        )
        self.resolution = resolution
        self.captions: Mapping[str, str] | str = captions
        self.names = list(self.pairs.names)
        self._captions = [caption_for(name, captions) for name in self.names]

    def set_epoch(self, epoch: int) -> None:
        """Select the flips of ``epoch``."""
        self.pairs.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: int) -> dict[str, Any]:
        labels, image, name = self.pairs[item]
        condition = labels_to_condition(labels, self.resolution)[0]
        return {
            "pixel_values": image,
            "conditioning_pixel_values": condition,
            "caption": self._captions[item],
            "name": name,
        }


def stack_items(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate ConditionedFaces items: tensors stacked ``[B, ...]``, strings as lists."""
    return {
        "pixel_values": torch.stack([item["pixel_values"] for item in items]),
        "conditioning_pixel_values": torch.stack([item["conditioning_pixel_values"] for item in items]),
        "caption": [str(item["caption"]) for item in items],
        "name": [str(item["name"]) for item in items],
    }
