"""Export of predicted label maps: the contract the generators (Pix2PixHD-style GAN, ControlNet) read.

Every (label map, image) pair of the export is aligned at ONE resolution ``R x R`` recorded in the manifest.
The parser predicts at its input size (the dataset's ``image_size``); its label maps are resized to ``R`` with
nearest neighbour only (no new labels appear), and the images are the source images resized to ``R`` the way
the loader resizes them (PIL bilinear), written as new files (lossless PNG), never links into the data
directory. The export directory (replaced atomically as a whole) holds::

    manifest.json                         kind "parsing-export", format_version 1 (see below)
    <split>/labels/<i>.png                predicted class ids, 8-bit grayscale PNG [R, R], 0 = background
    <split>/color/<i>.png                 the same map colourised with the manifest's palette, RGB [R, R, 3]
    <split>/images/<i>.png                the input image, RGB PNG [R, R, 3]
    perturbed/<kind>-<severity>/labels/<i>.png   test-split maps predicted from the perturbed input
    perturbed/<kind>-<severity>/color/<i>.png
    perturbed/<kind>-<severity>/images/<i>.png   the perturbed input itself (what the parser saw)
    dataset/                              a CelebAMask-HQ-layout tree at resolution R (optional):
        CelebA-HQ-img/<i>.jpg             the images (a byte copy of the source when it is already R x R,
                                          else the resized image as JPEG quality 95)
        CelebAMask-HQ-mask-anno/...       one PNG per predicted part
        *.txt                             copies of the source's attribute, mapping, partition, identity and
                                          skin-tone files

``<i>`` is the CelebAMask-HQ image index, ``<severity>`` formatted with ``:g`` (``0.5``). The manifest holds
``kind``, ``format_version``, ``resolution``, ``label_order``, ``class_names``, ``num_classes``, ``palette``
(``[num_classes][3]`` RGB of class ids), ``splits`` (per split its ``count`` and sorted ``indices``),
``counts``, ``perturbed`` (split, seed, and per set its ``kind``, ``severity``, ``count``, ``dir``), the
``provenance`` (variant, seed, model file and SHA-256, ...), ``inputs`` (source data directory), ``params``
(the export settings), ``layout`` (path templates) and ``dataset`` (the tree's folder or ``null``).

:func:`read_export` validates the manifest and gives the pairs per split; ``CelebAMaskHQ(export/"dataset",
split, label_order=...)`` reads the predictions back as masks (the round trip the tests check).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from fp_core.atomic import atomic_output_dir
from fp_core.manifest import read_manifest, write_manifest
from fp_core.seeds import torch_generator
from fp_parsing.data import write_part_masks
from fp_parsing.evaluate import predict, resolve_device
from fp_parsing.perturbations import PERTURBATIONS, perturb
from fp_parsing.plots import PALETTE, colorize

__all__ = [
    "DEFAULT_EXPORT_PERTURBATIONS",
    "DEFAULT_EXPORT_SEVERITIES",
    "EXPORT_FORMAT_VERSION",
    "EXPORT_KIND",
    "SIDE_FILES",
    "ExportError",
    "ExportManifest",
    "ExportPair",
    "export_predictions",
    "perturbed_set_name",
    "read_export",
]

EXPORT_KIND = "parsing-export"
EXPORT_FORMAT_VERSION = 1
DEFAULT_EXPORT_PERTURBATIONS = ("gaussian_noise", "blur", "brightness", "darkness")
DEFAULT_EXPORT_SEVERITIES = (0.5,)
MANIFEST = "manifest.json"
IMAGE_DIR = "CelebA-HQ-img"
SIDE_FILES = (
    "CelebAMask-HQ-attribute-anno.txt",
    "CelebA-HQ-to-CelebA-mapping.txt",
    "list_eval_partition.txt",
    "identity_CelebA.txt",
    "fp_skin_tone.txt",
)
LAYOUT = {
    "labels": "{split}/labels/{index}.png",
    "color": "{split}/color/{index}.png",
    "images": "{split}/images/{index}.png",
    "perturbed_labels": "perturbed/{set}/labels/{index}.png",
    "perturbed_color": "perturbed/{set}/color/{index}.png",
    "perturbed_images": "perturbed/{set}/images/{index}.png",
    "dataset": "dataset/ (CelebAMask-HQ layout: CelebA-HQ-img/{index}.jpg, CelebAMask-HQ-mask-anno/...)",
}
_REQUIRED = (
    "kind",
    "format_version",
    "resolution",
    "label_order",
    "class_names",
    "palette",
    "splits",
    "perturbed",
    "provenance",
    "layout",
)


class ExportError(ValueError):
    """An export directory whose manifest is missing, of another kind or version, or inconsistent."""


def perturbed_set_name(kind: str, severity: float) -> str:
    """``"<kind>-<severity:g>"``: the folder of one perturbed set under ``perturbed/``."""
    return f"{kind}-{float(severity):g}"


@dataclass(frozen=True)
class ExportPair:
    """One aligned pair of the export: paths of the label map, its colour view and the image (all R x R)."""

    index: int
    label: Path
    color: Path
    image: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(label map uint8 [R, R], image uint8 [R, R, 3])``."""
        with Image.open(self.label) as label, Image.open(self.image) as image:
            return np.asarray(label), np.asarray(image.convert("RGB"))


