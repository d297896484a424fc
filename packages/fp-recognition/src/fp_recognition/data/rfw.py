"""Racial Faces in-the-Wild (RFW) test pairs: four groups, 6000 pairs each (10 folds of 600).

Layout under the RFW root (``<Group>`` one of :data:`RFW_GROUPS`)::

    test/data/<Group>/<name>/<name>_<idx:04d>.jpg
    test/txts/<Group>/<Group>_pairs.txt

A pairs line is tab-separated (any whitespace is accepted): 3 fields ``name idx1 idx2`` for a genuine pair,
4 fields ``name1 idx1 name2 idx2`` for an impostor pair; ``idx`` is the integer in the file name
(``<name>_<idx:04d>.jpg``). Lines keep their file order, which is what the 10 consecutive folds rely on.
Every image a pair names must exist (checked when the pairs are read, error naming the pairs file and line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fp_recognition.data.errors import DataFormatError
from fp_recognition.data.images import LazyImages

__all__ = ["RFW_GROUPS", "RFWPairs", "load_rfw", "load_rfw_pairs", "rfw_image_path", "rfw_pairs_path"]

#: The four RFW groups, in the order results are reported.
RFW_GROUPS: tuple[str, ...] = ("African", "Asian", "Caucasian", "Indian")


def rfw_image_path(root: str | os.PathLike[str], group: str, name: str, idx: int) -> Path:
    """``<root>/test/data/<group>/<name>/<name>_<idx:04d>.jpg``."""
    return Path(root) / "test" / "data" / group / name / f"{name}_{idx:04d}.jpg"


def rfw_pairs_path(root: str | os.PathLike[str], group: str) -> Path:
    """``<root>/test/txts/<group>/<group>_pairs.txt``."""
    return Path(root) / "test" / "txts" / group / f"{group}_pairs.txt"


@dataclass(frozen=True)
class RFWPairs:
    """One group's pairs: ``images`` the ``U`` distinct image paths, pair ``p`` = ``(first[p], second[p])``.

    Attributes:
        group: the group name. images: ``list[Path]`` ``[U]``. first, second: int64 ``[P]`` indices into
        ``images``. issame: bool ``[P]``.
    """

    group: str
    images: list[Path]
    first: np.ndarray
    second: np.ndarray
    issame: np.ndarray

    @property
    def num_pairs(self) -> int:
        """P."""
        return int(self.issame.size)

    def tensors(self, image_size: int | None = None, *, normalise: bool = True, bgr: bool = False) -> LazyImages:
        """The distinct images decoded on access, ``[3, S, S]`` each (see :class:`LazyImages`)."""
        return LazyImages(self.images, image_size=image_size, normalise=normalise, bgr=bgr)


def _index(field: str, pairs: Path, lineno: int) -> int:
    try:
        value = int(field)
    except ValueError:
        raise DataFormatError(pairs, f"image index {field!r} is not an integer", f"line {lineno}") from None
    if value < 0:
        raise DataFormatError(pairs, f"image index {value} is negative", f"line {lineno}")
    return value


def load_rfw_pairs(root: str | os.PathLike[str], group: str) -> RFWPairs:
    """Read ``<group>``'s pairs file and check every image exists (module doc)."""
    pairs = rfw_pairs_path(root, group)
    if not pairs.is_file():
        raise DataFormatError(pairs, f"pairs file of group {group} not found")
    index: dict[Path, int] = {}
    first: list[int] = []
    second: list[int] = []
    same: list[bool] = []
    for lineno, line in enumerate(pairs.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 3:
            ends = [(fields[0], _index(fields[1], pairs, lineno)), (fields[0], _index(fields[2], pairs, lineno))]
        elif len(fields) == 4:
            ends = [(fields[0], _index(fields[1], pairs, lineno)), (fields[2], _index(fields[3], pairs, lineno))]
        else:
            raise DataFormatError(
                pairs,
                f"expected 3 fields (name idx1 idx2) or 4 (name1 idx1 name2 idx2), got {len(fields)}: {line!r}",
                f"line {lineno}",
            )
        ids = []
        for name, idx in ends:
            path = rfw_image_path(root, group, name, idx)
            if path not in index:
                if not path.is_file():
                    raise DataFormatError(pairs, f"pair image {path} does not exist", f"line {lineno}")
                index[path] = len(index)
            ids.append(index[path])
        first.append(ids[0])
        second.append(ids[1])
        same.append(len(fields) == 3)
    if not same:
        raise DataFormatError(pairs, "no pair")
    return RFWPairs(
        group,
        list(index),
        np.asarray(first, dtype=np.int64),
        np.asarray(second, dtype=np.int64),
        np.asarray(same, dtype=bool),
    )


def load_rfw(root: str | os.PathLike[str], groups: tuple[str, ...] = RFW_GROUPS) -> dict[str, RFWPairs]:
    """:func:`load_rfw_pairs` for each group, keyed by group name."""
    return {g: load_rfw_pairs(root, g) for g in groups}
