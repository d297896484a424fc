"""The one error type of the readers: bad input, named by its file and its record, line or image."""

from __future__ import annotations

import os

__all__ = ["DataFormatError"]


class DataFormatError(ValueError):
    """A dataset file that does not hold what its format promises.

    The message starts with the file (and, where there is one, the record, line or image) so the bad input
    can be found: ``"<path>: record 17 at byte 4096: truncated ..."``.

    Attributes:
        path: the offending file or folder. where: the record, line or entry inside it ('' if none).
    """

    def __init__(self, path: str | os.PathLike[str], message: str, where: str = "") -> None:
        self.path = str(path)
        self.where = where
        location = f"{self.path}: {where}: " if where else f"{self.path}: "
        super().__init__(location + message)
