"""insightface's training set format: ``train.rec`` + ``train.idx`` + ``property``, read and written.

Layout of a directory (e.g. ``faces_webface_112x112/`` for CASIA-WebFace)::

    train.rec    RecordIO records (see fp_recognition.data.recordio)
    train.idx    "key<TAB>offset" lines
    property     "num_classes,h,w", e.g. "10572,112,112"

Records, keyed by consecutive integers (insightface's convention):

* record 0: a header record, ``flag = 2``, ``label = (first_identity_record, end)``; the image records are
  ``1 .. first_identity_record - 1``;
* image records: ``flag = 0``, ``label`` = the identity as a float (readers also accept an array label and
  take its first value), ``id`` = the record key, a JPEG payload;
* identity records ``first_identity_record .. end - 1``: ``flag = 2``, ``label = (first_image, end_image)``,
  the (exclusive) range of that identity's image records, no payload.

A directory whose record 0 has ``flag = 0`` is read as "every record in the index is an image" (insightface's
fallback). ``num_classes`` comes from ``property`` when present, else from the identity records, else from
the largest label.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fp_core.atomic import atomic_output_dir
from fp_recognition.data.errors import DataFormatError
from fp_recognition.data.images import ImageLike, decode_image, encode_jpeg, image_to_tensor, normalise
from fp_recognition.data.recordio import IRHeader, RecordReader, RecordWriter, pack_record, unpack_record

__all__ = ["RecordDataset", "read_property", "write_record_dataset"]


def read_property(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Parse a ``property`` file ``"num_classes,h,w"`` -> ``(num_classes, h, w)``."""
    text = Path(path).read_text(encoding="ascii").strip()
    try:
        values = tuple(int(v) for v in text.split(","))
        if len(values) != 3 or min(values) < 1:
            raise ValueError
    except ValueError:
        raise DataFormatError(path, f"expected 'num_classes,h,w' with positive integers, got {text!r}") from None
    return values  # type: ignore[return-value]


class RecordDataset(Dataset[tuple[torch.Tensor, int]]):
    """``dataset[i] -> (image [3, S, S] float32, label int)`` from an insightface ``.rec`` directory.

    Args:
        root: the directory holding ``train.rec``, ``train.idx`` (and ``property``).
        transform: applied to the ``[0, 1]`` image before normalisation (e.g. :class:`FaceAugment`).
        image_size: resize to ``S x S`` when the stored size differs; ``None`` keeps it.
        normalise: map ``[0, 1]`` to ``[-1, 1]``.
        prefix: file stem, ``"train"``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        image_size: int | None = None,
        normalise: bool = True,
        prefix: str = "train",
    ) -> None:
        self.root = Path(root)
        self.reader = RecordReader(self.root / f"{prefix}.rec", self.root / f"{prefix}.idx")
        self.transform, self.image_size, self.normalise = transform, image_size, normalise
        if 0 not in self.reader.offsets:
            raise DataFormatError(self.reader.idx_path, "no record 0 (the header record)")
        header0, _ = unpack_record(self.reader.read(0), self.reader.rec_path, "record 0")
        identity_range: tuple[int, int] | None = None
        if header0.flag > 0:
            labels = np.atleast_1d(header0.label)
            if labels.size < 2:
                raise DataFormatError(self.reader.rec_path, "header label must hold (first, end)", "record 0")
            first, end = int(labels[0]), int(labels[1])
            if not 1 <= first <= end:
                raise DataFormatError(
                    self.reader.rec_path, f"header label ({first}, {end}) is not a range", "record 0"
                )
            missing = [k for k in range(1, first) if k not in self.reader.offsets]
            if missing:
                raise DataFormatError(
                    self.reader.idx_path, f"image records {missing[:5]} announced by record 0 are not indexed"
                )
            self.record_keys = list(range(1, first))
            identity_range = (first, end)
        else:
            self.record_keys = self.reader.keys
        self.identity_range = identity_range
        prop = self.root / "property"
        self.property: tuple[int, int, int] | None = read_property(prop) if prop.is_file() else None
        if self.property is not None:
            self.num_classes = self.property[0]
        elif identity_range is not None and identity_range[1] > identity_range[0]:
            self.num_classes = identity_range[1] - identity_range[0]
        else:
            self.num_classes = 1 + max(self._label(k)[0] for k in self.record_keys)

    def _label(self, key: int) -> tuple[int, bytes]:
        header, payload = unpack_record(self.reader.read(key), self.reader.rec_path, f"record {key}")
        label = header.label
        value = float(label[0]) if isinstance(label, np.ndarray) else float(label)
        return int(value), payload

    def __len__(self) -> int:
        return len(self.record_keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        key = self.record_keys[index]
        label, payload = self._label(key)
        if not 0 <= label < self.num_classes:
            raise DataFormatError(
                self.reader.rec_path, f"label {label} outside [0, {self.num_classes})", f"record {key}"
            )
        x = image_to_tensor(decode_image(payload, self.reader.rec_path, f"record {key}"), self.image_size)
        if self.transform is not None:
            x = self.transform(x)
        return (normalise(x) if self.normalise else x), label


def write_record_dataset(
    images_by_identity: Mapping[object, Sequence[ImageLike]] | Sequence[Sequence[ImageLike]],
    out_dir: str | os.PathLike[str],
    *,
    quality: int = 95,
    prefix: str = "train",
) -> Path:
    """Write ``train.rec``, ``train.idx`` and ``property`` in insightface's layout (see the module doc).

    Identities get labels ``0 .. K-1`` in the order given (mapping order for a mapping). Images may be JPEG
    bytes (stored as they are) or anything :func:`encode_jpeg` takes. The directory appears complete or not
    at all (it replaces ``out_dir`` if that exists). Returns ``out_dir``.
    """
    groups = list(images_by_identity.values() if isinstance(images_by_identity, Mapping) else images_by_identity)
    if not groups:
        raise ValueError("images_by_identity is empty")
    for k, images in enumerate(groups):
        if len(images) == 0:
            raise ValueError(f"identity {k} has no image")
    n_images = sum(len(g) for g in groups)
    first_identity, end = n_images + 1, n_images + 1 + len(groups)
    out_dir = Path(out_dir)
    size: tuple[int, int] | None = None
    with atomic_output_dir(out_dir) as tmp:
        with RecordWriter(tmp / f"{prefix}.rec", tmp / f"{prefix}.idx") as writer:
            writer.write(0, pack_record(IRHeader(2, np.array([first_identity, end], np.float32), 0, 0)))
            key = 1
            ranges: list[tuple[int, int]] = []
            for label, images in enumerate(groups):
                start = key
                for image in images:
                    jpeg = encode_jpeg(image, quality)
                    if size is None:
                        w, h = decode_image(jpeg, out_dir / f"{prefix}.rec", f"record {key}").size
                        size = (h, w)
                    writer.write(key, pack_record(IRHeader(0, float(label), key, 0), jpeg))
                    key += 1
                ranges.append((start, key))
            for offset, (start, stop) in enumerate(ranges):
                record = pack_record(IRHeader(2, np.array([start, stop], np.float32), first_identity + offset, 0))
                writer.write(first_identity + offset, record)
        assert size is not None
        (tmp / "property").write_text(f"{len(groups)},{size[0]},{size[1]}\n", encoding="ascii")
    return out_dir
