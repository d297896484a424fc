"""Atomic writes: a file or directory appears complete under its final name, or the old content stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from fp_core.atomic import atomic_output_dir, write_json


def test_write_json_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "m.json"
    write_json(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]


def test_atomic_output_dir_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_output_dir(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()  # untouched until the block ends
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_output_dir_keeps_the_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
