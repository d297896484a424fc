"""``HumanScenes``: a torch Dataset over the FairHuman data layout (docs/fairhuman.md, "Data layout").

Two sources give the same items:

* an image folder with ``metadata.jsonl`` (one JSON object per line: ``file_name``, ``text``, ``face_boxes``,
  ``hand_boxes``, ``conditions`` ``{name: relative path}``; extra keys are ignored), which is also Hugging
  Face ``datasets`` "imagefolder" metadata;
* a ``datasets.Dataset.save_to_disk`` folder (read with ``datasets.load_from_disk``, imported lazily) with
  columns ``image``, ``text``, ``face_boxes``, ``hand_boxes`` and one image column per condition.

Every record is checked up front: a missing image or condition file, a malformed box (not 4 numbers,
``x1 <= x0`` or ``y1 <= y0``, outside the image) or a bad line fails with :class:`HumanScenesError` naming
the file and line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fp_core.seeds import torch_generator
from fp_diffusion.fairhuman.masks import boxes_to_mask
from fp_diffusion.fairhuman.transforms import JointTransform

__all__ = ["METADATA_FILE", "HumanSceneRecord", "HumanScenes", "HumanScenesError", "read_metadata"]

METADATA_FILE = "metadata.jsonl"


class HumanScenesError(ValueError):
    """A FairHuman data folder that is missing, malformed or inconsistent (the message names the place)."""


@dataclass(frozen=True)
class HumanSceneRecord:
    """One sample's annotations; paths are relative to the data folder (or ``None`` for a datasets row)."""

    file_name: str
    text: str
    face_boxes: tuple[tuple[float, float, float, float], ...]
    hand_boxes: tuple[tuple[float, float, float, float], ...]
    conditions: dict[str, str]
    where: str = ""  # "<metadata file>:<line>" (or "<folder>[row]") for error messages


def _boxes(value: Any, key: str, where: str) -> tuple[tuple[float, float, float, float], ...]:
    if not isinstance(value, list):
        raise HumanScenesError(f"{where}: {key} must be a list of [x0, y0, x1, y1] boxes, got {value!r}")
    out = []
    for box in value:
        if (
            not isinstance(box, list | tuple)
            or len(box) != 4
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box
            )
        ):
            raise HumanScenesError(
                f"{where}: {key} holds {box!r}, expected 4 finite numbers [x0, y0, x1, y1]"
            )
        x0, y0, x1, y1 = (float(v) for v in box)
        if x1 <= x0 or y1 <= y0:
            raise HumanScenesError(
                f"{where}: {key} box {list(box)} is malformed: expected x1 > x0 and y1 > y0"
            )
        out.append((x0, y0, x1, y1))
    return tuple(out)


def _record(data: Any, where: str) -> HumanSceneRecord:
    if not isinstance(data, dict):
        raise HumanScenesError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for key in ("file_name", "text"):
        if not isinstance(data.get(key), str):
            raise HumanScenesError(f"{where}: {key!r} must be a string, got {data.get(key)!r}")
    conditions = data.get("conditions", {})
    if not isinstance(conditions, dict) or not all(isinstance(v, str) for v in conditions.values()):
        raise HumanScenesError(f"{where}: 'conditions' must map names to relative paths, got {conditions!r}")
    return HumanSceneRecord(
        file_name=data["file_name"],
        text=data["text"],
        face_boxes=_boxes(data.get("face_boxes", []), "face_boxes", where),
        hand_boxes=_boxes(data.get("hand_boxes", []), "hand_boxes", where),
        conditions=dict(conditions),
        where=where,
    )


def read_metadata(root: str | os.PathLike[str]) -> list[HumanSceneRecord]:
    """Parse ``root/metadata.jsonl`` (blank lines skipped); errors name the file and line."""
    file = Path(root) / METADATA_FILE
    if not file.is_file():
        raise HumanScenesError(
            f"{file} does not exist: {root} is not a FairHuman data folder (see docs/fairhuman.md)"
        )
    records = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise HumanScenesError(f"{where}: not valid JSON ({error.msg})") from None
        records.append(_record(data, where))
    if not records:
        raise HumanScenesError(f"{file} lists no images")
    return records


