"""Locating weight files offline: explicit path, then the fp cache directory, then known caches.

Nothing here downloads. When a file is missing, :class:`WeightsNotFoundError` says which file to place
where and where it comes from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["WeightsNotFoundError", "find_weight_file", "weights_dir"]

ENV_VAR = "FP_WEIGHTS_DIR"


class WeightsNotFoundError(FileNotFoundError):
    """A weight file is not available locally (fp never downloads at run time)."""


def weights_dir() -> Path:
    """The fp weight cache: ``$FP_WEIGHTS_DIR`` if set, else ``~/.cache/fp``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fp"


def find_weight_file(
    filename: str,
    url: str,
    path: str | os.PathLike | None = None,
    extra_dirs: Iterable[str | os.PathLike] = (),
    what: str = "weights",
) -> Path:
    """Return the local path of ``filename``.

    Looks at ``path`` (a file, or a folder holding ``filename``) if given, else in :func:`weights_dir` and
    then ``extra_dirs``. Raises :class:`WeightsNotFoundError` naming the file, its URL and where to put it.
    """
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / filename
        if p.is_file():
            return p
        raise WeightsNotFoundError(
            f"{what}: {p} does not exist. Download {filename} from {url} and pass its path "
            f"(or place it at {weights_dir() / filename})."
        )
    candidates = [weights_dir() / filename] + [Path(d).expanduser() / filename for d in extra_dirs]
    for c in candidates:
        if c.is_file():
            return c
    searched = ", ".join(str(c) for c in candidates)
    raise WeightsNotFoundError(
        f"{what}: {filename} not found (looked in {searched}). fp does not download at run time: download "
        f"it from {url} and place it at {weights_dir() / filename} (set ${ENV_VAR} to use another folder), "
        f"or pass its path explicitly."
    )
