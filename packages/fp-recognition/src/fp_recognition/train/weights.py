"""A trained backbone on disk: ``backbone.safetensors`` + ``backbone.json`` (what rebuilds the network).

``backbone.json`` holds ``{"name", "input_size", "embedding_size", "width", "dropout"}`` (the arguments of
:func:`fp_recognition.backbones.build_backbone`) and may hold anything else the writer adds (``extra``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from fp_core.atomic import write_json
from fp_recognition.backbones import build_backbone

__all__ = [
    "BACKBONE_CONFIG",
    "BACKBONE_WEIGHTS",
    "load_backbone",
    "load_backbone_weights",
    "read_backbone_config",
    "save_backbone",
]

BACKBONE_WEIGHTS = "backbone.safetensors"
BACKBONE_CONFIG = "backbone.json"
_KEYS = ("name", "input_size", "embedding_size", "width", "dropout")


def save_backbone(
    model: nn.Module,
    out_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s state dict and ``config`` (+ ``extra``) into ``out_dir``; returns the weights file."""
    from safetensors.torch import save_file

    missing = [k for k in _KEYS if k not in config]
    if missing:
        raise ValueError(f"backbone config lacks {missing}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / BACKBONE_WEIGHTS))
    write_json(out / BACKBONE_CONFIG, {**{k: config[k] for k in _KEYS}, **dict(extra or {})})
    return out / BACKBONE_WEIGHTS


def _directory(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


def read_backbone_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``backbone.json`` of a saved backbone (``path``: its directory or its weights file)."""
    file = _directory(path) / BACKBONE_CONFIG
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no saved backbone there (expected {BACKBONE_CONFIG})")
    return json.loads(file.read_text(encoding="utf-8"))


def load_backbone_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a saved backbone's weights into ``model`` (strict: every tensor, matching shapes)."""
    from safetensors.torch import load_file

    file = _directory(path) / BACKBONE_WEIGHTS
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no saved backbone weights")
    model.load_state_dict(load_file(str(file)), strict=True)


def load_backbone(path: str | os.PathLike[str], device: str = "cpu") -> nn.Module:
    """Rebuild and load a saved backbone (directory or weights file), in eval mode on ``device``."""
    config = read_backbone_config(path)
    model = build_backbone(
        config["name"],
        input_size=int(config["input_size"]),
        embedding_size=int(config["embedding_size"]),
        dropout=config.get("dropout"),
        width=int(config.get("width", 64)),
    )
    load_backbone_weights(model, path)
    return model.to(device).eval()