def _check_in_image(record: HumanSceneRecord, width: int, height: int, where: str) -> None:
    for key in ("face_boxes", "hand_boxes"):
        for box in getattr(record, key):
            x0, y0, x1, y1 = box
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise HumanScenesError(
                    f"{where}: {key} box {list(box)} lies outside the {width}x{height} image {record.file_name}"
                )


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL -> ``[3, H, W]`` float32 in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class _FolderSource:
    """An image folder with ``metadata.jsonl``; every file and box is checked when it is opened."""

    def __init__(self, root: Path, conditions: Sequence[str] | None, validate: bool) -> None:
        self.root = root
        self.records = read_metadata(root)
        self.conditions = tuple(self.records[0].conditions if conditions is None else conditions)
        for record in self.records:
            missing = [name for name in self.conditions if name not in record.conditions]
            if missing:
                raise HumanScenesError(
                    f"{record.where}: {record.file_name} has no condition {missing[0]!r} "
                    f"(its conditions: {sorted(record.conditions) or 'none'})"
                )
            if validate:
                self._check(record)

    def _size(self, relative: str, record: HumanSceneRecord, what: str) -> tuple[int, int]:
        path = self.root / relative
        if not path.is_file():
            raise HumanScenesError(f"{record.where}: the {what} {path} does not exist")
        try:
            with Image.open(path) as image:
                return image.size
        except OSError as error:
            raise HumanScenesError(
                f"{record.where}: the {what} {path} cannot be read as an image ({error})"
            ) from None

    def _check(self, record: HumanSceneRecord) -> None:
        width, height = self._size(record.file_name, record, "image")
        _check_in_image(record, width, height, record.where)
        for name in self.conditions:
            size = self._size(record.conditions[name], record, f"condition {name!r}")
            if size != (width, height):
                raise HumanScenesError(
                    f"{record.where}: condition {name!r} {record.conditions[name]} is {size[0]}x{size[1]}, "
                    f"the image {record.file_name} is {width}x{height}"
                )

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> tuple[HumanSceneRecord, Image.Image, dict[str, Image.Image]]:
        record = self.records[index]
        self._check(record)
        image = Image.open(self.root / record.file_name)
        conditions = {name: Image.open(self.root / record.conditions[name]) for name in self.conditions}
        return record, image, conditions


class _DatasetsSource:
    """A ``datasets.load_from_disk`` folder: columns image, text, face_boxes, hand_boxes, one per condition."""

    def __init__(self, root: Path, conditions: Sequence[str] | None, split: str) -> None:
        try:
            import datasets  # noqa: PLC0415 - optional, heavy: imported only for such a folder
        except ImportError:
            raise HumanScenesError(
                f"{root} is a Hugging Face datasets folder; reading it needs the 'datasets' package, which is "
                f"not installed (install it, or export the data as an image folder with {METADATA_FILE})"
            ) from None
        data = datasets.load_from_disk(str(root))
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise HumanScenesError(f"{root} has splits {sorted(data)}, not {split!r}")
            data = data[split]
        self.conditions = tuple(conditions or ())
        missing = [
            c
            for c in ("image", "text", "face_boxes", "hand_boxes", *self.conditions)
            if c not in data.column_names
        ]
        if missing:
            raise HumanScenesError(f"{root} lacks the column {missing[0]!r} (columns: {data.column_names})")
        self.root, self.data = root, data

    def __len__(self) -> int:
        return len(self.data)

    def load(self, index: int) -> tuple[HumanSceneRecord, Image.Image, dict[str, Image.Image]]:
        row = self.data[index]
        where = f"{self.root}[row {index}]"
        record = _record({"file_name": str(row.get("file_name", f"row-{index}")), "text": row["text"],
                          "face_boxes": row["face_boxes"], "hand_boxes": row["hand_boxes"]}, where)  # fmt: skip
        image = row["image"]
        _check_in_image(record, image.width, image.height, where)
        conditions = {name: row[name] for name in self.conditions}
        for name, condition in conditions.items():
            if condition is None:
                raise HumanScenesError(f"{where}: the condition {name!r} is missing")
        return record, image, conditions


