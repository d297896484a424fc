"""``manifest.json``: what a stage hand-off directory holds, made from which inputs and params.

Every directory one stage hands to another (a checkpoint, an export, a feature cache) carries a manifest::

    {"kind": "parsing-export", "format_version": 1, "created_by": "fp",
     "inputs": {...}, "params": {...}, ...fields}

The reader names the kind it expects and the keys it needs, and gets a :class:`ManifestError` saying which
directory holds what instead of a ``KeyError`` deep inside the consumer. Manifests carry no timestamp, host or
user: the same inputs and params give a byte-identical file, so reruns leave DVC hashes unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fp_core.atomic import write_json

__all__ = ["MANIFEST_FILENAME", "ManifestError", "read_manifest", "write_manifest"]

MANIFEST_FILENAME = "manifest.json"
CREATED_BY = "fp"
_RESERVED = ("kind", "format_version", "created_by", "inputs", "params")


class ManifestError(ValueError):
    """A ``manifest.json`` is missing, unreadable, or not the kind / version / shape the reader expects."""


def _check_version(version: object, what: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{what} must be an int >= 1, got {version!r}")
    return version


def write_manifest(
    directory: str | os.PathLike[str],
    kind: str,
    *,
    version: int = 1,
    inputs: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Path:
    """Write ``directory/manifest.json`` atomically and return its path.

    Records ``kind``, ``format_version`` (= ``version``), ``created_by`` (``"fp"``), ``inputs`` and ``params``
    (``{}`` when not given) and every extra keyword field (sizes, formats, ...). Keys are sorted, values must
    be JSON-serialisable (paths are written as strings). No timestamp is written, so reruns are identical.
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    _check_version(version, "version")
    clashes = sorted(set(fields) & set(_RESERVED))
    if clashes:
        raise ValueError(f"fields {clashes} are set by write_manifest itself; pass them as its own arguments")
    manifest: dict[str, Any] = {
        "kind": kind,
        "format_version": version,
        "created_by": CREATED_BY,
        "inputs": dict(inputs or {}),
        "params": dict(params or {}),
        **fields,
    }
    return write_json(Path(directory) / MANIFEST_FILENAME, manifest)


def read_manifest(
    directory: str | os.PathLike[str],
    kind: str,
    *,
    required: Sequence[str] = (),
    max_version: int | None = None,
) -> dict[str, Any]:
    """Read ``directory/manifest.json`` and check it is a ``kind`` manifest; return its content.

    Raises :class:`ManifestError` naming the file when it is missing or not valid JSON, when its ``kind``
    differs from ``kind``, when its ``format_version`` is missing or above ``max_version`` (a newer format than
    the reader supports), or when a key of ``required`` is absent.
    """
    if max_version is not None:
        _check_version(max_version, "max_version")
    file = Path(directory) / MANIFEST_FILENAME
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            f"{file} does not exist: {directory} is not a finished '{kind}' output "
            f"(rerun the stage that writes it)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{file} cannot be read ({error}); expected a '{kind}' manifest") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(
            f"{file} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            f"expected a '{kind}' manifest"
        ) from None
    if not isinstance(manifest, dict):
        raise ManifestError(
            f"{file} holds a JSON {type(manifest).__name__}, expected an object (a '{kind}' manifest)"
        )
    if "kind" not in manifest:
        raise ManifestError(f"{file} has no 'kind', expected kind '{kind}'")
    if manifest["kind"] != kind:
        raise ManifestError(f"{file} is a {manifest['kind']!r} manifest, expected '{kind}'")
    found = manifest.get("format_version")
    if isinstance(found, bool) or not isinstance(found, int):
        raise ManifestError(f"{file} has no integer 'format_version' (found {found!r}); expected one >= 1")
    if max_version is not None and found > max_version:
        raise ManifestError(
            f"{file} has format_version {found}, newer than this fp supports for '{kind}' "
            f"(at most {max_version}); upgrade fp or rewrite {directory} with this version"
        )
    missing = [key for key in required if key not in manifest]
    if missing:
        raise ManifestError(
            f"{file} lacks {', '.join(repr(k) for k in missing)}; a '{kind}' manifest needs {list(required)}"
        )
    return manifest
