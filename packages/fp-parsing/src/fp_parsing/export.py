"""Export of predicted label maps for the generators that come next (Pix2PixHD, ControlNet).

The export directory (replaced atomically as a whole) holds::

    manifest.json                    what, from which model and dataset, label order, class names, counts
    labels/{i}.png                   predicted class ids (8-bit grayscale PNG, 0 = background)
    color/{i}.png                    the same maps colourised with :data:`fp_parsing.plots.PALETTE`
    dataset/                         a CelebAMask-HQ-layout tree whose masks are the predictions:
        CelebA-HQ-img/{i}.jpg        the input images (hard links where possible, else copies)
        CelebAMask-HQ-mask-anno/...  one PNG per predicted part
        *.txt                        the source's attribute, mapping, partition, identity and skin-tone files

so ``CelebAMaskHQ(export_dir / "dataset", split, label_order=...)`` reads the predictions back as masks
(the round trip the tests check) and the generators read (label map, image) pairs through the same loader.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from fp_core.atomic import atomic_output_dir, write_json
from fp_parsing.data import write_part_masks
from fp_parsing.evaluate import predict
from fp_parsing.plots import colorize

__all__ = ["SIDE_FILES", "export_predictions"]

IMAGE_DIR = "CelebA-HQ-img"
SIDE_FILES = (
    "CelebAMask-HQ-attribute-anno.txt",
    "CelebA-HQ-to-CelebA-mapping.txt",
    "list_eval_partition.txt",
    "identity_CelebA.txt",
    "fp_skin_tone.txt",
)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def export_predictions(
    model: torch.nn.Module,
    splits: Mapping[str, Dataset],
    out_dir: str | os.PathLike[str],
    *,
    source_root: str | os.PathLike[str],
    label_order: str,
    batch_size: int = 16,
    with_dataset: bool = True,
    provenance: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every image of every split and write the export directory described above.

    Args:
        model: the trained parser (any device; evaluated without gradients).
        splits: ``{"train": dataset, "val": ..., "test": ...}`` of :class:`fp_parsing.data.CelebAMaskHQ`
            built without flips (each item's ``index`` names its image).
        out_dir: the export directory (replaced atomically).
        source_root: the dataset directory the images and side files come from.
        label_order: the label order of the predictions (written into the manifest and the part masks).
        with_dataset: also write the CelebAMask-HQ-layout ``dataset/`` tree.
        provenance: extra manifest entries (model path and hash, params, ...).

    Returns:
        The manifest (also written as ``manifest.json``).
    """
    from tqdm.auto import tqdm

    source_root = Path(source_root)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counts: dict[str, int] = {}
    class_names: Sequence[str] | None = None
    with atomic_output_dir(out_dir) as tmp:
        (tmp / "labels").mkdir()
        (tmp / "color").mkdir()
        if with_dataset:
            (tmp / "dataset" / IMAGE_DIR).mkdir(parents=True)
            for name in SIDE_FILES:
                if (source_root / name).is_file():
                    shutil.copy2(source_root / name, tmp / "dataset" / name)
        for split, dataset in splits.items():
            class_names = list(dataset.class_names)  # type: ignore[attr-defined]
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
            counts[split] = 0
            for batch in tqdm(loader, desc=f"export {split}", disable=not progress, leave=False):
                labels = predict(model, batch["image"].to(device)).cpu().numpy().astype(np.uint8)
                for index, label_map in zip(batch["index"].tolist(), labels, strict=True):
                    Image.fromarray(label_map).save(tmp / "labels" / f"{index}.png")
                    Image.fromarray(colorize(torch.from_numpy(label_map))).save(
                        tmp / "color" / f"{index}.png"
                    )
                    if with_dataset:
                        image = source_root / IMAGE_DIR / f"{index}.jpg"
                        _link_or_copy(image, tmp / "dataset" / IMAGE_DIR / f"{index}.jpg")
                        write_part_masks(
                            label_map, tmp / "dataset" / "CelebAMask-HQ-mask-anno", index, label_order
                        )
                    counts[split] += 1
        manifest = {
            "what": "predicted face-parsing label maps",
            "label_order": label_order,
            "class_names": class_names,
            "counts": counts,
            "source_root": str(source_root),
            "layout": {
                "labels": "labels/{i}.png: class ids, 8-bit grayscale",
                "color": "color/{i}.png: colourised label maps",
                "dataset": "CelebAMask-HQ layout with the predictions as masks" if with_dataset else None,
            },
            **dict(provenance or {}),
        }
        write_json(tmp / "manifest.json", manifest)
    model.train(was_training)
    return manifest
