"""Parsers of the layout's text files: values read, and errors that name the file and the line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fp_parsing.data import (
    ATTRIBUTE_NAMES,
    DataFormatError,
    read_attribute_file,
    read_identity_file,
    read_mapping_file,
    read_partition_file,
    read_skin_tone_file,
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_attribute_file_values_and_names(tmp_path: Path) -> None:
    assert len(ATTRIBUTE_NAMES) == 40 and ATTRIBUTE_NAMES[20] == "Male" and ATTRIBUTE_NAMES[-1] == "Young"
    path = _write(tmp_path, "attr.txt", "2\nMale Young Smiling\n7.jpg  1 -1 1\r\n\n3.jpg -1 -1  1\n")
    table = read_attribute_file(path)
    assert table.names == ["Male", "Young", "Smiling"]
    assert table.indices.tolist() == [7, 3]
    np.testing.assert_array_equal(table.values, [[1, 0, 1], [0, 0, 1]])
    assert table.row_of == {7: 0, 3: 1}
    assert table.line_of == {7: 3, 3: 5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2\nA B\n0.jpg 1 1\n1.jpg 1\n", "line 4: expected 3 columns (image name and 2 attributes), got 2"),
        ("1\nA B\n0.jpg 1 1 -1\n", "line 3: expected 3 columns"),
        ("1\nA B\n0.jpg 1 0\n", "line 3: attribute B must be -1 or 1, got '0'"),
        ("1\nA B\nzero.jpg 1 1\n", "line 3: expected a CelebA-HQ image name like '17.jpg', got 'zero.jpg'"),
        ("3\nA B\n0.jpg 1 1\n", "line 1 announces 3 images, the file lists 1"),
        ("2\nA B\n0.jpg 1 1\n0.jpg 1 1\n", "line 4: 0.jpg is listed again (first on line 3)"),
        ("x\nA B\n", "line 1: the image count must be an integer, got 'x'"),
        ("", "is empty"),
    ],
)
def test_attribute_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "CelebAMask-HQ-attribute-anno.txt", text)
    with pytest.raises(DataFormatError, match=re.escape(message)) as caught:
        read_attribute_file(path)
    assert str(path) in str(caught.value)


def test_mapping_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "map.txt", "idx         orig_idx    orig_file\n0  119613  119614.jpg\n1 99 000100.jpg\n"
    )
    assert read_mapping_file(path) == {0: "119614.jpg", 1: "000100.jpg"}
    bad = _write(tmp_path, "bad.txt", "idx orig_idx orig_file\n0 1\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{bad}, line 2: expected 3 columns")):
        read_mapping_file(bad)
    twice = _write(tmp_path, "twice.txt", "idx orig_idx orig_file\n0 1 000002.jpg\n0 2 000003.jpg\n")
    with pytest.raises(DataFormatError, match="line 3: idx 0 is listed twice"):
        read_mapping_file(twice)


def test_partition_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "list_eval_partition.txt", "000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n")
    assert read_partition_file(path) == {"000001.jpg": 0, "000002.jpg": 2, "000003.jpg": 1}
    bad = _write(tmp_path, "bad.txt", "000001.jpg 3\n")
    with pytest.raises(DataFormatError, match="partition of 000001.jpg is 3"):
        read_partition_file(bad)
    short = _write(tmp_path, "short.txt", "000001.jpg 0\n000002.jpg\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{short}, line 2: expected 2 columns")):
        read_partition_file(short)


def test_identity_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "identity_CelebA.txt", "000001.jpg 2880\n000002.jpg 2937\n")
    assert read_identity_file(path) == {"000001.jpg": 2880, "000002.jpg": 2937}
    bad = _write(tmp_path, "bad.txt", "000001.jpg alice\n")
    with pytest.raises(DataFormatError, match="line 1: identity must be an integer, got 'alice'"):
        read_identity_file(bad)


def test_skin_tone_file(tmp_path: Path) -> None:
    text = "# groups: 0=light 1=dark\nimage tone group\n5.jpg 0.25 0\n9.jpg 0.75 1\n"
    table = read_skin_tone_file(_write(tmp_path, "fp_skin_tone.txt", text))
    assert table.groups == ["light", "dark"]
    assert table.group_of == {5: 0, 9: 1}
    assert table.tone_of == {5: 0.25, 9: 0.75}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups 0=light\n", "line 1: expected '# groups: 0=<name> 1=<name> ...'"),
        ("# groups: 1=light 0=dark\n", "line 1: expected group 0 as '0=<name>', got '1=light'"),
        (
            "# groups: 0=light\nimage tone group\n5.jpg 0.3 1\n",
            "line 3: group 1 is not one of the header's 0..0",
        ),
        ("# groups: 0=light\nimage tone group\n5.jpg pale 0\n", "line 3: tone must be a number, got 'pale'"),
        ("# groups: 0=light\nimage tone group\n5.jpg 0.3\n", "line 3: expected 3 columns"),
    ],
)
def test_skin_tone_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "fp_skin_tone.txt", text)
    with pytest.raises(DataFormatError, match=re.escape(message)) as caught:
        read_skin_tone_file(path)
    assert str(path) in str(caught.value)
