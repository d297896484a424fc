"""MXNet RecordIO (``.rec`` + ``.idx``) read and written without mxnet: record framing and ``IRHeader``.

**Framing** (dmlc-core ``RecordIOWriter``): every record is one or more parts, each
``uint32 magic = 0xced7230a``, ``uint32 lrecord``, then the part's bytes, zero-padded to a multiple of 4.
``lrecord = cflag << 29 | length`` (cflag in the upper 3 bits, the part length in the lower 29). cflag 0 is a
whole record; a record whose payload holds the magic at a 4-byte-aligned position is split there into parts
with cflag 1 (first), 2 (middle), 3 (last), the magic itself dropped and re-inserted by the reader between
parts. Integers are little-endian.

**Index** (``MXIndexedRecordIO``): a text file of ``key<TAB>byte offset of the record`` lines.

**IRHeader** (``mx.recordio.pack``): ``struct '<IfQQ'`` = ``flag uint32, label float32, id uint64, id2 uint64``
(24 bytes). When ``flag > 0``, ``flag`` float32 labels follow the header (and ``label`` is 0); the payload (a
JPEG for images) comes after.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from fp_recognition.data.errors import DataFormatError

__all__ = [
    "RECORDIO_MAGIC",
    "IRHeader",
    "RecordReader",
    "RecordWriter",
    "frame_record",
    "pack_record",
    "unpack_record",
]

RECORDIO_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_HEADER = struct.Struct("<IfQQ")
_LENGTH_MASK = (1 << 29) - 1


class IRHeader(NamedTuple):
    """An image record's header: ``label`` is a float, or a float32 array ``[flag]`` when ``flag > 0``."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int


def pack_record(header: IRHeader, payload: bytes = b"") -> bytes:
    """``IRHeader`` + payload -> record bytes; an array label sets ``flag`` to its length (as mxnet does)."""
    label = header.label
    if isinstance(label, np.ndarray | list | tuple):
        values = np.asarray(label, dtype="<f4").ravel()
        return _HEADER.pack(values.size, 0.0, header.id, header.id2) + values.tobytes() + payload
    return _HEADER.pack(0, float(label), header.id, header.id2) + payload


def unpack_record(data: bytes, source: str | os.PathLike[str] = "", where: str = "") -> tuple[IRHeader, bytes]:
    """Record bytes -> ``(IRHeader, payload)``; a :class:`DataFormatError` if the header does not fit."""
    if len(data) < _HEADER.size:
        raise DataFormatError(source, f"record of {len(data)} bytes is shorter than its 24-byte IRHeader", where)
    flag, label, rid, rid2 = _HEADER.unpack_from(data)
    end = _HEADER.size
    if flag > 0:
        end += 4 * flag
        if len(data) < end:
            raise DataFormatError(source, f"IRHeader announces {flag} labels but the record ends first", where)
        labels = np.frombuffer(data, dtype="<f4", count=flag, offset=_HEADER.size).astype(np.float32)
        return IRHeader(flag, labels, rid, rid2), data[end:]
    return IRHeader(flag, float(label), rid, rid2), data[end:]


def frame_record(data: bytes) -> bytes:
    """One record's bytes as written to a ``.rec`` file (parts split at aligned magics, padded to 4)."""
    parts: list[bytes] = []
    start = 0
    for i in range(0, len(data) - len(data) % 4, 4):
        if data[i : i + 4] == _MAGIC_BYTES:
            parts.append(data[start:i])
            start = i + 4
    parts.append(data[start:])
    out = bytearray()
    for k, part in enumerate(parts):
        if len(parts) == 1:
            cflag = 0
        else:
            cflag = 1 if k == 0 else (3 if k == len(parts) - 1 else 2)
        if len(part) > _LENGTH_MASK:
            raise ValueError(f"record part of {len(part)} bytes exceeds RecordIO's 29-bit length")
        out += _MAGIC_BYTES + struct.pack("<I", cflag << 29 | len(part)) + part
        out += b"\0" * (-len(part) % 4)
    return bytes(out)


