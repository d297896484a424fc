"""insightface's verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ``calfw.bin``, ``cplfw.bin``).

**Format.** One pickle of ``(bins, issame_list)``: ``bins`` a list of ``2P`` encoded images (JPEG, 112x112,
already aligned), pair ``p`` being ``bins[2p], bins[2p + 1]``; ``issame_list`` ``P`` booleans. The released
files were written by Python 2 (protocol 2: the images are Python-2 ``str``, the booleans plain ``True`` /
``False``), which is why insightface's ``load_bin`` retries with ``encoding='bytes'``. Files re-dumped from
Python 3 hold ``bytes``; some hold numpy arrays (``issame_list`` as a bool array, images as uint8 buffers).

**Restricted loading.** The pickle is read with an unpickler whose ``find_class`` admits only what those
files can contain besides builtin containers (which need no global at all):

* numpy's array reconstruction (``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray
  ._reconstruct``, ``numpy.ndarray``), numpy scalars (``...multiarray.scalar``) and ``numpy.dtype`` limited
  to bool and uint8;
* ``_codecs.encode`` limited to latin-1 (how Python 3 protocol-2 pickles spell ``bytes``).

Any other global (``os.system``, ``builtins.eval`` ...) raises :class:`DataFormatError` naming the file and the
global, before anything is called. The pickle is read with ``encoding='latin1'`` and Python-2 strings are
turned back into the exact bytes. The loaded object is then checked: a pair ``(images, issame)`` with
``len(images) == 2 * len(issame)``, images bytes (or uint8 buffers) and issame booleans.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fp_recognition.data.errors import DataFormatError
from fp_recognition.data.images import ImageLike, LazyImages, encode_jpeg

__all__ = ["VERIFICATION_SETS", "VerificationBin", "load_bin", "load_bins", "write_bin"]

#: The five sets insightface evaluates on, as ``<name>.bin``.
VERIFICATION_SETS: tuple[str, ...] = ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw")

_RECONSTRUCT = np.ndarray((0,), dtype=np.uint8).__reduce__()[0]
_SCALAR = np.bool_(True).__reduce__()[0]
_ALLOWED_DTYPES = {"b1", "?", "bool", "u1", "uint8", "|b1", "|u1"}


def _dtype(name: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if isinstance(name, bytes):
        name = name.decode("latin1")
    if not isinstance(name, str) or name not in _ALLOWED_DTYPES:
        raise pickle.UnpicklingError(f"numpy dtype {name!r} (only bool and uint8 arrays are admitted)")
    return np.dtype(name, align=bool(align), copy=bool(copy))


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} (only latin1 is admitted)")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _BinUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataFormatError(
                self.path,
                f"refused global {module}.{name}: a verification .bin holds only images and booleans "
                "(crafted or foreign pickle?)",
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise DataFormatError(self.path, "refused persistent id: not a verification .bin")


def _as_bytes(item: Any, path: Path, index: int) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):  # a Python 2 str read with latin1: the same bytes
        return item.encode("latin1")
    if isinstance(item, bytearray):
        return bytes(item)
    if isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim == 1:
        return item.tobytes()
    raise DataFormatError(path, f"image is a {type(item).__name__}, expected encoded bytes", f"image {index}")


def _as_issame(value: Any, path: Path) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.dtype != np.bool_ or value.ndim != 1:
            raise DataFormatError(path, f"issame array must be bool [P], got {value.dtype} {value.shape}")
        return value.copy()
    if not isinstance(value, list | tuple):
        raise DataFormatError(path, f"issame must be a list of booleans, got {type(value).__name__}")
    for p, v in enumerate(value):
        if not isinstance(v, bool | np.bool_):
            raise DataFormatError(path, f"issame entry is {type(v).__name__} {v!r}, expected a bool", f"pair {p}")
    return np.asarray(value, dtype=bool)


@dataclass(frozen=True)
class VerificationBin:
    """A loaded verification set: ``images`` ``2P`` encoded images, pair ``p`` = ``(2p, 2p + 1)``.

    Attributes:
        name: the set (file stem). path: the file. images: ``list[bytes]`` ``[2P]``. issame: bool ``[P]``.
    """

    name: str
    path: Path
    images: list[bytes]
    issame: np.ndarray

    @property
    def num_pairs(self) -> int:
        """P."""
        return int(self.issame.size)

    def tensors(self, image_size: int | None = None, *, normalise: bool = True, bgr: bool = False) -> LazyImages:
        """The images decoded on access, ``[3, S, S]`` each (see :class:`LazyImages`)."""
        return LazyImages(self.images, origin=self.path, image_size=image_size, normalise=normalise, bgr=bgr)


def load_bin(path: str | os.PathLike[str], name: str | None = None) -> VerificationBin:
    """Read one ``.bin`` set through the restricted unpickler (module doc); ``name`` defaults to the stem."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            obj = _BinUnpickler(handle, path).load()  # type: ignore[arg-type]
    except DataFormatError:
        raise
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise DataFormatError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, tuple | list) or len(obj) != 2:
        raise DataFormatError(path, f"expected a pair (images, issame), got {type(obj).__name__}")
    raw_images, raw_issame = obj
    if not isinstance(raw_images, list | tuple):
        raise DataFormatError(path, f"images must be a list, got {type(raw_images).__name__}")
    issame = _as_issame(raw_issame, path)
    if len(raw_images) != 2 * issame.size:
        raise DataFormatError(
            path, f"{len(raw_images)} images for {issame.size} pairs (expected {2 * issame.size})"
        )
    images = [_as_bytes(item, path, i) for i, item in enumerate(raw_images)]
    return VerificationBin(name or path.stem, path, images, issame)


def load_bins(root: str | os.PathLike[str], names: Iterable[str] = VERIFICATION_SETS) -> dict[str, VerificationBin]:
    """Read ``<root>/<name>.bin`` for each name; a :class:`DataFormatError` listing any that are missing."""
    root = Path(root)
    names = list(names)
    missing = [n for n in names if not (root / f"{n}.bin").is_file()]
    if missing:
        raise DataFormatError(root, f"missing verification sets: {', '.join(f'{n}.bin' for n in missing)}")
    return {n: load_bin(root / f"{n}.bin", n) for n in names}


def write_bin(
    path: str | os.PathLike[str], images: Sequence[ImageLike], issame: Sequence[bool] | np.ndarray, *, quality: int = 95
) -> Path:
    """Write a ``.bin`` set: a pickle (protocol 4) of ``(list of JPEG bytes, list of bool)``, atomically.

    ``images`` holds ``2P`` images (bytes stored as they are, others JPEG-encoded), ``issame`` ``P`` flags.
    """
    flags = [bool(v) for v in np.asarray(issame, dtype=bool).ravel()]
    if len(images) != 2 * len(flags):
        raise ValueError(f"need 2 * {len(flags)} images for {len(flags)} pairs, got {len(images)}")
    data = pickle.dumps(([encode_jpeg(img, quality) for img in images], flags), protocol=4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
