"""The QDGS faces hand-off: an identity-folder dataset ``<root>/<identity>/<n>.jpg`` with a manifest.

Layout (written atomically with :func:`fp_core.atomic.atomic_output_dir`)::

    <root>/id-00000/000000.jpg   identity 0: variant v of its j-th solution is image j * V + v
    <root>/id-00001/...
    <root>/manifest.json         kind "qdgs-identities"

This is the layout :class:`fp_recognition.data.folder.ImageFolderDataset` reads (identities in sorted folder
order = label order, images sorted by name, so the zero-padded names keep solution / variant order). Every
variant of every solution of an identity lies in its folder.

The manifest records ``num_identities``, ``num_solutions``, ``variants_per_solution``, ``num_images``,
``image_size`` ``[S, S]``, ``jpeg_quality``, ``measure_names``, ``aligned`` (whether an ``align`` hook ran),
``identities`` (per identity: ``name``, ``images``, ``solutions`` (archive row indices) and their ``measures``)
and the caller's ``provenance``.

Alignment: images must reach the recogniser at its input size ``S`` (112 for ArcFace / AdaFace), aligned. The
synthetic faces are aligned by construction (the renderer places the face), so with ``align=None`` they are only
resized (PIL bicubic) when their size differs from ``S``. Real-scale faces (StyleGAN2 FFHQ) need a face-alignment
hook: ``align(images uint8 [B, H, W, 3]) -> uint8 [B, S, S, 3]`` given by the caller (e.g. landmark detection and
a similarity warp to the ArcFace template); it runs on every chunk before encoding.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from fp_core.atomic import atomic_output_dir
from fp_core.manifest import ManifestError, read_manifest, write_manifest

__all__ = [
    "IDENTITIES_KIND",
    "AlignFn",
    "IdentityFolder",
    "ImageSource",
    "identity_name",
    "image_name",
    "read_identity_folder",
    "write_identity_folder",
]

IDENTITIES_KIND = "qdgs-identities"
IDENTITIES_VERSION = 1
_REQUIRED = (
    "num_identities",
    "num_solutions",
    "variants_per_solution",
    "num_images",
    "image_size",
    "measure_names",
    "identities",
)

#: ``align(images uint8 [B, H, W, 3]) -> uint8 [B, S, S, 3]``.
AlignFn = Callable[[np.ndarray], np.ndarray]
#: ``uint8 [N, V, H, W, 3]``, or ``source(start, stop) -> uint8 [stop - start, V, H, W, 3]``.
ImageSource = np.ndarray | torch.Tensor | Callable[[int, int], np.ndarray | torch.Tensor]


class IdentityFolder(NamedTuple):
    """A folder read back: ``root``, identity ``names`` (index = label), ``files`` per identity (paths relative
    to ``root``, in order), ``labels [num_images]`` int64 in sorted file order, and the ``manifest``."""

    root: Path
    names: list[str]
    files: list[list[str]]
    labels: np.ndarray
    manifest: dict[str, Any]


def identity_name(label: int) -> str:
    """Folder name of identity ``label``: ``id-00012``."""
    return f"id-{label:05d}"


def image_name(n: int) -> str:
    """File name of image ``n`` of an identity: ``000007.jpg``."""
    return f"{n:06d}.jpg"


def _uint8_chunk(chunk: np.ndarray | torch.Tensor, rows: int, where: str) -> np.ndarray:
    array = chunk.detach().cpu().numpy() if isinstance(chunk, torch.Tensor) else np.asarray(chunk)
    if array.dtype != np.uint8 or array.ndim != 5 or array.shape[0] != rows or array.shape[-1] != 3:
        raise ValueError(
            f"{where} must be uint8 [{rows}, V, H, W, 3], got {array.dtype} of shape {array.shape}"
        )
    return array


def _fit(images: np.ndarray, size: int, align: AlignFn | None) -> np.ndarray:
    """``images uint8 [B, H, W, 3]`` -> ``[B, S, S, 3]`` through ``align`` or a bicubic resize."""
    if align is not None:
        out = np.asarray(align(images))
        if out.dtype != np.uint8 or out.shape != (len(images), size, size, 3):
            raise ValueError(
                f"align must return uint8 [{len(images)}, {size}, {size}, 3], got {out.dtype} {out.shape}"
            )
        return out
    if images.shape[1:3] == (size, size):
        return images
    resized = [Image.fromarray(x).resize((size, size), Image.Resampling.BICUBIC) for x in images]
    return np.stack([np.asarray(x) for x in resized])


def _check_identities(identities: Any, measures: Any, measure_names: Sequence[str] | None) -> tuple:
    ids = (
        identities.detach().cpu().numpy() if isinstance(identities, torch.Tensor) else np.asarray(identities)
    )
    if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"identities must be a non-empty int array [N], got {ids.dtype} {ids.shape}")
    k = int(ids.max()) + 1
    if ids.min() < 0 or len(np.unique(ids)) != k:
        raise ValueError(
            f"identities must be contiguous labels 0..K-1 (each used), got {sorted(set(ids))[:10]}..."
        )
    m = measures.detach().cpu().numpy() if isinstance(measures, torch.Tensor) else np.asarray(measures)
    if m.ndim != 2 or len(m) != len(ids):
        raise ValueError(f"measures must have shape [N={len(ids)}, M], got {m.shape}")
    names = [f"m{i}" for i in range(m.shape[1])] if measure_names is None else [str(x) for x in measure_names]
    if len(names) != m.shape[1]:
        raise ValueError(f"measure_names has {len(names)} names for {m.shape[1]} measures")
    return ids.astype(np.int64), m.astype(np.float64), names, k


def write_identity_folder(
    images: ImageSource,
    identities: torch.Tensor | np.ndarray,
    out_dir: str | os.PathLike[str],
    *,
    measures: torch.Tensor | np.ndarray,
    provenance: Mapping[str, Any],
    image_size: int = 112,
    jpeg_quality: int = 95,
    align: AlignFn | None = None,
    measure_names: Sequence[str] | None = None,
    chunk_size: int = 64,
) -> Path:
    """Write solutions' variants as an identity folder (module docstring); return ``out_dir``.

    ``images`` is uint8 ``[N, V, H, W, 3]`` or a callable ``(start, stop) -> [stop - start, V, H, W, 3]``
    called for consecutive chunks of ``chunk_size`` solutions (so a generator need not hold all in memory).
    ``identities [N]`` are contiguous labels (:func:`fp_qdgs.faces.identities.identity_labels`),
    ``measures [N, M]`` the solutions' measures. Images are fitted to ``image_size`` (``align`` or a resize) and
    saved as JPEG with ``jpeg_quality``.
    """
    ids, m, names, k = _check_identities(identities, measures, measure_names)
    if not 1 <= jpeg_quality <= 100 or image_size < 1 or chunk_size < 1:
        raise ValueError(
            f"need 1 <= jpeg_quality <= 100, image_size >= 1, chunk_size >= 1; got "
            f"{jpeg_quality}, {image_size}, {chunk_size}"
        )
    source = images if callable(images) else None
    counts = np.zeros(k, dtype=np.int64)
    variants = None
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir) as tmp:
        for label in range(k):
            (tmp / identity_name(label)).mkdir()
        for start in range(0, len(ids), chunk_size):
            stop = min(start + chunk_size, len(ids))
            raw = source(start, stop) if source is not None else images[start:stop]  # type: ignore[index]
            chunk = _uint8_chunk(
                raw, stop - start, "images" if source is None else f"images({start}, {stop})"
            )
            if variants is not None and chunk.shape[1] != variants:
                raise ValueError(f"images({start}, {stop}) has {chunk.shape[1]} variants, earlier {variants}")
            variants = chunk.shape[1]
            fitted = _fit(chunk.reshape(-1, *chunk.shape[2:]), image_size, align).reshape(
                stop - start, variants, image_size, image_size, 3
            )
            for row, label in zip(fitted, ids[start:stop]):
                folder = tmp / identity_name(int(label))
                for picture in row:
                    Image.fromarray(picture).save(
                        folder / image_name(int(counts[label])), quality=jpeg_quality
                    )
                    counts[label] += 1
        per_identity = [
            {
                "name": identity_name(label),
                "images": int(counts[label]),
                "solutions": [int(i) for i in np.flatnonzero(ids == label)],
                "measures": [[float(v) for v in m[i]] for i in np.flatnonzero(ids == label)],
            }
            for label in range(k)
        ]
        write_manifest(
            tmp,
            IDENTITIES_KIND,
            version=IDENTITIES_VERSION,
            num_identities=k,
            num_solutions=len(ids),
            variants_per_solution=int(variants or 0),
            num_images=int(counts.sum()),
            image_size=[image_size, image_size],
            jpeg_quality=jpeg_quality,
            aligned=align is not None,
            measure_names=names,
            identities=per_identity,
            provenance=dict(provenance),
        )
    return out_dir


def _check_identity(root: Path, label: int, entry: Any, size: list[int], variants: int) -> list[str]:
    name = identity_name(label)
    manifest = root / "manifest.json"
    if not isinstance(entry, dict) or entry.get("name") != name:
        raise ManifestError(
            f"{manifest}: identities[{label}] must be an object named {name!r}, got {entry!r:.80}"
        )
    folder = root / name
    if not folder.is_dir():
        raise ManifestError(f"{folder} is missing (listed in {manifest})")
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    expected = [image_name(n) for n in range(int(entry.get("images", -1)))]
    if files != expected or len(expected) != variants * len(entry.get("solutions", [])):
        raise ManifestError(
            f"{folder} holds {len(files)} files, {manifest} lists {entry.get('images')} images "
            f"({variants} variants x {len(entry.get('solutions', []))} solutions) named 000000.jpg .."
        )
    for file in files:
        with Image.open(folder / file) as image:
            if list(image.size[::-1]) != list(size):
                raise ManifestError(
                    f"{folder / file} is {image.size[1]}x{image.size[0]}, {manifest} says {size}"
                )
    return [f"{name}/{f}" for f in files]


def read_identity_folder(directory: str | os.PathLike[str]) -> IdentityFolder:
    """Read and validate an identity folder against its ``qdgs-identities`` manifest.

    Raises :class:`fp_core.manifest.ManifestError` naming the file or folder that disagrees with the manifest
    (a missing identity folder, a wrong number of images, an image of the wrong size, wrong totals).
    """
    root = Path(directory)
    manifest = read_manifest(root, IDENTITIES_KIND, required=_REQUIRED, max_version=IDENTITIES_VERSION)
    entries = manifest["identities"]
    if not isinstance(entries, list) or len(entries) != manifest["num_identities"]:
        raise ManifestError(
            f"{root / 'manifest.json'}: 'identities' must list 'num_identities' = {manifest['num_identities']} "
            f"entries, got {len(entries) if isinstance(entries, list) else type(entries).__name__}"
        )
    size, variants = manifest["image_size"], int(manifest["variants_per_solution"])
    files = [_check_identity(root, i, e, size, variants) for i, e in enumerate(entries)]
    extra = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if extra != [identity_name(i) for i in range(len(entries))]:
        raise ManifestError(
            f"{root} holds folders {extra[:5]}..., {root / 'manifest.json'} lists {len(entries)}"
        )
    total = sum(len(f) for f in files)
    solutions = sum(len(e["solutions"]) for e in entries)
    if total != manifest["num_images"] or solutions != manifest["num_solutions"]:
        raise ManifestError(
            f"{root / 'manifest.json'}: 'num_images' {manifest['num_images']} / 'num_solutions' "
            f"{manifest['num_solutions']} differ from the folders' {total} images / {solutions} solutions"
        )
    labels = np.concatenate([np.full(len(f), i, dtype=np.int64) for i, f in enumerate(files)])
    return IdentityFolder(root, [e["name"] for e in entries], files, labels, manifest)