@dataclass(frozen=True)
class ExportManifest:
    """A validated export (see :func:`read_export`).

    Attributes:
        directory: the export directory.
        resolution: ``R``: every label map and image is ``R x R``.
        label_order: the label order of the class ids (``fp_parsing.data.labels``).
        class_names: the ``num_classes`` names, id order, background first.
        palette: ``uint8 [num_classes, 3]`` RGB of each class id in the ``color/`` maps.
        indices: ``{split: sorted image indices}``.
        perturbed: ``{set name: {"kind", "severity", "count", "dir"}}`` (test split).
        provenance: variant, seed, model file and hash, ...
        raw: the manifest as read.
    """

    directory: Path
    resolution: int
    label_order: str
    class_names: list[str]
    palette: np.ndarray
    indices: dict[str, list[int]]
    perturbed: dict[str, dict[str, Any]]
    provenance: dict[str, Any]
    raw: dict[str, Any]

    @property
    def splits(self) -> list[str]:
        """The exported splits (sorted: the manifest is written with sorted keys)."""
        return list(self.indices)

    @property
    def counts(self) -> dict[str, int]:
        """Pairs per split."""
        return {split: len(indices) for split, indices in self.indices.items()}

    def pairs(self, split: str) -> list[ExportPair]:
        """The (label map, image) pairs of ``split``, by image index."""
        if split not in self.indices:
            raise ExportError(f"{self.directory}: no split {split!r} in the export; has {self.splits}")
        base = self.directory / split
        return [
            ExportPair(
                i, base / "labels" / f"{i}.png", base / "color" / f"{i}.png", base / "images" / f"{i}.png"
            )
            for i in self.indices[split]
        ]

    def perturbed_pairs(self, kind: str, severity: float) -> list[ExportPair]:
        """The pairs predicted from perturbed test inputs (``images/`` holds the perturbed inputs)."""
        name = perturbed_set_name(kind, severity)
        if name not in self.perturbed:
            raise ExportError(f"{self.directory}: no perturbed set {name!r}; has {sorted(self.perturbed)}")
        split = self.raw["perturbed"]["split"]
        base = self.directory / self.perturbed[name]["dir"]
        return [
            ExportPair(
                i, base / "labels" / f"{i}.png", base / "color" / f"{i}.png", base / "images" / f"{i}.png"
            )
            for i in self.indices[split]
        ]

    @property
    def dataset_root(self) -> Path | None:
        """The CelebAMask-HQ-layout tree, or ``None`` when it was not written."""
        folder = self.raw.get("dataset")
        return self.directory / folder if folder else None


def _fail(directory: Path, key: str, problem: str) -> ExportError:
    return ExportError(f"{directory / MANIFEST}: {key!r} {problem}")


