"""Loading StyleGAN2 weights without unpickling untrusted files, and the one guarded pickle conversion.

* :func:`load_stylegan2` reads a ``.safetensors`` file or a plain tensor state dict ``.pt`` / ``.pth``
  (``torch.load(weights_only=True)``: tensors and containers only, no code) into a
  :class:`~fp_qdgs.faces.stylegan2.StyleGAN2Generator` with ``strict=True``; anything else is refused.
* :func:`convert_network_pickle` turns NVIDIA's network pickle (``network-snapshot-*.pkl``, e.g. the FFHQ-256
  ``paper256`` snapshot) into safetensors. A pickle can run any code while it loads (NVIDIA's even carry their
  module source and ``exec`` it), so the function REFUSES unless ``trust_pickle=True``. With the flag it uses a
  restricted unpickler: it resolves only ``collections.OrderedDict``, torch's tensor / parameter / storage
  rebuild functions and dtypes, plain values (numpy scalars and dtypes, ``set``), ``dnnlib.util.EasyDict``
  (as a dict) and the persistence hook ``torch_utils.persistence._reconstruct_persistent_obj``, which it replaces by a stub that keeps the object's
  state and never executes the embedded source. Storages are read with ``torch.load(weights_only=True)``. Any
  other global ends the load with an error naming it. Restricted, but still an unpickler: only convert
  pickles from a source you trust (the official NVIDIA release), once, and keep the safetensors output.
"""

from __future__ import annotations

import collections
import importlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from fp_core.atomic import write_bytes
from fp_qdgs.faces.stylegan2 import StyleGAN2Config, StyleGAN2Generator

__all__ = [
    "STATE_DICT_SUFFIXES",
    "UntrustedPickleError",
    "convert_network_pickle",
    "load_stylegan2",
    "load_state_dict_file",
    "save_stylegan2",
]

STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth")


class UntrustedPickleError(PermissionError):
    """A network pickle was not converted because the caller did not vouch for it (``trust_pickle=False``)."""


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` from a ``.safetensors`` file or a ``.pt`` / ``.pth`` tensor dict (weights only)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in STATE_DICT_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported weight file {suffix or '(no suffix)'!r}; expected one of {STATE_DICT_SUFFIXES} "
            "(convert a network .pkl with convert_network_pickle first)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (StyleGAN2 weights: a .safetensors state dict)")
    if suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for corrupt files
            raise ValueError(f"{path} is not a readable safetensors file: {error}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an UnpicklingError for anything but tensors and containers
        raise ValueError(
            f"{path} is not a plain tensor state dict (torch.load weights_only): {error}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path} must hold a flat {{name: tensor}} state dict, got {type(state).__name__}")
    return dict(state)


def load_stylegan2(
    path: str | os.PathLike[str], *, config: StyleGAN2Config, device: str | torch.device = "cpu"
) -> StyleGAN2Generator:
    """A :class:`StyleGAN2Generator` of ``config`` with the weights of ``path`` (strict names and shapes), in
    eval mode on ``device``."""
    state = load_state_dict_file(path)
    generator = StyleGAN2Generator(config)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path} does not match StyleGAN2Config {config.to_dict()}: {error}") from None
    return generator.eval().to(device)


def save_stylegan2(generator: StyleGAN2Generator, path: str | os.PathLike[str]) -> Path:
    """Write ``generator``'s state dict to ``path`` as safetensors, atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    return write_bytes(path, save(state))


class _Persistent:
    """Stand-in for a ``torch_utils.persistence`` object: its pickled ``state`` (``__dict__``), no code."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.class_name = meta.get("class_name")
        self.state = meta.get("state") or {}


def _reconstruct_stub(meta: dict[str, Any]) -> _Persistent:
    return _Persistent(meta)


def _storage_from_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class _EasyDict(dict):
    """``dnnlib.util.EasyDict`` read as a plain dict (its state arrives through ``__setstate__`` or items)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
}
#: plain values a module's ``__dict__`` holds (numpy scalars such as ``weight_gain``, sets, dtypes)
_VALUE_GLOBALS = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in _TORCH_GLOBALS or (module, name) in _VALUE_GLOBALS:
            return getattr(importlib.import_module(module), name)
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _storage_from_bytes
        if module == "torch" and (
            name.endswith("Storage") or isinstance(getattr(torch, name, None), torch.dtype)
        ):
            return getattr(torch, name)
        if (module, name) == ("torch_utils.persistence", "_reconstruct_persistent_obj"):
            return _reconstruct_stub
        if (module, name) == ("dnnlib.util", "EasyDict"):
            return _EasyDict
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name} from a network pickle (not on the allow list)"
        )


def _flatten(obj: _Persistent, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = obj.state
    skip = set(state.get("_non_persistent_buffers_set", ()))
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is not None and name not in skip:
                out[prefix + name] = value.detach().clone().contiguous()
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, _Persistent):
            _flatten(child, f"{prefix}{name}.", out)
        elif child is not None:
            raise pickle.UnpicklingError(f"submodule {prefix}{name} is not a persistent network object")


def convert_network_pickle(
    pkl_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    key: str = "G_ema",
) -> Path:
    """Convert network ``key`` (``"G_ema"``) of an NVIDIA network pickle to a safetensors state dict.

    Refuses with :class:`UntrustedPickleError` (before opening the file) unless ``trust_pickle=True``; then
    reads it with the restricted unpickler of the module docstring. Returns ``out_path``.
    """
    pkl_path = Path(pkl_path)
    if not trust_pickle:
        raise UntrustedPickleError(
            f"not unpickling {pkl_path}: a pickle can execute arbitrary code while it loads (NVIDIA network "
            "pickles embed and run their own source). If it comes from a source you trust (the official "
            "release), pass trust_pickle=True to convert it once to safetensors, then load only that file."
        )
    with pkl_path.open("rb") as handle:
        data = _RestrictedUnpickler(handle).load()
    network = data.get(key) if isinstance(data, dict) else None
    if not isinstance(network, _Persistent):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{pkl_path} has no persistent network under {key!r} (found {keys})")
    state: dict[str, torch.Tensor] = {}
    _flatten(network, "", state)
    return write_bytes(
        out_path, save({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    )
