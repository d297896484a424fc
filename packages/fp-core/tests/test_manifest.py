"""``manifest.json``: written atomically and reproducibly, read back with errors that say what is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fp_core.manifest import MANIFEST_FILENAME, ManifestError, read_manifest, write_manifest


def test_round_trip_records_kind_version_inputs_params_and_fields(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path / "export",
        "parsing-export",
        version=2,
        inputs={"checkpoint": Path("outputs/parsing/single")},
        params={"splits": ["train", "test"]},
        images=12,
        formats={"labels": "png"},
    )
    assert path == tmp_path / "export" / MANIFEST_FILENAME
    manifest = read_manifest(tmp_path / "export", "parsing-export", required=["images"], max_version=2)
    assert manifest == {
        "kind": "parsing-export",
        "format_version": 2,
        "created_by": "fp",
        "inputs": {"checkpoint": "outputs/parsing/single"},
        "params": {"splits": ["train", "test"]},
        "images": 12,
        "formats": {"labels": "png"},
    }


def test_reruns_write_byte_identical_manifests(tmp_path: Path) -> None:
    first = write_manifest(tmp_path / "a", "k", inputs={"b": 1, "a": 2}, params=None, size=3).read_bytes()
    second = write_manifest(tmp_path / "b", "k", params=None, inputs={"a": 2, "b": 1}, size=3).read_bytes()
    assert first == second
    assert b"time" not in first and b"date" not in first
    assert json.loads(first)["params"] == {} and sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        MANIFEST_FILENAME
    ]


def test_write_rejects_reserved_fields_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format_version"):
        write_manifest(tmp_path, "k", format_version=3)
    with pytest.raises(ValueError, match="kind"):
        write_manifest(tmp_path, "")
    with pytest.raises(ValueError, match="version"):
        write_manifest(tmp_path, "k", version=0)
    assert not (tmp_path / MANIFEST_FILENAME).exists()


def _error(directory: Path, kind: str = "clip-checkpoint", **kwargs: object) -> str:
    with pytest.raises(ManifestError) as caught:
        read_manifest(directory, kind, **kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def test_a_manifest_of_another_kind(tmp_path: Path) -> None:
    directory = tmp_path / "outputs" / "x"
    write_manifest(directory, "parsing-export")
    message = _error(directory)
    assert (
        message
        == f"{directory / MANIFEST_FILENAME} is a 'parsing-export' manifest, expected 'clip-checkpoint'"
    )


def test_a_missing_manifest(tmp_path: Path) -> None:
    message = _error(tmp_path / "nothing")
    assert str(tmp_path / "nothing" / MANIFEST_FILENAME) in message and "does not exist" in message
    assert "'clip-checkpoint'" in message


def test_invalid_json(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILENAME).write_text('{"kind": "clip-checkpoint",')
    message = _error(tmp_path)
    assert re.search(r"manifest\.json is not valid JSON \(.* at line 1 column \d+\)", message)
    assert "'clip-checkpoint'" in message


def test_not_an_object_or_no_kind(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILENAME).write_text("[1, 2]\n")
    assert "holds a JSON list, expected an object" in _error(tmp_path)
    (tmp_path / MANIFEST_FILENAME).write_text('{"format_version": 1}\n')
    assert "has no 'kind', expected kind 'clip-checkpoint'" in _error(tmp_path)


def test_a_newer_version_than_supported(tmp_path: Path) -> None:
    write_manifest(tmp_path, "clip-checkpoint", version=3)
    message = _error(tmp_path, max_version=2)
    assert "format_version 3, newer than this fp supports for 'clip-checkpoint' (at most 2)" in message
    assert str(tmp_path / MANIFEST_FILENAME) in message
    assert read_manifest(tmp_path, "clip-checkpoint", max_version=3)["format_version"] == 3
    assert read_manifest(tmp_path, "clip-checkpoint")["format_version"] == 3  # no limit given


def test_a_missing_or_non_integer_version(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILENAME).write_text('{"kind": "clip-checkpoint", "format_version": "1"}\n')
    assert "no integer 'format_version' (found '1')" in _error(tmp_path)
    (tmp_path / MANIFEST_FILENAME).write_text('{"kind": "clip-checkpoint"}\n')
    assert "no integer 'format_version' (found None)" in _error(tmp_path)


def test_missing_required_keys_are_named(tmp_path: Path) -> None:
    write_manifest(tmp_path, "clip-checkpoint", model="ViT-B-32")
    message = _error(tmp_path, required=["model", "embedding_dim", "pretrained"])
    assert "lacks 'embedding_dim', 'pretrained'" in message
    assert "['model', 'embedding_dim', 'pretrained']" in message
