"""Parsers for the text files of the CelebAMask-HQ layout (attributes, mapping, splits, identities, tones).

Every parser splits lines on whitespace, skips blank lines and raises :class:`DataFormatError` naming the
file and the 1-based line number of anything it cannot read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ATTRIBUTE_NAMES",
    "SPLIT_IDS",
    "AttributeTable",
    "DataFormatError",
    "SkinToneTable",
    "parse_image_name",
    "read_attribute_file",
    "read_identity_file",
    "read_mapping_file",
    "read_partition_file",
    "read_skin_tone_file",
]

#: The 40 CelebA attributes, in the order of CelebA's and CelebAMask-HQ's attribute files.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
    "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip

#: The values of CelebA's ``list_eval_partition.txt``.
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

_IMAGE_NAME = re.compile(r"^(\d+)\.jpg$")
_GROUP_ENTRY = re.compile(r"^(\d+)=(\S+)$")


class DataFormatError(ValueError):
    """A dataset file that exists but does not hold what the layout expects.

    ``path`` is the file at fault when the raiser knows it (the message names it in any case).
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path: Path | None = Path(path) if path is not None else None


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, whitespace-split fields)`` of the non-blank lines of ``path``."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if fields:
                yield number, fields


def _int(path: Path, number: int, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(f"{path}, line {number}: {what} must be an integer, got {text!r}") from None


def parse_image_name(path: Path, number: int, text: str) -> int:
    """The index ``i`` of a CelebA-HQ image name ``"<i>.jpg"`` (error naming ``path`` and line otherwise)."""
    match = _IMAGE_NAME.match(text)
    if match is None:
        raise DataFormatError(
            f"{path}, line {number}: expected a CelebA-HQ image name like '17.jpg', got {text!r}"
        )
    return int(match.group(1))


@dataclass(frozen=True)
class AttributeTable:
    """The attribute file: ``values[row]`` holds image ``indices[row]``'s attributes as 0/1, uint8 ``[N, A]``."""

    names: list[str]
    indices: np.ndarray
    values: np.ndarray
    row_of: dict[int, int]
    line_of: dict[int, int]


def read_attribute_file(path: str | os.PathLike[str]) -> AttributeTable:
    """Read ``CelebAMask-HQ-attribute-anno.txt``: the image count, the attribute names, then rows
    ``<i>.jpg v1 ... vA`` of -1/1 (read as 0/1)."""
    path = Path(path)
    lines = _lines(path)
    try:
        number, fields = next(lines)
    except StopIteration:
        raise DataFormatError(f"{path} is empty; expected the image count on line 1") from None
    if len(fields) != 1:
        raise DataFormatError(
            f"{path}, line {number}: expected the image count alone, got {' '.join(fields)!r}"
        )
    count = _int(path, number, fields[0], "the image count")
    try:
        _, names = next(lines)
    except StopIteration:
        raise DataFormatError(
            f"{path}: expected the attribute names on line 2, the file ends first"
        ) from None
    if len(set(names)) != len(names):
        raise DataFormatError(f"{path}, line 2: attribute names repeat: {names}")
    indices: list[int] = []
    rows: list[list[int]] = []
    line_of: dict[int, int] = {}
    for number, fields in lines:
        if len(fields) != len(names) + 1:
            raise DataFormatError(
                f"{path}, line {number}: expected {len(names) + 1} columns (image name and "
                f"{len(names)} attributes), got {len(fields)}"
            )
        index = parse_image_name(path, number, fields[0])
        if index in line_of:
            raise DataFormatError(
                f"{path}, line {number}: {fields[0]} is listed again (first on line {line_of[index]})"
            )
        values = []
        for name, text in zip(names, fields[1:]):
            if text not in ("-1", "1"):
                raise DataFormatError(
                    f"{path}, line {number}: attribute {name} must be -1 or 1, got {text!r}"
                )
            values.append(1 if text == "1" else 0)
        indices.append(index)
        rows.append(values)
        line_of[index] = number
    if count != len(indices):
        raise DataFormatError(f"{path}: line 1 announces {count} images, the file lists {len(indices)}")
    return AttributeTable(
        names=list(names),
        indices=np.asarray(indices, dtype=np.int64),
        values=np.asarray(rows, dtype=np.uint8).reshape(len(rows), len(names)),
        row_of={index: row for row, index in enumerate(indices)},
        line_of=line_of,
    )


def read_mapping_file(path: str | os.PathLike[str]) -> dict[int, str]:
    """Read ``CelebA-HQ-to-CelebA-mapping.txt`` (header ``idx orig_idx orig_file``; ``orig_idx`` is 0-based)
    into ``{CelebA-HQ index: CelebA file name}``."""
    path = Path(path)
    mapping: dict[int, str] = {}
    for number, fields in _lines(path):
        if number == 1 and fields[0] == "idx":
            continue
        if len(fields) != 3:
            raise DataFormatError(
                f"{path}, line {number}: expected 3 columns (idx orig_idx orig_file), got {len(fields)}"
            )
        index = _int(path, number, fields[0], "idx")
        _int(path, number, fields[1], "orig_idx")
        if index in mapping:
            raise DataFormatError(f"{path}, line {number}: idx {index} is listed twice")
        mapping[index] = fields[2]
    return mapping


def _file_to_int(path: Path, what: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for number, fields in _lines(path):
        if len(fields) != 2:
            raise DataFormatError(
                f"{path}, line {number}: expected 2 columns (file name, {what}), got {len(fields)}"
            )
        table[fields[0]] = _int(path, number, fields[1], what)
    return table


def read_partition_file(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read CelebA's ``list_eval_partition.txt`` (rows ``000001.jpg 0``) into ``{CelebA file: 0|1|2}``."""
    path = Path(path)
    table = _file_to_int(path, "partition")
    bad = {name: value for name, value in table.items() if value not in SPLIT_IDS.values()}
    if bad:
        name, value = next(iter(bad.items()))
        raise DataFormatError(
            f"{path}: partition of {name} is {value}; expected 0 (train), 1 (val) or 2 (test)"
        )
    return table


def read_identity_file(path: str | os.PathLike[str]) -> dict[str, int]:
    """Read CelebA's ``identity_CelebA.txt`` (rows ``000001.jpg 2880``) into ``{CelebA file: identity}``."""
    return _file_to_int(Path(path), "identity")


@dataclass(frozen=True)
class SkinToneTable:
    """``fp_skin_tone.txt``: group names by id, and each listed image's group id and continuous tone."""

    groups: list[str]
    group_of: dict[int, int]
    tone_of: dict[int, float]


def read_skin_tone_file(path: str | os.PathLike[str]) -> SkinToneTable:
    """Read ``fp_skin_tone.txt``: ``# groups: 0=light 1=dark``, the header ``image tone group``, then rows
    ``<i>.jpg <tone> <group id>``. Group ids must run 0, 1, ... in the header."""
    path = Path(path)
    lines = _lines(path)
    try:
        number, fields = next(lines)
    except StopIteration:
        raise DataFormatError(
            f"{path} is empty; expected '# groups: 0=<name> 1=<name> ...' on line 1"
        ) from None
    if fields[:2] != ["#", "groups:"] or len(fields) < 3:
        raise DataFormatError(
            f"{path}, line {number}: expected '# groups: 0=<name> 1=<name> ...', got {' '.join(fields)!r}"
        )
    groups: list[str] = []
    for entry in fields[2:]:
        match = _GROUP_ENTRY.match(entry)
        if match is None or int(match.group(1)) != len(groups):
            raise DataFormatError(
                f"{path}, line {number}: expected group {len(groups)} as '{len(groups)}=<name>', got {entry!r}"
            )
        groups.append(match.group(2))
    group_of: dict[int, int] = {}
    tone_of: dict[int, float] = {}
    for number, fields in lines:
        if fields[0] == "image":
            continue
        if len(fields) != 3:
            raise DataFormatError(
                f"{path}, line {number}: expected 3 columns (image tone group), got {len(fields)}"
            )
        index = parse_image_name(path, number, fields[0])
        try:
            tone = float(fields[1])
        except ValueError:
            raise DataFormatError(
                f"{path}, line {number}: tone must be a number, got {fields[1]!r}"
            ) from None
        group = _int(path, number, fields[2], "group")
        if not 0 <= group < len(groups):
            raise DataFormatError(
                f"{path}, line {number}: group {group} is not one of the header's 0..{len(groups) - 1}"
            )
        group_of[index] = group
        tone_of[index] = tone
    return SkinToneTable(groups=groups, group_of=group_of, tone_of=tone_of)