def read_export(directory: str | os.PathLike[str], *, check_files: bool = True) -> ExportManifest:
    """Read and validate ``<directory>/manifest.json``.

    Raises :class:`ExportError` naming the directory and the offending key when the manifest is missing, not
    of kind ``"parsing-export"``, newer than :data:`EXPORT_FORMAT_VERSION`, lacks a key, or disagrees with
    itself (counts vs indices, palette vs classes); with ``check_files`` also when a split's folders do not
    hold one label map and one image per index.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ExportError(f"{directory}: no {MANIFEST}; is this a `fp parsing export` directory?")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}: not JSON ({error})") from error
    if not isinstance(raw, dict):
        raise ExportError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    for key in _REQUIRED:
        if key not in raw:
            raise _fail(directory, key, "is missing")
    if raw["kind"] != EXPORT_KIND:
        raise _fail(directory, "kind", f"is {raw['kind']!r}, expected {EXPORT_KIND!r}")
    version = raw["format_version"]
    if not isinstance(version, int) or not 1 <= version <= EXPORT_FORMAT_VERSION:
        raise _fail(
            directory, "format_version", f"is {version!r}; this reader knows 1..{EXPORT_FORMAT_VERSION}"
        )
    resolution = raw["resolution"]
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise _fail(directory, "resolution", f"must be a positive int, got {resolution!r}")
    class_names = raw["class_names"]
    if not isinstance(class_names, list) or not class_names:
        raise _fail(directory, "class_names", "must be a non-empty list")
    palette = np.asarray(raw["palette"])
    if palette.shape != (len(class_names), 3) or palette.min() < 0 or palette.max() > 255:
        raise _fail(
            directory, "palette", f"must be [{len(class_names)}, 3] RGB in 0..255, got {palette.shape}"
        )
    indices: dict[str, list[int]] = {}
    if not isinstance(raw["splits"], dict) or not raw["splits"]:
        raise _fail(directory, "splits", "must map at least one split to its count and indices")
    for split, entry in raw["splits"].items():
        if not isinstance(entry, dict) or "indices" not in entry or "count" not in entry:
            raise _fail(directory, f"splits.{split}", "must hold 'count' and 'indices'")
        if len(entry["indices"]) != entry["count"]:
            raise _fail(
                directory,
                f"splits.{split}",
                f"lists {len(entry['indices'])} indices for count {entry['count']}",
            )
        indices[split] = [int(i) for i in entry["indices"]]
    perturbed = raw["perturbed"]
    sets = perturbed.get("sets", {}) if isinstance(perturbed, dict) else None
    if sets is None or (sets and perturbed.get("split") not in indices):
        raise _fail(directory, "perturbed", "must name an exported 'split' and its 'sets'")
    manifest = ExportManifest(
        directory=directory,
        resolution=resolution,
        label_order=str(raw["label_order"]),
        class_names=list(class_names),
        palette=palette.astype(np.uint8),
        indices=indices,
        perturbed=dict(sets),
        provenance=dict(raw["provenance"]),
        raw=raw,
    )
    if check_files:
        folders = [(split, directory / split) for split in indices]
        folders += [(perturbed["split"], directory / entry["dir"]) for entry in sets.values()]
        for split, folder in folders:
            for sub in ("labels", "images", "color"):
                found = len(list((folder / sub).glob("*.png"))) if (folder / sub).is_dir() else 0
                if found != len(indices[split]):
                    raise ExportError(
                        f"{directory}: {folder / sub} holds {found} PNGs, the manifest counts "
                        f"{len(indices[split])} for split {split!r}"
                    )
    return manifest


def _check_resolution(resolution: int | None) -> None:
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1
    ):
        raise ValueError(f"resolution must be a positive int or None, got {resolution!r}")


def _resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` -> ``[size, size, 3]`` (PIL bilinear, as the loader resizes)."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def _resize_labels(label_map: np.ndarray, size: int) -> np.ndarray:
    """Class ids uint8 ``[H, W]`` -> ``[size, size]`` by nearest neighbour (never mixes labels)."""
    if label_map.shape == (size, size):
        return label_map
    return np.asarray(Image.fromarray(label_map).resize((size, size), Image.Resampling.NEAREST))


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images ``[B, 3, H, W]`` in [0, 1] -> uint8 ``[B, H, W, 3]`` (rounded)."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _write_map(folder: Path, index: int, label_map: np.ndarray) -> None:
    Image.fromarray(label_map).save(folder / "labels" / f"{index}.png")
    Image.fromarray(colorize(label_map)).save(folder / "color" / f"{index}.png")


def _make_folders(folder: Path) -> None:
    for sub in ("labels", "color", "images"):
        (folder / sub).mkdir(parents=True)


def _source_image(source_root: Path, index: int) -> Path:
    return source_root / IMAGE_DIR / f"{index}.jpg"


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def export_predictions(
    model: torch.nn.Module,
    splits: Mapping[str, Dataset],
    out_dir: str | os.PathLike[str],
    *,
    source_root: str | os.PathLike[str],
    label_order: str,
    resolution: int | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    perturbations: Sequence[str] = DEFAULT_EXPORT_PERTURBATIONS,
    severities: Sequence[float] = DEFAULT_EXPORT_SEVERITIES,
    perturbed_split: str = "test",
    seed: int = 0,
    with_dataset: bool = True,
    provenance: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every image of every split (and the perturbed test images) and write the export described above.

    Args:
        model: the trained parser; moved to ``device`` and evaluated without gradients.
        splits: ``{"train": dataset, "val": ..., "test": ...}`` of :class:`fp_parsing.data.CelebAMaskHQ`
            built without flips (each item's ``index`` names its image in ``source_root``).
        out_dir: the export directory (replaced atomically).
        source_root: the dataset directory the images and side files come from (read only, never linked).
        label_order: the label order of the predictions (manifest and part masks).
        resolution: ``R``, the side of every exported map and image; ``None``: the model's input size (the
            first item's image side).
        batch_size: images per forward pass.
        device: where the model runs (default: CUDA when available, else the CPU).
        perturbations: kinds of :data:`fp_parsing.perturbations.PERTURBATIONS` for the perturbed sets.
        severities: severities in [0, 1]; one perturbed set per (kind, severity).
        perturbed_split: the split whose images are perturbed (skipped when not in ``splits``).
        seed: root seed of the perturbation noise; batch ``b`` of set (kind, severity) draws from
            ``fp_core.seeds.torch_generator(seed, "export", kind, str(severity), b)`` on ``device``.
        with_dataset: also write the CelebAMask-HQ-layout ``dataset/`` tree.
        provenance: the manifest's ``provenance`` (variant, seed, model path and hash, ...).
        params: the export settings, recorded as the manifest's ``params``.
        num_workers: DataLoader worker processes decoding the splits.

    Returns:
        The manifest (also written as ``manifest.json``).
    """
    from tqdm.auto import tqdm

    _check_export_args(resolution, perturbations, severities, splits)
    source_root = Path(source_root)
    device = resolve_device(device)
    class_names = list(next(iter(splits.values())).class_names)  # type: ignore[attr-defined]
    if len(class_names) > len(PALETTE):
        raise ValueError(f"the palette has {len(PALETTE)} colours for {len(class_names)} classes")
    sets = (
        [(kind, float(severity)) for kind in perturbations for severity in severities]
        if perturbed_split in splits
        else []
    )
    was_training = model.training
    model.to(device).eval()
    indices: dict[str, list[int]] = {}
    try:
        with atomic_output_dir(out_dir) as tmp:
            writer = _PairWriter(tmp, source_root, label_order, with_dataset)
            for split, split_set in splits.items():
                split_sets = sets if split == perturbed_split else []
                writer.make_split(split, [perturbed_set_name(k, s) for k, s in split_sets])
                loader = DataLoader(
                    split_set,
                    batch_size=batch_size,
                    shuffle=False,
                    num_workers=num_workers,
                    pin_memory=device.type == "cuda",
                )
                indices[split] = []
                for b, batch in enumerate(
                    tqdm(loader, desc=f"export {split}", disable=not progress, leave=False)
                ):
                    images = batch["image"].to(device, non_blocking=True)
                    if images.shape[-2] != images.shape[-1]:
                        raise ValueError(f"export needs square model inputs, got {tuple(images.shape[-2:])}")
                    resolution = resolution or int(images.shape[-1])
                    batch_indices = [int(i) for i in batch["index"].tolist()]
                    writer.clean(split, batch_indices, predict(model, images), resolution)
                    for kind, severity in split_sets:
                        generator = torch_generator(seed, "export", kind, str(severity), b, device=device)
                        noisy = perturb(images, kind, severity, generator=generator)
                        folder = tmp / "perturbed" / perturbed_set_name(kind, severity)
                        writer.perturbed(folder, batch_indices, noisy, predict(model, noisy), resolution)
                    indices[split].extend(batch_indices)
                indices[split].sort()
            manifest = _export_manifest(
                resolution=resolution,
                label_order=label_order,
                class_names=class_names,
                indices=indices,
                sets=sets,
                perturbed_split=perturbed_split,
                seed=seed,
                source_root=source_root,
                provenance=provenance,
                params=params,
                with_dataset=with_dataset,
            )
            inputs, settings = manifest.pop("inputs"), manifest.pop("params")
            write_manifest(
                tmp, EXPORT_KIND, version=EXPORT_FORMAT_VERSION, inputs=inputs, params=settings, **manifest
            )
    finally:
        model.train(was_training)
    return read_manifest(out_dir, EXPORT_KIND)


