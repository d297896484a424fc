"""Atomic writes: every file or directory appears under its final name complete, or not at all.

Used by every library (training, evaluation, export) and by the pipeline app for its own stage outputs.

Files go through a temporary sibling that is flushed to disk (``fsync``) before ``os.replace`` puts it under
its final name; the parent directory is synced after the rename so that the new name itself survives a power
cut. :func:`atomic_output_dir` replaces a whole directory in two renames (``path -> .path.old``, then
``temp -> path``) and deletes ``.path.old`` only once the new ``path`` is in place. A crash between the two
renames leaves ``.path.old`` and no ``path``: :func:`recover` (run at the start of every
:func:`atomic_output_dir`) renames it back, so the previous content is never lost. Temporary siblings left by
a crashed writer (``.<name>.<8 characters>.tmp``) are removed by the next write of the same name.

One writer per target at a time: two processes writing the same path concurrently is not supported.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_output_dir", "recover", "write_bytes", "write_json", "write_text"]


def _fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries (names created, renamed or removed in it) to disk; POSIX only."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """``fsync`` every regular file under ``root``, then every directory, deepest first (``root`` last)."""
    for current, _dirs, files in os.walk(root, topdown=False):
        here = Path(current)
        for name in files:
            file = here / name
            if file.is_file() and not file.is_symlink():
                _fsync_file(file)
        _fsync_dir(here)


def _ensure_dir(directory: Path) -> None:
    """``mkdir -p directory``, syncing the parent of every directory it creates."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        _fsync_dir(created.parent)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _old_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove ``.<name>.<8 chars>.tmp`` siblings of ``path`` (left by a writer that crashed); return them."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    if not path.parent.is_dir():
        return []
    stale = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)]
    for p in stale:
        _remove(p)
    if stale:
        _fsync_dir(path.parent)
    return stale


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a synced temporary sibling and ``os.replace``; return ``path``."""
    path = Path(path)
    _ensure_dir(path.parent)
    _remove_stale_temporaries(path)
    tmp = _temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path``, atomically and synced (``\\n`` kept as is on every platform)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically (NaN written as ``NaN``, as Python's json does)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def recover(path: str | os.PathLike[str]) -> bool:
    """Repair what a crashed :func:`atomic_output_dir` left at ``path``; return whether it restored content.

    * ``path`` missing and ``.<name>.old`` present (a crash between the two renames): rename ``.old`` back
      to ``path`` and return ``True``;
    * both present (a crash after the new ``path`` was in place): delete ``.old``;
    * temporary siblings ``.<name>.*.tmp`` (a crash inside the block or before the swap): delete them.
    """
    path = Path(path)
    old = _old_name(path)
    restored = False
    if os.path.lexists(old):
        if not os.path.lexists(path):
            os.replace(old, path)
            restored = True
        else:
            _remove(old)
        _fsync_dir(path.parent)
    _remove_stale_temporaries(path)
    return restored


def _swap_in(tmp: Path, path: Path) -> None:
    """``path -> .old``, ``tmp -> path``, then delete ``.old``; the parent is synced after each step."""
    old = _old_name(path)
    if os.path.lexists(path):
        os.replace(path, old)
        _fsync_dir(path.parent)
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(old) and not os.path.lexists(path):  # roll back now rather than at the next call
            try:
                os.replace(old, path)
                _fsync_dir(path.parent)
            except OSError:
                pass  # .old stays: the next call's recover() renames it back; report the original error
        raise
    _fsync_dir(path.parent)
    if os.path.lexists(old):
        _remove(old)
        _fsync_dir(path.parent)


@contextmanager
def atomic_output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` when the block succeeds.

    On an exception the temporary directory is removed and ``path`` keeps what it held before. Every file in
    the temporary directory is synced before the swap. A crash at any point leaves either the old or the new
    content under ``path`` once :func:`recover` has run, which every call does first.
    """
    path = Path(path)
    _ensure_dir(path.parent)
    recover(path)
    tmp = _temp_name(path)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
