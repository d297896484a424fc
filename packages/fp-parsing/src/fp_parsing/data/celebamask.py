"""The CelebAMask-HQ dataset (the real release or ``fp data synth`` output, same layout, same code).

Construction reads the text files and checks cheaply that every image of the split and its mask folder
exist; images and masks are decoded lazily in ``__getitem__``. See docs/data.md for the layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fp_parsing.data.files import (
    SPLIT_IDS,
    AttributeTable,
    DataFormatError,
    read_attribute_file,
    read_identity_file,
    read_mapping_file,
    read_partition_file,
    read_skin_tone_file,
)
from fp_parsing.data.labels import check_label_order, flip_label_map, label_names, merge_part_masks
from fp_parsing.data.layout import (
    ATTRIBUTE_FILE,
    IDENTITY_FILE,
    IMAGE_DIR,
    MAPPING_FILE,
    MASK_DIR,
    PARTITION_FILE,
    SKIN_TONE_FILE,
    image_path,
    missing_file_message,
    part_mask_path,
)
from fp_parsing.data.masks import find_part_masks, read_part_mask
from fp_parsing.data.problems import DatasetProblem

__all__ = ["SPLITS", "CelebAMaskHQ", "flip_decision"]

SPLITS = ("train", "val", "test", "all")


def flip_decision(seed: int, epoch: int, index: int) -> bool:
    """Whether image ``index`` is flipped in ``epoch`` (probability 0.5, a pure function of its arguments)."""
    return bool(np.random.default_rng([seed, epoch, index]).random() < 0.5)


def _read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]``, or a :class:`DataFormatError` naming the file."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataFormatError(f"{path}: image does not decode ({error})", path=path) from error


def _resize_labels(label_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 label map to ``size = (H, W)``."""
    if label_map.shape == size:
        return label_map
    resized = Image.fromarray(label_map).resize((size[1], size[0]), Image.Resampling.NEAREST)
    return np.array(resized)  # a writable copy


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``[H, W, 3]`` -> float32 ``[3, H, W]`` in [0, 1]."""
    chw = np.ascontiguousarray(np.transpose(image, (2, 0, 1)))
    return torch.from_numpy(chw).float().div_(255.0)


class CelebAMaskHQ(Dataset[dict[str, torch.Tensor]]):
    """CelebAMask-HQ images with merged label maps, attributes, identities and skin-tone groups.

    Args:
        root: the dataset directory (layout in docs/data.md).
        split: ``"train"``, ``"val"``, ``"test"`` (CelebA's partition, joined through the mapping file) or
            ``"all"`` (every image of the attribute file; needs no partition file).
        image_size: resize images (bilinear, antialiased) and masks (nearest) to ``image_size²``; ``None``
            keeps the image's size (masks of another size are resized to it).
        label_order: a key of :data:`fp_parsing.data.LABEL_ORDERS`.
        hflip: flip each item horizontally with probability 0.5, decided by
            :func:`flip_decision` ``(seed, epoch, index)``; left/right part labels swap.
        seed: the flip seed (a non-negative integer).
        problems: for checking a dataset (:func:`fp_parsing.data.check_dataset`): when given, a missing
            listed image, a missing mask folder or a badly named mask file is appended to this list and its
            images are left out of the split (their indices in :attr:`excluded`) instead of raising.
            Errors of the text files still raise.

    Items are dicts of tensors: ``image`` float32 ``[3, H, W]`` in [0, 1], ``mask`` int64 ``[H, W]``,
    ``attributes`` int64 ``[A]`` of 0/1 in file order, ``skin_tone`` (group id, -1 unknown), ``identity``
    (-1 unknown) and ``index`` (the CelebA-HQ image index), the last three int64 scalars.

    With ``DataLoader(num_workers > 0, persistent_workers=True)`` workers keep the epoch they started with;
    call :meth:`set_epoch` before creating each epoch's iterator and leave workers non-persistent.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        image_size: int | None = None,
        label_order: str = "zllrunning",
        hflip: bool = False,
        seed: int = 0,
        *,
        problems: list[DatasetProblem] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
        check_label_order(label_order)
        if image_size is not None and (
            isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
        ):
            raise ValueError(f"image_size must be a positive integer or None, got {image_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"dataset root {self.root} does not exist or is not a folder; expected a directory in the "
                "CelebAMask-HQ layout (see docs/data.md)"
            )
        required = [IMAGE_DIR, MASK_DIR, ATTRIBUTE_FILE, MAPPING_FILE] + (
            [PARTITION_FILE] if split != "all" else []
        )
        for name in required:
            if not (self.root / name).exists():
                raise FileNotFoundError(missing_file_message(self.root, name))

        self.split = split
        self.image_size = image_size
        self.label_order = label_order
        self.hflip = bool(hflip)
        self.seed = seed
        self.epoch = 0
        self.class_names: list[str] = label_names(label_order)

        table = read_attribute_file(self.root / ATTRIBUTE_FILE)
        self.attribute_names: list[str] = list(table.names)
        mapping = read_mapping_file(self.root / MAPPING_FILE)
        self.indices: list[int] = self._split_indices(table, mapping)
        listed = list(self.indices)
        self._check_images_exist(table, problems)
        self._parts_of = find_part_masks(self.root / MASK_DIR, self.indices, problems=problems)
        self.indices = [index for index in self.indices if index in self._parts_of]
        #: images of the split left out because of a problem (only with a ``problems`` list), sorted
        self.excluded: tuple[int, ...] = tuple(sorted(set(listed) - set(self.indices)))

        rows = np.asarray([table.row_of[index] for index in self.indices], dtype=np.int64)
        #: attributes of this split's images, int64 ``[N, A]`` (0/1), row ``k`` for item ``k``
        self.attributes = torch.from_numpy(table.values[rows].astype(np.int64)).reshape(
            len(rows), len(table.names)
        )
        self.identities = torch.full((len(self.indices),), -1, dtype=torch.int64)
        if (self.root / IDENTITY_FILE).is_file():
            identity_of = read_identity_file(self.root / IDENTITY_FILE)
            self.identities = torch.tensor(
                [identity_of.get(mapping.get(index, ""), -1) for index in self.indices], dtype=torch.int64
            )
        self.skin_tones = torch.full((len(self.indices),), -1, dtype=torch.int64)
        self.skin_tone_groups: list[str] | None = None
        if (self.root / SKIN_TONE_FILE).is_file():
            tones = read_skin_tone_file(self.root / SKIN_TONE_FILE)
            self.skin_tone_groups = tones.groups
            self.skin_tones = torch.tensor(
                [tones.group_of.get(index, -1) for index in self.indices], dtype=torch.int64
            )

    def _split_indices(self, table: AttributeTable, mapping: dict[int, str]) -> list[int]:
        """The sorted indices of this split: attribute-file images whose CelebA file (by the mapping's
        ``orig_file``) has the split's value in ``list_eval_partition.txt``."""
        listed = sorted(int(index) for index in table.indices)
        if self.split == "all":
            return listed
        partition_path = self.root / PARTITION_FILE
        partition = read_partition_file(partition_path)
        wanted = SPLIT_IDS[self.split]
        members = []
        for index in listed:
            if index not in mapping:
                raise DataFormatError(
                    f"{self.root / MAPPING_FILE}: no row for image {index}.jpg "
                    f"(listed in {self.root / ATTRIBUTE_FILE}, line {table.line_of[index]})"
                )
            orig_file = mapping[index]
            if orig_file not in partition:
                raise DataFormatError(
                    f"{partition_path}: no row for {orig_file}, the CelebA file of image {index}.jpg "
                    f"according to {self.root / MAPPING_FILE}"
                )
            if partition[orig_file] == wanted:
                members.append(index)
        return members

    def _check_images_exist(self, table: AttributeTable, problems: list[DatasetProblem] | None) -> None:
        present = set(os.listdir(self.root / IMAGE_DIR))
        missing = [index for index in self.indices if f"{index}.jpg" not in present]
        if missing and problems is not None:
            for index in missing:
                where = f"listed in {self.root / ATTRIBUTE_FILE}, line {table.line_of[index]}"
                problems.append(
                    DatasetProblem(image_path(self.root, index), f"listed image missing ({where})")
                )
            self.indices = [index for index in self.indices if f"{index}.jpg" in present]
        elif missing:
            first = missing[0]
            raise FileNotFoundError(
                f"listed image missing: {image_path(self.root, first)} (listed in {self.root / ATTRIBUTE_FILE}, "
                f"line {table.line_of[first]}); {len(missing)} of the {len(self.indices)} images of split "
                f"{self.split!r} are missing"
            )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch the flip decisions depend on."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def is_flipped(self, k: int) -> bool:
        """Whether item ``k`` is flipped in the current epoch."""
        return self.hflip and flip_decision(self.seed, self.epoch, self.indices[k])

    def __len__(self) -> int:
        return len(self.indices)

    def part_mask_files(self, k: int) -> list[Path]:
        """The part-mask files item ``k`` is merged from, in part order (empty when it has none)."""
        index = self.indices[k]
        return [part_mask_path(self.root / MASK_DIR, index, part) for part in self._parts_of[index]]

    def _label_map(self, index: int, image_file: Path, image_hw: tuple[int, int]) -> np.ndarray:
        """Image ``index``'s part masks merged into a uint8 label map at the masks' own size ``[h, w]``."""
        masks: dict[str, np.ndarray] = {}
        first: Path | None = None
        for part in self._parts_of[index]:
            path = part_mask_path(self.root / MASK_DIR, index, part)
            mask = read_part_mask(path)
            if first is None:
                first, (h, w) = path, mask.shape
            elif mask.shape != (h, w):
                raise DataFormatError(
                    f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but {first} is {w}x{h}; "
                    "all part masks of an image must have one size",
                    path=path,
                )
            masks[part] = mask
        if first is None:
            return np.zeros(image_hw, dtype=np.uint8)
        height, width = image_hw
        if (h, w) != (height, width) and not (h == w and height == width):
            raise DataFormatError(
                f"{first}: mask is {w}x{h} but image {image_file} is {width}x{height}; part masks must have "
                "the image's size, or be square for a square image (like the release's 512x512 masks for "
                "1024x1024 images)",
                path=first,
            )
        return merge_part_masks(masks, self.label_order)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= k < len(self):
            raise IndexError(f"item {k} out of range for a split of {len(self)} images")
        k = k % len(self)
        index = self.indices[k]
        image_file = image_path(self.root, index)
        image = _read_image(image_file)
        label_map = self._label_map(index, image_file, image.shape[:2])
        size = (self.image_size, self.image_size) if self.image_size is not None else image.shape[:2]
        if image.shape[:2] != size:
            image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR))
        label_map = _resize_labels(label_map, size)
        if self.is_flipped(k):
            image = image[:, ::-1]
            label_map = flip_label_map(label_map, self.label_order)
        return {
            "image": _image_tensor(image),
            "mask": torch.from_numpy(np.ascontiguousarray(label_map)).long(),
            "attributes": self.attributes[k].clone(),
            "skin_tone": self.skin_tones[k].clone(),
            "identity": self.identities[k].clone(),
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def __repr__(self) -> str:
        return (
            f"CelebAMaskHQ(root={str(self.root)!r}, split={self.split!r}, images={len(self)}, "
            f"image_size={self.image_size}, label_order={self.label_order!r}, hflip={self.hflip})"
        )
