"""Shapes sets on disk, in torchvision's ``ImageFolder`` layout with a labels table and a manifest.

Layout of one set::

    <directory>/triangle/00000.png ...      one RGB PNG per image, in the folder of its shape
    <directory>/square/00001.png ...
    <directory>/labels.csv                  file, shape, colour, caption (one row per image, in set order)
    <directory>/manifest.json               kind "shapes-set": size, bias, seed, counts per colour x shape

PNG is lossless, so :func:`read_shapes_set` gives back exactly the 8-bit images that were written
(``round(255 * x)`` of the rendered floats).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fp_core.atomic import atomic_output_dir
from fp_core.manifest import ManifestError, read_manifest, write_manifest
from fp_qdgs.export import to_uint8
from fp_qdgs.shapes.render import COLOURS, SHAPES, ShapesData

__all__ = ["SHAPES_SET_KIND", "read_shapes_set", "write_shapes_set"]

SHAPES_SET_KIND = "shapes-set"
_COLUMNS = ["file", "shape", "colour", "caption"]


def write_shapes_set(
    directory: str | os.PathLike[str], data: ShapesData, *, extra: Mapping[str, Any] | None = None
) -> Path:
    """Write ``data`` as a shapes set at ``directory`` (atomically: a complete set or the old one).

    ``extra`` (bias, seed, ...) is recorded as the manifest's ``params``.
    """
    n = len(data.images)
    if not (len(data.shape) == len(data.colour) == len(data.captions) == n):
        raise ValueError(
            f"images ({n}), shape ({len(data.shape)}), colour ({len(data.colour)}) and captions "
            f"({len(data.captions)}) must have the same length"
        )
    pixels = to_uint8(data.images).permute(0, 2, 3, 1).numpy()  # [N, H, W, 3]
    rows, groups = [], Counter()
    with atomic_output_dir(directory) as tmp:
        for name in SHAPES:
            (tmp / name).mkdir()
        for i in range(n):
            shape, colour = SHAPES[int(data.shape[i])], COLOURS[int(data.colour[i])]
            file = f"{shape}/{i:05d}.png"
            Image.fromarray(pixels[i]).save(tmp / file, optimize=False)
            rows.append([file, shape, colour, data.captions[i]])
            groups[f"{colour}-{shape}"] += 1
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(_COLUMNS)
        writer.writerows(rows)
        (tmp / "labels.csv").write_text(text.getvalue(), encoding="utf-8")
        write_manifest(
            tmp,
            SHAPES_SET_KIND,
            params=dict(extra or {}),
            size=n,
            image_size=list(data.images.shape[-2:]),
            groups=dict(sorted(groups.items())),
        )
    return Path(directory)


def _read_rows(directory: Path, size: int) -> list[dict[str, str]]:
    table = directory / "labels.csv"
    if not table.is_file():
        raise ManifestError(f"{table} is missing: not a shapes set (see fp_qdgs.shapes.folder)")
    with table.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != _COLUMNS:
            raise ManifestError(f"{table}: columns must be {_COLUMNS}, got {reader.fieldnames}")
        rows = list(reader)
    if len(rows) != size:
        raise ManifestError(f"{table} has {len(rows)} rows but the manifest says size {size}")
    return rows


def read_shapes_set(directory: str | os.PathLike[str]) -> ShapesData:
    """The set written by :func:`write_shapes_set`: images ``[N, 3, H, W]`` float32 in ``[0, 1]`` and labels."""
    directory = Path(directory)
    manifest = read_manifest(directory, SHAPES_SET_KIND, required=("size",))
    rows = _read_rows(directory, int(manifest["size"]))
    images, shapes, colours, captions = [], [], [], []
    for line, row in enumerate(rows, start=2):
        if row["shape"] not in SHAPES or row["colour"] not in COLOURS:
            raise ManifestError(
                f"{directory / 'labels.csv'} line {line}: shape must be one of {SHAPES} and colour one of "
                f"{COLOURS}, got {row['shape']!r} and {row['colour']!r}"
            )
        path = directory / row["file"]
        if not path.is_file():
            raise ManifestError(f"{path} is listed in {directory / 'labels.csv'} line {line} but missing")
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB")))
        shapes.append(SHAPES.index(row["shape"]))
        colours.append(COLOURS.index(row["colour"]))
        captions.append(row["caption"])
    if images:
        pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    else:
        h, w = manifest.get("image_size", [128, 128])
        pixels = torch.zeros(0, 3, int(h), int(w))
    return ShapesData(
        images=pixels,
        shape=torch.tensor(shapes, dtype=torch.long),
        colour=torch.tensor(colours, dtype=torch.long),
        captions=captions,
    )
