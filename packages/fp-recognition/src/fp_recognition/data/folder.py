"""Image-folder training sets: ``<root>/<identity>/<image>`` and AdaFace's ``<root>/imgs/<identity>/<image>``.

Both layouts are supported; when ``<root>/imgs`` is a directory it is taken as the identity root (AdaFace's
``convert.py`` writes ``imgs/<label>/<index>.jpg`` from a ``.rec``). Identities are the sub-folders in sorted
(lexicographic) name order, labels ``0 .. K-1`` in that order (what torchvision's ``ImageFolder``, used by
AdaFace, does); images are the files with a suffix in :data:`IMAGE_EXTENSIONS`, sorted by name. Hidden entries
(starting with ".") are skipped. An identity folder without an image is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset

from fp_recognition.data.errors import DataFormatError
from fp_recognition.data.images import IMAGE_EXTENSIONS, image_to_tensor, load_image_file, normalise

__all__ = ["ImageFolderDataset", "identity_root"]


def identity_root(root: str | os.PathLike[str]) -> Path:
    """``<root>/imgs`` when it is a directory (AdaFace's layout), else ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, "image folder not found")
    return root / "imgs" if (root / "imgs").is_dir() else root


class ImageFolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """``dataset[i] -> (image [3, S, S] float32, label int)`` from identity folders (module doc).

    Args:
        root: the dataset folder (either layout).
        transform: applied to the ``[0, 1]`` image before normalisation (e.g. :class:`FaceAugment`).
        image_size: resize to ``S x S`` when the stored size differs; ``None`` keeps it.
        normalise: map ``[0, 1]`` to ``[-1, 1]``.

    Attributes:
        identities: folder names, index = label. samples: ``(path, label)`` pairs. num_classes: K.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        image_size: int | None = None,
        normalise: bool = True,
    ) -> None:
        self.root = identity_root(root)
        self.transform, self.image_size, self.normalise = transform, image_size, normalise
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise DataFormatError(self.root, "no identity folder")
        self.identities: list[str] = [p.name for p in folders]
        self.samples: list[tuple[Path, int]] = []
        for label, folder in enumerate(folders):
            files = sorted(
                p
                for p in folder.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not files:
                raise DataFormatError(folder, f"identity folder has no image ({', '.join(IMAGE_EXTENSIONS)})")
            self.samples.extend((f, label) for f in files)
        self.num_classes = len(folders)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        x = image_to_tensor(load_image_file(path), self.image_size)
        if self.transform is not None:
            x = self.transform(x)
        return (normalise(x) if self.normalise else x), label
