"""params.yaml: the one place every stage reads its settings from."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULT_PARAMS_PATH", "ParamsError", "deep_merge", "flatten", "load_params", "section"]

DEFAULT_PARAMS_PATH = Path("params.yaml")


class ParamsError(ValueError):
    """A params file that is missing, unreadable or lacks a required section."""


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """Read a params.yaml file into a dict, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} not found: run from the repository root or pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"params file {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ParamsError(
            f"params file {path} must hold a mapping at the top level, got {type(data).__name__}"
        )
    return data


def section(params: Mapping[str, Any], dotted: str, *, source: str = "params.yaml") -> Any:
    """Return ``params[a][b]...`` for ``dotted = "a.b..."``, naming the missing key on failure."""
    node: Any = params
    walked: list[str] = []
    for key in dotted.split("."):
        walked.append(key)
        if not isinstance(node, Mapping) or key not in node:
            raise ParamsError(f"{source} has no key {'.'.join(walked)!r} (needed: {dotted!r})")
        node = node[key]
    return copy.deepcopy(node)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys: ``{"a": {"b": 1}} -> {"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat
