"""The QDGS hand-off: generated samples as an image-folder dataset with their measures, objectives and latents.

Layout of an export directory (written atomically with :func:`fp_core.atomic.atomic_output_dir`)::

    <dir>/<label_name>/<n:06d>.png   image n (torchvision ``ImageFolder`` layout; n counts over all images)
    <dir>/samples.csv                file, label, objective, one column per measure; one row per image, in order
    <dir>/latents.npy                float32 [N, n] latents, row i made image i (``np.load(allow_pickle=False)``)
    <dir>/manifest.json              kind "qdgs-export": counts per label, label and measure names, provenance

:func:`read_export` reads it back and checks every file against the manifest. :func:`label_by_threshold` labels
samples by one measure (the paper labels the shapes by the shape measure), and :func:`archive_export` decodes a
``ribs`` ``GridArchive``'s elites (QDGS's result archive or the random baseline's) and exports them.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from ribs.archives import GridArchive

from fp_core.atomic import atomic_output_dir
from fp_core.manifest import ManifestError, read_manifest, write_manifest
from fp_qdgs.archives import archive_metrics, sample_archive
from fp_qdgs.checkpoint import archive_settings
from fp_qdgs.protocols import Generator, generate

__all__ = [
    "EXPORT_KIND",
    "IMAGE_FORMATS",
    "QDGSExport",
    "archive_export",
    "decode_latents",
    "export_samples",
    "label_by_threshold",
    "read_export",
    "to_uint8",
]

EXPORT_KIND = "qdgs-export"
EXPORT_VERSION = 1
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG"}  # file suffix -> PIL format (png is lossless)
SAMPLES_CSV = "samples.csv"
LATENTS_FILE = "latents.npy"
_REQUIRED = (
    "num_samples",
    "counts",
    "label_names",
    "measure_names",
    "image_format",
    "image_size",
    "latent_dim",
)


class QDGSExport(NamedTuple):
    """An export read back.

    ``images [N, 3, H, W]`` uint8 (:meth:`float_images` for ``[0, 1]``), ``labels [N]`` int64,
    ``measures [N, k]`` float32, ``objectives [N]`` float32, ``latents [N, n]`` float32, ``files`` (N paths
    relative to the export directory), ``label_names``, ``measure_names``, ``provenance``, ``manifest``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    measures: torch.Tensor
    objectives: torch.Tensor
    latents: torch.Tensor
    files: list[str]
    label_names: list[str]
    measure_names: list[str]
    provenance: dict[str, Any]
    manifest: dict[str, Any]

    def float_images(self) -> torch.Tensor:
        """``images`` as float32 in ``[0, 1]``: ``[N, 3, H, W]``."""
        return self.images.float().div(255.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` floats in ``[0, 1]`` -> uint8 (``round(255 x)``), on the CPU."""
    return images.detach().float().cpu().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)


def label_by_threshold(
    measures: torch.Tensor | np.ndarray, index: int, threshold: float, *, below: int = 0
) -> torch.Tensor:
    """Binary labels from measure ``index`` of ``measures [N, k]``: ``below`` where it is ``< threshold``, else
    ``1 - below``: ``[N]`` int64.

    For the shapes run's shape measure (``angle(e, triangle) - angle(e, square)``, negative = nearer the
    triangle prompts), ``below=0`` labels the triangle side 0 and the square side 1, as the renderer does.
    """
    m = torch.as_tensor(np.asarray(measures) if isinstance(measures, np.ndarray) else measures)
    if m.dim() != 2:
        raise ValueError(f"measures must have shape [N, k], got {tuple(m.shape)}")
    if not -m.shape[1] <= index < m.shape[1]:
        raise ValueError(f"index {index} is out of range for {m.shape[1]} measures")
    if below not in (0, 1):
        raise ValueError(f"below must be 0 or 1, got {below!r}")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    low = m[:, index] < threshold
    return torch.where(low, below, 1 - below).to(torch.int64)


def _as_array(name: str, values: Any, shape_tail: int | None, n: int | None) -> np.ndarray:
    """``values`` as a float32 / int64 numpy array with a checked shape."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    expected_dims = 1 if shape_tail is None else 2
    if array.ndim != expected_dims or (n is not None and len(array) != n):
        want = f"[N={n}]" if shape_tail is None else f"[N={n}, {shape_tail if shape_tail >= 0 else 'd'}]"
        raise ValueError(f"{name} must have shape {want}, got {tuple(array.shape)}")
    if shape_tail is not None and shape_tail >= 0 and array.shape[1] != shape_tail:
        raise ValueError(f"{name} must have {shape_tail} columns, got shape {tuple(array.shape)}")
    return array


def _check_inputs(
    images: torch.Tensor,
    labels: Any,
    measures: Any,
    objectives: Any,
    latents: Any,
    label_names: Sequence[str],
    measure_names: Sequence[str],
    image_format: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape [N, 3, H, W] in [0, 1], got {shape}")
    if images.dtype.is_floating_point and len(images):
        lo, hi = float(images.min()), float(images.max())
        if lo < 0.0 or hi > 1.0 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"images must have values in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    n = len(images)
    labels_np = _as_array("labels", labels, None, n).astype(np.int64)
    measures_np = _as_array("measures", measures, len(measure_names), n).astype(np.float32)
    objectives_np = _as_array("objectives", objectives, None, n).astype(np.float32)
    latents_np = _as_array("latents", latents, -1, n).astype(np.float32)
    names = list(label_names)
    if not names or len(set(names)) != len(names) or any(not _safe_name(x) for x in names):
        raise ValueError(
            f"label_names must be distinct, non-empty folder names without '/' or a leading '.', got {names}"
        )
    if len(set(measure_names)) != len(measure_names) or any(
        x in ("file", "label", "objective") or not x for x in measure_names
    ):
        raise ValueError(
            f"measure_names must be distinct, non-empty and not file/label/objective: {measure_names}"
        )
    if len(labels_np) and (labels_np.min() < 0 or labels_np.max() >= len(names)):
        raise ValueError(
            f"labels must lie in [0, {len(names)}) (one per label name), got {labels_np.min()}..{labels_np.max()}"
        )
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(IMAGE_FORMATS)}, got {image_format!r}")
    return labels_np, measures_np, objectives_np, latents_np


def _safe_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _csv_text(
    files: list[str],
    labels: np.ndarray,
    objectives: np.ndarray,
    measures: np.ndarray,
    measure_names: Sequence[str],
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "label", "objective", *measure_names])
    for i, file in enumerate(files):
        # repr of a float32 widened to float64 reads back to the same float32
        writer.writerow(
            [file, int(labels[i]), repr(float(objectives[i])), *(repr(float(v)) for v in measures[i])]
        )
    return out.getvalue()


def export_samples(
    directory: str | os.PathLike[str],
    images: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    measures: torch.Tensor | np.ndarray,
    objectives: torch.Tensor | np.ndarray,
    latents: torch.Tensor | np.ndarray,
    *,
    label_names: Sequence[str],
    measure_names: Sequence[str],
    provenance: Mapping[str, Any],
    image_format: str = "png",
) -> Path:
    """Write ``images [N, 3, H, W]`` in ``[0, 1]`` with ``labels [N]``, ``measures [N, k]``, ``objectives [N]``
    and ``latents [N, n]`` as an export directory (module docstring); return ``directory``.

    ``label_names[label]`` is each image's folder; ``provenance`` (JSON-serialisable: the run, its config, the
    generator and scorer) is stored in the manifest. The directory is replaced atomically.
    """
    measure_names = [str(m) for m in measure_names]
    labels_np, measures_np, objectives_np, latents_np = _check_inputs(
        images, labels, measures, objectives, latents, label_names, measure_names, image_format
    )
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()  # [N, H, W, 3]
    files = [f"{label_names[int(label)]}/{i:06d}.{image_format}" for i, label in enumerate(labels_np)]
    directory = Path(directory)
    with atomic_output_dir(directory) as tmp:
        for name in label_names:
            (tmp / name).mkdir()
        for file, array in zip(files, pixels):
            Image.fromarray(array).save(tmp / file, format=IMAGE_FORMATS[image_format])
        (tmp / SAMPLES_CSV).write_text(
            _csv_text(files, labels_np, objectives_np, measures_np, measure_names), encoding="utf-8"
        )
        np.save(tmp / LATENTS_FILE, latents_np, allow_pickle=False)
        write_manifest(
            tmp,
            EXPORT_KIND,
            version=EXPORT_VERSION,
            params={},
            num_samples=len(files),
            counts={name: int((labels_np == i).sum()) for i, name in enumerate(label_names)},
            label_names=list(label_names),
            measure_names=measure_names,
            image_format=image_format,
            image_size=[int(images.shape[2]), int(images.shape[3])],
            latent_dim=int(latents_np.shape[1]),
            provenance=dict(provenance),
        )
    return directory


def _read_rows(directory: Path, manifest: Mapping[str, Any]) -> list[list[str]]:
    path = directory / SAMPLES_CSV
    if not path.is_file():
        raise ManifestError(f"{path} is missing; the manifest of {directory} describes {SAMPLES_CSV}")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = ["file", "label", "objective", *manifest["measure_names"]]
    if not rows or rows[0] != header:
        raise ManifestError(
            f"{path} has header {rows[0] if rows else None}, expected {header} (from the manifest)"
        )
    rows = rows[1:]
    if len(rows) != manifest["num_samples"]:
        raise ManifestError(
            f"{path} has {len(rows)} rows, the manifest's 'num_samples' says {manifest['num_samples']}"
        )
    return rows


def _check_rows(directory: Path, rows: list[list[str]], manifest: Mapping[str, Any]) -> np.ndarray:
    names = list(manifest["label_names"])
    labels = np.array([int(r[1]) for r in rows], dtype=np.int64)
    for i, row in enumerate(rows):
        label = int(row[1])
        if not 0 <= label < len(names) or Path(row[0]).parts[0] != names[label]:
            raise ManifestError(
                f"{directory / SAMPLES_CSV} row {i + 1}: file {row[0]!r} with label {label} is not under a "
                f"folder of the manifest's 'label_names' {names} matching its label"
            )
        if not (directory / row[0]).is_file():
            raise ManifestError(f"{directory / row[0]} is missing (listed in {SAMPLES_CSV} row {i + 1})")
    counts = {name: int((labels == i).sum()) for i, name in enumerate(names)}
    if counts != dict(manifest["counts"]):
        raise ManifestError(
            f"{directory}: images per label {counts} differ from the manifest's 'counts' {manifest['counts']}"
        )
    return labels


def _load_image(path: Path, size: Sequence[int]) -> np.ndarray:
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"))
    if list(array.shape[:2]) != list(size):
        raise ManifestError(
            f"{path} is {array.shape[0]}x{array.shape[1]}, the manifest's 'image_size' says {size}"
        )
    return array


def read_export(directory: str | os.PathLike[str], *, load_images: bool = True) -> QDGSExport:
    """Read an export directory, checking files, counts and shapes against its manifest.

    Raises :class:`fp_core.manifest.ManifestError` naming the file or manifest key that does not match (a
    missing image, a wrong row count, a latents file of the wrong shape, ...). ``load_images=False`` leaves
    ``images`` empty (``[0, 3, H, W]``) but still checks that every image file exists.
    """
    directory = Path(directory)
    manifest = read_manifest(directory, EXPORT_KIND, required=_REQUIRED, max_version=EXPORT_VERSION)
    rows = _read_rows(directory, manifest)
    labels = _check_rows(directory, rows, manifest)
    k = len(manifest["measure_names"])
    try:
        objectives = np.array([float(r[2]) for r in rows], dtype=np.float32)
        measures = np.array([[float(v) for v in r[3:]] for r in rows], dtype=np.float32).reshape(len(rows), k)
    except ValueError as error:
        raise ManifestError(
            f"{directory / SAMPLES_CSV} has a non-numeric objective or measure: {error}"
        ) from None
    latents_path = directory / LATENTS_FILE
    try:
        latents = np.load(latents_path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ManifestError(f"{latents_path} cannot be read as a .npy array: {error}") from None
    if latents.shape != (len(rows), manifest["latent_dim"]):
        raise ManifestError(
            f"{latents_path} has shape {latents.shape}, expected ({len(rows)}, {manifest['latent_dim']}) "
            f"from the manifest's 'num_samples' and 'latent_dim'"
        )
    h, w = manifest["image_size"]
    if load_images and rows:
        pixels = np.stack([_load_image(directory / r[0], (h, w)) for r in rows])
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    else:
        images = torch.zeros(0, 3, h, w, dtype=torch.uint8)
    return QDGSExport(
        images=images,
        labels=torch.from_numpy(labels),
        measures=torch.from_numpy(measures),
        objectives=torch.from_numpy(objectives),
        latents=torch.from_numpy(latents.astype(np.float32)),
        files=[r[0] for r in rows],
        label_names=list(manifest["label_names"]),
        measure_names=list(manifest["measure_names"]),
        provenance=dict(manifest.get("provenance", {})),
        manifest=manifest,
    )


@torch.no_grad()
def decode_latents(
    generator: Generator, latents: torch.Tensor, *, batch_size: int = 64, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """``generator`` on ``latents [N, n]`` in batches, without gradients: images ``[N, 3, H, W]`` on the CPU."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = [
        generate(generator, latents[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(latents), batch_size)
    ]
    if not parts:
        raise ValueError("no latents to decode (the archive is empty?)")
    return torch.cat(parts)


def archive_export(
    directory: str | os.PathLike[str],
    archive: GridArchive,
    generator: Generator,
    *,
    label_index: int,
    threshold: float,
    label_names: Sequence[str],
    measure_names: Sequence[str],
    provenance: Mapping[str, Any],
    below: int = 0,
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    image_format: str = "png",
) -> Path:
    """Decode the elites of ``archive`` (all, by cell; or ``n`` drawn with ``seed``), label them by
    ``measures[:, label_index] < threshold`` (:func:`label_by_threshold`) and export them.

    Works for QDGS's result archive and :func:`fp_qdgs.baseline.random_sampling`'s alike. The archive's
    settings and metrics and the draw join ``provenance`` under ``"archive"``.
    """
    sample = sample_archive(archive, n, seed=seed)
    images = decode_latents(generator, sample.latents, batch_size=batch_size, device=device)
    labels = label_by_threshold(sample.measures, label_index, threshold, below=below)
    record = {
        **dict(provenance),
        "archive": {
            **archive_settings(archive),
            "metrics": archive_metrics(archive),
            "drawn": n,
            "draw_seed": seed,
            "label_rule": {"measure": label_index, "threshold": threshold, "below": below},
        },
    }
    return export_samples(
        directory,
        images,
        labels,
        sample.measures,
        sample.objectives,
        sample.latents,
        label_names=label_names,
        measure_names=measure_names,
        provenance=record,
        image_format=image_format,
    )