class RecordWriter:
    """Write an indexed RecordIO pair: ``write(key, data)`` appends a record and its index line.

    Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, rec_path: str | os.PathLike[str], idx_path: str | os.PathLike[str]) -> None:
        self.rec_path, self.idx_path = Path(rec_path), Path(idx_path)
        self._rec: BinaryIO = open(self.rec_path, "wb")  # closed in close()
        self._idx = open(self.idx_path, "w", encoding="ascii")

    def write(self, key: int, data: bytes) -> None:
        """Append record ``key`` (its bytes, usually :func:`pack_record`'s output)."""
        offset = self._rec.tell()
        self._rec.write(frame_record(data))
        self._idx.write(f"{key}\t{offset}\n")

    def close(self) -> None:
        """Flush and close both files."""
        self._rec.close()
        self._idx.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordReader:
    """Random access to an indexed RecordIO pair: ``keys``, ``read(key) -> bytes``.

    The ``.rec`` file is opened on first read (and again in each DataLoader worker: the handle is not
    pickled). Errors name the file, the record key and its byte offset.
    """

    def __init__(self, rec_path: str | os.PathLike[str], idx_path: str | os.PathLike[str]) -> None:
        self.rec_path, self.idx_path = Path(rec_path), Path(idx_path)
        for path in (self.rec_path, self.idx_path):
            if not path.is_file():
                raise DataFormatError(path, "file not found")
        self.size = self.rec_path.stat().st_size
        self.offsets: dict[int, int] = {}
        for lineno, line in enumerate(self.idx_path.read_text(encoding="ascii").splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            try:
                key, offset = int(fields[0]), int(fields[1])
                if len(fields) != 2:
                    raise ValueError
            except (ValueError, IndexError):
                raise DataFormatError(
                    self.idx_path, f"expected 'key<TAB>offset', got {line!r}", f"line {lineno}"
                ) from None
            if not 0 <= offset < self.size:
                raise DataFormatError(
                    self.idx_path,
                    f"offset {offset} of record {key} is past the end of {self.rec_path.name} "
                    f"({self.size} bytes)",
                    f"line {lineno}",
                )
            self.offsets[key] = offset
        self._handle: BinaryIO | None = None

    @property
    def keys(self) -> list[int]:
        """Record keys in index order."""
        return list(self.offsets)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_handle"] = None
        return state

    def _read_exact(self, n: int, key: int, offset: int) -> bytes:
        assert self._handle is not None
        data = self._handle.read(n)
        if len(data) != n:
            raise DataFormatError(
                self.rec_path,
                f"truncated: needed {n} bytes, the file ends after {len(data)}",
                f"record {key} at byte {offset}",
            )
        return data

    def read(self, key: int) -> bytes:
        """The bytes of record ``key`` (parts joined, padding dropped)."""
        if key not in self.offsets:
            raise DataFormatError(self.idx_path, f"no record with key {key}")
        if self._handle is None:
            self._handle = open(self.rec_path, "rb")  # kept open for random access
        offset = self.offsets[key]
        self._handle.seek(offset)
        out = bytearray()
        first = True
        while True:
            magic, lrecord = struct.unpack("<II", self._read_exact(8, key, offset))
            if magic != RECORDIO_MAGIC:
                raise DataFormatError(
                    self.rec_path,
                    f"bad magic 0x{magic:08x} (expected 0x{RECORDIO_MAGIC:08x})",
                    f"record {key} at byte {offset}",
                )
            cflag, length = lrecord >> 29, lrecord & _LENGTH_MASK
            if cflag not in ((0, 1) if first else (2, 3)):
                raise DataFormatError(
                    self.rec_path, f"unexpected part flag {cflag}", f"record {key} at byte {offset}"
                )
            out += self._read_exact(length, key, offset)
            self._read_exact(-length % 4, key, offset)  # padding
            if cflag in (0, 3):
                return bytes(out)
            out += _MAGIC_BYTES
            first = False

    def close(self) -> None:
        """Close the ``.rec`` handle (reopened by the next read)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
