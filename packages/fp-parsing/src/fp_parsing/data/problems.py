"""One problem a dataset check found: the file at fault and what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DatasetProblem", "problem_from_error"]


@dataclass(frozen=True)
class DatasetProblem:
    """``path`` (the file or folder at fault) and ``message`` (what is wrong, without the path)."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def problem_from_error(error: BaseException, default_path: Path) -> DatasetProblem:
    """A problem from a loader error: its ``path`` (or ``filename``) when set, else ``default_path``.

    A message that starts with ``"<path>: "`` loses that prefix, so the path is not printed twice.
    """
    where = getattr(error, "path", None) or getattr(error, "filename", None) or default_path
    path = Path(where)
    message = str(error)
    prefix = f"{path}: "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    return DatasetProblem(path, message)