def _check_export_args(
    resolution: int | None,
    perturbations: Sequence[str],
    severities: Sequence[float],
    splits: Mapping[str, Dataset],
) -> None:
    _check_resolution(resolution)
    for kind in perturbations:
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; expected some of {PERTURBATIONS}")
    for severity in severities:
        if isinstance(severity, bool) or not isinstance(severity, int | float) or not 0 <= severity <= 1:
            raise ValueError(f"severities must be numbers in [0, 1], got {severity!r}")
    if not splits:
        raise ValueError("export_predictions needs at least one split")


class _PairWriter:
    """Writes one export's files: (label map, colour map, image) per index at the resolution, and the
    optional CelebAMask-HQ-layout tree (image copies, never links, and part masks)."""

    def __init__(self, root: Path, source_root: Path, label_order: str, with_dataset: bool) -> None:
        self.root, self.source_root, self.label_order = root, source_root, label_order
        self.tree = root / "dataset" if with_dataset else None
        if self.tree is not None:
            (self.tree / IMAGE_DIR).mkdir(parents=True)
            for name in SIDE_FILES:
                if (source_root / name).is_file():
                    shutil.copyfile(source_root / name, self.tree / name)

    def make_split(self, split: str, perturbed_sets: Sequence[str]) -> None:
        _make_folders(self.root / split)
        for name in perturbed_sets:
            _make_folders(self.root / "perturbed" / name)

    def clean(self, split: str, indices: Sequence[int], labels: torch.Tensor, resolution: int) -> None:
        """``labels [B, H, W]`` predicted from the clean images of ``indices``."""
        for index, label_map in zip(indices, labels.to(torch.uint8).cpu().numpy(), strict=True):
            label_map = _resize_labels(label_map, resolution)
            _write_map(self.root / split, index, label_map)
            source = _source_image(self.source_root, index)
            original = _read_rgb(source)
            image = _resize_image(original, resolution)
            Image.fromarray(image).save(self.root / split / "images" / f"{index}.png")
            if self.tree is not None:
                target = self.tree / IMAGE_DIR / f"{index}.jpg"
                if original.shape[:2] == (resolution, resolution):
                    shutil.copyfile(source, target)
                else:
                    Image.fromarray(image).save(target, quality=95)
                write_part_masks(label_map, self.tree / "CelebAMask-HQ-mask-anno", index, self.label_order)

    def perturbed(
        self,
        folder: Path,
        indices: Sequence[int],
        images: torch.Tensor,
        labels: torch.Tensor,
        resolution: int,
    ) -> None:
        """``images [B, 3, H, W]`` (perturbed inputs) and ``labels [B, H, W]`` predicted from them."""
        label_maps = labels.to(torch.uint8).cpu().numpy()
        for index, label_map, image in zip(indices, label_maps, _to_uint8(images), strict=True):
            _write_map(folder, index, _resize_labels(label_map, resolution))
            Image.fromarray(_resize_image(image, resolution)).save(folder / "images" / f"{index}.png")


