"""Atomic writes: a file or directory appears complete under its final name, or the old content stays."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fp_core.atomic import atomic_output_dir, recover, write_bytes, write_json, write_text


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


# --- crash safety -------------------------------------------------------------------------------------------

ATOMIC_SOURCE = Path(__file__).resolve().parents[1] / "src" / "fp_core" / "atomic.py"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` as ``{relative path: text}``."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _old_target(tmp_path: Path) -> Path:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    return target


def _fail_replace_at(monkeypatch: pytest.MonkeyPatch, *failing: int) -> list[tuple[str, str]]:
    """Make the given ``os.replace`` calls (1-based) raise ``OSError``; return the calls seen."""
    real = os.replace
    calls: list[tuple[str, str]] = []

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) in failing:
            raise OSError(f"simulated crash at rename {len(calls)}")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return calls


def _write_new(target: Path) -> None:
    with atomic_output_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")


def test_failure_at_the_first_rename_keeps_the_old_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _old_target(tmp_path)
    calls = _fail_replace_at(monkeypatch, 1)
    with pytest.raises(OSError, match="rename 1"):
        _write_new(target)
    assert calls == [("out", ".out.old")]
    assert _tree(target) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.undo()
    _write_new(target)
    assert _tree(target) == {"new.txt": "new"}


def test_failure_at_the_second_rename_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _old_target(tmp_path)
    calls = _fail_replace_at(monkeypatch, 2)
    with pytest.raises(OSError, match="rename 2"):
        _write_new(target)
    assert calls[:2] == [("out", ".out.old"), (calls[1][0], "out")] and calls[1][0].endswith(".tmp")
    assert _tree(target) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.undo()
    _write_new(target)
    assert _tree(target) == {"new.txt": "new"}


def test_a_failed_rollback_leaves_the_old_content_for_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _old_target(tmp_path)
    _fail_replace_at(monkeypatch, 2, 3)  # the swap and its rollback both fail: what a crash leaves
    with pytest.raises(OSError, match="rename 2"):
        _write_new(target)
    assert not target.exists()
    assert _tree(tmp_path / ".out.old") == {"old.txt": "old"}  # nothing lost
    monkeypatch.undo()
    # the next call restores the old content first, so a failure inside its block still leaves it in place
    with pytest.raises(RuntimeError), atomic_output_dir(target) as tmp:
        assert _tree(target) == {"old.txt": "old"}
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed again")
    assert _tree(target) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    _write_new(target)
    assert _tree(target) == {"new.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_deleting_the_old_copy_keeps_the_new_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _old_target(tmp_path)
    real_rmtree = shutil.rmtree

    def rmtree(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if Path(path).name == ".out.old":
            raise OSError("simulated crash while deleting .old")
        real_rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with pytest.raises(OSError, match="deleting"):
        _write_new(target)
    assert _tree(target) == {"new.txt": "new"}
    monkeypatch.undo()
    assert recover(target) is False  # the new content is in place: the stale copy goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


CRASH_SCRIPT = """
import importlib.util, os, shutil, sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("atomic_under_test", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
target, point = Path(sys.argv[2]), sys.argv[3]
real_replace, real_rmtree, renames = os.replace, shutil.rmtree, []


def replace(src, dst):
    renames.append(dst)
    if point == f"rename-{len(renames)}":
        os._exit(3)  # no cleanup, no finally: a kill
    real_replace(src, dst)


def rmtree(path, *args, **kwargs):
    if point == "delete-old" and Path(path).name.endswith(".old"):
        os._exit(3)
    real_rmtree(path, *args, **kwargs)


os.replace, shutil.rmtree = replace, rmtree
with atomic.atomic_output_dir(target) as tmp:
    (tmp / "new.txt").write_text("new")
    (tmp / "sub").mkdir()
    (tmp / "sub" / "more.txt").write_text("more")
    if point == "block":
        os._exit(3)
"""


@pytest.mark.parametrize(
    ("point", "survivor"),
    [("block", "old"), ("rename-1", "old"), ("rename-2", "old"), ("delete-old", "new")],
)
def test_a_killed_writer_never_loses_the_old_content(tmp_path: Path, point: str, survivor: str) -> None:
    target = _old_target(tmp_path)
    killed = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(ATOMIC_SOURCE), str(target), point],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == 3, killed.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.endswith(".tmp") for name in left) == (point != "delete-old")
    assert (".out.old" in left) == (point in {"rename-2", "delete-old"})
    assert recover(target) is (point == "rename-2")
    expected = {"old.txt": "old"} if survivor == "old" else {"new.txt": "new", "sub/more.txt": "more"}
    assert _tree(target) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    _write_new(target)  # and the next write completes
    assert _tree(target) == {"new.txt": "new"}


def test_the_next_call_restores_and_cleans_up_by_itself(tmp_path: Path) -> None:
    (tmp_path / ".out.old").mkdir()
    (tmp_path / ".out.old" / "old.txt").write_text("old")
    (tmp_path / ".out.ab12cd34.tmp").mkdir()  # a half-written directory of a killed run
    (tmp_path / ".out.ab12cd34.tmp" / "half.txt").write_text("half")
    (tmp_path / ".other.ab12cd34.tmp").mkdir()  # another target's: not ours to remove
    with atomic_output_dir(tmp_path / "out") as tmp:
        assert _tree(tmp_path / "out") == {"old.txt": "old"}
        assert not (tmp_path / ".out.ab12cd34.tmp").exists()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ab12cd34.tmp", "out"]
    assert _tree(tmp_path / "out") == {"new.txt": "new"}


def test_recover_reports_what_it_did(tmp_path: Path) -> None:
    target = tmp_path / "out"
    assert recover(target) is False
    (tmp_path / ".out.old").mkdir()
    assert recover(target) is True and target.is_dir() and not (tmp_path / ".out.old").exists()
    (tmp_path / ".out.old").mkdir()  # both present: the swap had finished, the old copy is stale
    (target / "keep.txt").write_text("current")
    assert recover(target) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and _tree(target) == {"keep.txt": "current"}


# --- files --------------------------------------------------------------------------------------------------


def test_write_bytes_and_text(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "blob.bin"
    assert write_bytes(target, b"\x00\x01\xff") == target
    assert target.read_bytes() == b"\x00\x01\xff"
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    write_text(tmp_path / "t.txt", "é\nline\n")
    assert (tmp_path / "t.txt").read_bytes() == "é\nline\n".encode()
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["blob.bin"]


def test_a_failed_file_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    _fail_replace_at(monkeypatch, 1)
    with pytest.raises(OSError):
        write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_stale_file_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".m.json.zz99yy88.tmp").write_text("half")  # a killed write of m.json
    (tmp_path / ".m.json.x.zz99yy88.tmp").write_text("other")  # a write of m.json.x: left alone
    write_text(tmp_path / "m.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.json.x.zz99yy88.tmp", "m.json"]


# --- durability ---------------------------------------------------------------------------------------------


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """``("fsync", path)`` and ``("replace", src, dst)`` in the order they happen (Linux: via /proc)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the synced files")
    seen: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_a_written_file_and_its_directory_are_synced(tmp_path: Path, events: list[tuple[str, ...]]) -> None:
    target = (tmp_path / "m.json").resolve()
    write_json(target, {"a": 1})
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert events[0][1] == events[1][1]  # the temporary file itself, before its rename
    assert events[2] == ("fsync", str(target.parent))


def test_every_file_of_a_directory_is_synced_before_the_swap(
    tmp_path: Path, events: list[tuple[str, ...]]
) -> None:
    target = _old_target(tmp_path.resolve())
    with atomic_output_dir(target) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
        tmp_real = tmp.resolve()
    replaces = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert [events[i][1:] for i in replaces] == [
        (str(target), str(target.with_name(".out.old"))),
        (str(tmp_real), str(target)),
    ]
    synced_before = {e[1] for e in events[: replaces[0]] if e[0] == "fsync"}
    assert {str(tmp_real / "a.txt"), str(tmp_real / "sub" / "b.txt"), str(tmp_real / "sub")} <= synced_before
    for i in replaces:  # the parent directory right after each rename
        assert events[i + 1] == ("fsync", str(target.parent))
    assert events[-1] == ("fsync", str(target.parent))  # after deleting .old
