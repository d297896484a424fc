"""Locating weight files offline: explicit path, then the fp cache directory, then known caches.

Nothing here downloads. When a file is missing, :class:`WeightsNotFoundError` says which file to place
where and where it comes from.

* :func:`find_weight_file`: a file known by name and URL, in ``$FP_WEIGHTS_DIR`` (default ``~/.cache/fp``);
* :func:`hub_file`: a file of a Hugging Face repo, from the local hub cache or
  ``$FP_WEIGHTS_DIR/<repo_id>/<filename>``, without any network call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["WeightsNotFoundError", "find_weight_file", "hub_cache_dir", "hub_file", "weights_dir"]

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


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``.

    (``~/.cache`` is ``$XDG_CACHE_HOME`` when that is set, as in ``huggingface_hub``.) Read from the
    environment at each call, so a change of the variables after import is seen.
    """
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "huggingface")
    return Path(home).expanduser() / "hub"


def _is_commit(revision: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{40}", revision) is not None


def hub_file(repo_id: str, filename: str, *, revision: str = "main", what: str = "weights") -> Path:
    """The local path of ``filename`` of the Hugging Face model repo ``repo_id`` at ``revision``.

    Looks in the hub cache (:func:`hub_cache_dir`, with ``huggingface_hub.try_to_load_from_cache``, which
    only reads files), then at ``$FP_WEIGHTS_DIR/<repo_id>/<filename>``. Never opens a connection. Raises
    :class:`WeightsNotFoundError` naming both places, the revision and the command that fetches the file on a
    connected machine; ``what`` starts the message.
    """
    from huggingface_hub import try_to_load_from_cache

    cache = hub_cache_dir()
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
    if isinstance(cached, str) and os.path.isfile(cached):
        return Path(cached)
    fp_file = weights_dir() / repo_id / filename
    if fp_file.is_file():
        return fp_file
    repo_cache = cache / f"models--{repo_id.replace('/', '--')}"
    if _is_commit(revision):
        hub_place = f"{repo_cache / 'snapshots' / revision / filename} exists"
    else:
        hub_place = (
            f"{repo_cache / 'refs' / revision} names a commit and "
            f"{repo_cache / 'snapshots' / '<commit>' / filename} exists"
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    raise WeightsNotFoundError(
        f"{what}: {filename} of the Hugging Face repo {repo_id} at revision {revision} is not available "
        f"locally{' (HF_HUB_OFFLINE is set)' if offline else ''} and fp does not download at run time. Either "
        f"(a) on a connected machine run `hf download {repo_id} {filename} --revision {revision}` and copy "
        f"its hub cache here so that {hub_place} (the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else "
        f"~/.cache/huggingface/hub); or (b) place the file at {fp_file} "
        f"($FP_WEIGHTS_DIR/{repo_id}/{filename}, default ~/.cache/fp)."
    )
