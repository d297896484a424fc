"""Training checkpoints: model and optimiser state as safetensors plus a JSON sidecar, written atomically.

A checkpoint is a directory ``epoch_XXXX`` holding ``model.safetensors``, ``optimizer.safetensors`` and
``state.json``. It is written under a temporary name and renamed into place, so a directory with the final
name is always complete: a run killed mid-write leaves the previous checkpoint as the latest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "load_checkpoint",
    "optimizer_state_from_flat",
    "optimizer_state_to_flat",
    "save_checkpoint",
]

_EPOCH_DIR = re.compile(r"^epoch_(\d{4,})$")
_TENSOR_TAG = "__tensor__"


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes:
        epoch: the last completed epoch (0-based).
        model_state: the model's ``state_dict``.
        optimizer_state: the optimiser's ``state_dict`` (tensors restored).
        extra: the JSON-serialisable training state saved with it (history, global step, ...).
        path: the checkpoint directory.
    """

    epoch: int
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    extra: dict[str, Any]
    path: Path


def optimizer_state_to_flat(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    """Split an optimiser ``state_dict`` into named tensors and a JSON skeleton that refers to them."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, key: str) -> Any:
        if isinstance(node, torch.Tensor):
            tensors[key] = node.detach().cpu().contiguous()
            return {_TENSOR_TAG: key}
        if isinstance(node, Mapping):
            # JSON keys are strings: remember which were ints (param ids in ``state``).
            return {"__map__": [[k, isinstance(k, int), walk(v, f"{key}.{k}")] for k, v in node.items()]}
        if isinstance(node, list | tuple):
            tag = "__tuple__" if isinstance(node, tuple) else "__list__"
            return {tag: [walk(v, f"{key}.{i}") for i, v in enumerate(node)]}
        return node

    return tensors, walk(dict(state), "opt")


def optimizer_state_from_flat(tensors: Mapping[str, torch.Tensor], skeleton: Any) -> Any:
    """Inverse of :func:`optimizer_state_to_flat`."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict) and _TENSOR_TAG in node:
            return tensors[node[_TENSOR_TAG]]
        if isinstance(node, dict) and "__map__" in node:
            return {(int(k) if was_int else k): walk(v) for k, was_int, v in node["__map__"]}
        if isinstance(node, dict) and "__list__" in node:
            return [walk(v) for v in node["__list__"]]
        if isinstance(node, dict) and "__tuple__" in node:
            return tuple(walk(v) for v in node["__tuple__"])
        return node

    return walk(skeleton)


def _epoch_dirs(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _EPOCH_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint of the highest epoch under ``directory``, or None."""
    found = _epoch_dirs(Path(directory))
    return found[-1][1] if found else None


def save_checkpoint(
    directory: str | os.PathLike[str],
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: Mapping[str, Any],
    *,
    keep: int = 2,
) -> Path:
    """Write ``directory/epoch_XXXX`` atomically and keep only the newest ``keep`` checkpoints."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"epoch_{epoch:04d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=directory))
    try:
        model_state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(model_state, str(tmp / "model.safetensors"))
        opt_tensors, skeleton = optimizer_state_to_flat(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        state = {"epoch": epoch, "optimizer": skeleton, "extra": dict(extra)}
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in _epoch_dirs(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint directory written by :func:`save_checkpoint`; errors name the broken file."""
    path = Path(path)
    files = {name: path / name for name in ("model.safetensors", "optimizer.safetensors", "state.json")}
    for name, file in files.items():
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint {path} is incomplete: {name} is missing")
    try:
        state = json.loads(files["state.json"].read_text(encoding="utf-8"))
        model_state = load_file(str(files["model.safetensors"]))
        opt_tensors = load_file(str(files["optimizer.safetensors"]))
    except (OSError, ValueError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint {path} could not be read: {error}") from error
    return Checkpoint(
        epoch=int(state["epoch"]),
        model_state=model_state,
        optimizer_state=optimizer_state_from_flat(opt_tensors, state["optimizer"]),
        extra=state.get("extra", {}),
        path=path,
    )