def _export_manifest(
    *,
    resolution: int | None,
    label_order: str,
    class_names: list[str],
    indices: Mapping[str, list[int]],
    sets: Sequence[tuple[str, float]],
    perturbed_split: str,
    seed: int,
    source_root: Path,
    provenance: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    with_dataset: bool,
) -> dict[str, Any]:
    """The manifest's fields besides ``kind``, ``format_version`` and ``created_by`` (which
    :func:`fp_core.manifest.write_manifest` adds)."""
    perturbed_count = len(indices.get(perturbed_split, []))
    return {
        "what": "predicted face-parsing label maps with their images, aligned at one resolution",
        "resolution": resolution,
        "label_order": label_order,
        "class_names": class_names,
        "num_classes": len(class_names),
        "palette": PALETTE[: len(class_names)].tolist(),
        "splits": {split: {"count": len(ids), "indices": ids} for split, ids in indices.items()},
        "counts": {split: len(ids) for split, ids in indices.items()},
        "perturbed": {
            "split": perturbed_split if sets else None,
            "seed": seed,
            "sets": {
                perturbed_set_name(kind, severity): {
                    "kind": kind,
                    "severity": severity,
                    "count": perturbed_count,
                    "dir": f"perturbed/{perturbed_set_name(kind, severity)}",
                }
                for kind, severity in sets
            },
        },
        "resize": {
            "labels": "nearest neighbour from the model's input size",
            "images": "PIL bilinear from the source image (as the loader resizes)",
        },
        "provenance": dict(provenance or {}),
        "inputs": {"source_root": str(source_root)},
        "params": dict(params or {}),
        "layout": LAYOUT,
        "dataset": "dataset" if with_dataset else None,
    }
