"""(label map, image) pairs read from a parsing export, for the Pix2PixHD trainer and generation.

The export (written by the parsing stage; this module reads its files and manifest, never its code) holds
``<export>/<split>/{labels,color,images}/<i>.png`` for each split of ``manifest["splits"]`` and
``<export>/<manifest["perturbed"]["sets"][name]["dir"]>/{labels,color,images}/<i>.png`` for the perturbed
test sets (``name`` = ``<kind>-<severity>``, the indices of ``manifest["perturbed"]["split"]``). The manifest
(``fp_core.manifest``, kind ``"parsing-export"``) is the source of truth for which indices a split has.

Each item is ``(labels [H, W] int64, image [3, H, W] float in [-1, 1], name)``, ``name`` the label file's
path relative to the export (``"test/labels/12.png"``), unique across splits and sets. With ``resolution``
the pair is resized to ``resolution x resolution``: labels by nearest neighbour only (no new ids appear),
images with PIL's bicubic filter (which widens its support when shrinking, i.e. antialiases). With ``flip``
both are mirrored left-right for a pseudo-random half of the items, chosen from ``(seed, epoch, item)`` so
that a resumed run sees the same flips (the trainer calls :meth:`PairedMaps.set_epoch`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fp_core.manifest import MANIFEST_FILENAME, read_manifest
from fp_core.seeds import derive_seed

__all__ = ["EXPORT_KIND", "PairedMaps", "PairedMapsError"]

EXPORT_KIND = "parsing-export"


class PairedMapsError(ValueError):
    """A split missing from the export's manifest, a missing file, or a label map that does not fit."""


def _split_dirs(export_dir: Path, manifest: dict[str, Any], name: str) -> tuple[str, list[int]]:
    """``(folder relative to the export, indices)`` of a split or perturbed set called ``name``."""
    file = export_dir / MANIFEST_FILENAME
    splits = manifest.get("splits") or {}
    if name in splits:
        return name, [int(i) for i in splits[name]["indices"]]
    perturbed = manifest.get("perturbed") or {}
    sets = perturbed.get("sets") or {}
    key = name.removeprefix("perturbed/")
    if key in sets:
        source = perturbed.get("split")
        if source not in splits:
            raise PairedMapsError(
                f"{file}: 'perturbed.split' is {source!r}, which is not a key of 'splits' {sorted(splits)}"
            )
        return str(sets[key]["dir"]), [int(i) for i in splits[source]["indices"]]
    raise PairedMapsError(
        f"{file}: no split {name!r}: 'splits' has {sorted(splits)} and 'perturbed.sets' has {sorted(sets)}"
    )


def _read_labels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        if image.mode not in ("L", "P", "I", "I;16"):
            raise PairedMapsError(f"{path}: a label map must be a grayscale class-id PNG, got mode {image.mode}")
        labels = np.asarray(image)
    return labels


def _read_image(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


class PairedMaps(Dataset):
    """The pairs of one or more splits (or perturbed sets) of a parsing export.

    Args:
        export_dir: the export directory (holding ``manifest.json``).
        splits: a split name (``"train"``), a perturbed set (``"blur-0.5"`` or ``"perturbed/blur-0.5"``), or a
            sequence of them (concatenated in the given order).
        label_nc: class ids must be below this (default: the manifest's ``num_classes``).
        resolution: resize every pair to ``resolution x resolution`` (None: as exported).
        flip: mirror a seeded half of the pairs each epoch.
        seed: seeds the flips.

    Attributes:
        palette: ``uint8 [num_classes, 3]`` from the manifest (for colouring maps), or None.
        names: the items' names, in order.
    """

    def __init__(
        self,
        export_dir: str | os.PathLike[str],
        splits: str | Sequence[str] = "train",
        *,
        label_nc: int | None = None,
        resolution: int | None = None,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        self.root = Path(export_dir)
        self.manifest = read_manifest(self.root, EXPORT_KIND, required=("splits",), max_version=1)
        self.splits = [splits] if isinstance(splits, str) else list(splits)
        if not self.splits:
            raise PairedMapsError(f"{self.root}: no split asked for")
        if resolution is not None and (isinstance(resolution, bool) or int(resolution) < 1):
            raise PairedMapsError(f"resolution must be a positive int or None, got {resolution!r}")
        self.label_nc = int(label_nc if label_nc is not None else self.manifest.get("num_classes", 256))
        self.resolution, self.flip, self.seed, self.epoch = resolution, flip, seed, 0
        palette = self.manifest.get("palette")
        self.palette = None if palette is None else np.asarray(palette, dtype=np.uint8)
        self.names: list[str] = []
        for split in self.splits:
            folder, indices = _split_dirs(self.root, self.manifest, split)
            self.names += [f"{folder}/labels/{i}.png" for i in indices]
        for name in self.names:
            for path in (self.root / name, self._image_path(name)):
                if not path.is_file():
                    raise PairedMapsError(f"{path} is missing; the manifest {self.root / MANIFEST_FILENAME} lists it")

    def _image_path(self, name: str) -> Path:
        folder, _, file = name.rpartition("/labels/")
        return self.root / folder / "images" / file

    def set_epoch(self, epoch: int) -> None:
        """Select the flips of ``epoch``."""
        self.epoch = int(epoch)

    def flipped(self, item: int) -> bool:
        """Whether ``item`` is mirrored in the current epoch."""
        return self.flip and derive_seed(self.seed, "flip", self.epoch, item) % 2 == 1

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        name = self.names[item]
        label_path = self.root / name
        labels, image = _read_labels(label_path), _read_image(self._image_path(name))
        if labels.ndim != 2 or labels.shape != image.shape[:2]:
            raise PairedMapsError(
                f"{label_path}: label map {labels.shape} does not match its image {image.shape[:2]}"
            )
        if labels.size and int(labels.max()) >= self.label_nc:
            raise PairedMapsError(
                f"{label_path}: class id {int(labels.max())} >= label_nc={self.label_nc}; the map holds ids "
                f"the generator has no channel for (set label_nc to at least {int(labels.max()) + 1})"
            )
        size = self.resolution
        if size is not None and labels.shape != (size, size):
            labels = np.asarray(Image.fromarray(labels).resize((size, size), Image.Resampling.NEAREST))
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))
        if self.flipped(item):
            labels, image = labels[:, ::-1], image[:, ::-1]
        label_tensor = torch.from_numpy(np.array(labels, dtype=np.int64))
        image_tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 127.5 - 1.0
        return label_tensor, image_tensor, name