def _is_datasets_folder(root: Path) -> bool:
    return not (root / METADATA_FILE).exists() and any(
        (root / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    )


class HumanScenes(Dataset):
    """FairHuman training samples over the data layout (an image folder or a datasets folder).

    Each item: ``pixel_values`` ``[3, S, S]`` in [-1, 1], ``face_mask`` and ``hand_mask`` ``[S, S]`` float 0 / 1
    (the boxes, grown by ``dilation`` as a fraction of each box's size, see :mod:`.masks`), ``conditions``
    ``{name: [3, S, S]}`` in [0, 1], ``caption`` and ``file_name``. The boxes become masks *before* the
    transform, and one :class:`JointTransform` draw moves the image, both masks and every condition alike.

    Args:
        root: the data folder.
        size: output side ``S`` (default: the shorter image side); used when ``transform`` is ``None``,
            which then centre-crops and resizes without randomness.
        conditions: condition names to load (default: those of the first metadata record; none for a
            datasets folder); every record must have them.
        transform: the random joint transform (its ``size`` is ``S``).
        dilation: box growth, a fraction of the box size (0: the boxes as given).
        seed: draw each sample's transform from ``torch_generator(seed, epoch, index)`` (reproducible across
            workers; see :meth:`set_epoch`); ``None`` uses torch's global generator.
        split: the split of a ``DatasetDict`` folder.
        validate: check every file and box when the dataset is built (fails early, names the line).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        size: int | None = None,
        conditions: Sequence[str] | None = None,
        transform: JointTransform | None = None,
        dilation: float = 0.0,
        seed: int | None = None,
        split: str = "train",
        validate: bool = True,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise HumanScenesError(f"{self.root} is not a directory (expected a FairHuman data folder)")
        if _is_datasets_folder(self.root):
            self.source: _FolderSource | _DatasetsSource = _DatasetsSource(self.root, conditions, split)
        else:
            self.source = _FolderSource(self.root, conditions, validate)
        if not isinstance(dilation, int | float) or isinstance(dilation, bool) or not dilation >= 0:
            raise HumanScenesError(
                f"dilation must be a number >= 0 (a fraction of the box size), got {dilation!r}"
            )
        self.size, self.transform, self.dilation, self.seed, self.epoch = (
            size,
            transform,
            float(dilation),
            seed,
            0,
        )

    @property
    def condition_names(self) -> tuple[str, ...]:
        """The conditions each item carries."""
        return self.source.conditions

    def set_epoch(self, epoch: int) -> None:
        """Use the transform draws of ``epoch`` (with a ``seed``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples in {self.root}")
        record, image, conditions = self.source.load(index)
        pixels = _to_tensor(image)
        height, width = pixels.shape[-2:]
        masks = {
            "face_mask": boxes_to_mask(record.face_boxes, height, width, self.dilation).float(),
            "hand_mask": boxes_to_mask(record.hand_boxes, height, width, self.dilation).float(),
        }
        tensors = {name: _to_tensor(c) for name, c in conditions.items()}
        transform = self.transform or JointTransform(self.size or min(height, width), (1.0, 1.0), 0.0)
        generator = None if self.seed is None else torch_generator(self.seed, self.epoch, index)
        pixels, masks, tensors = transform(pixels, masks, tensors, generator)
        return {
            "pixel_values": pixels * 2.0 - 1.0,
            "face_mask": masks["face_mask"],
            "hand_mask": masks["hand_mask"],
            "conditions": tensors,
            "caption": record.text,
            "file_name": record.file_name,
        }
