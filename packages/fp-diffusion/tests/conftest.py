"""Shared fixtures: a fake parsing export in the real layout (PNGs + a "parsing-export" manifest)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fp_core.manifest import write_manifest

NUM_CLASSES = 19


def fake_palette(num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Distinct colours per class (class 0 black)."""
    rng = np.random.default_rng(123)
    palette = rng.integers(40, 256, size=(num_classes, 3)).astype(np.uint8)
    palette[0] = 0
    return palette


def fake_label_map(index: int, size: int, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """A face-like map: background, an ellipse of class 1, and a few rectangles of other classes."""
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2)
    labels = np.zeros((size, size), dtype=np.uint8)
    labels[((yy - cy) / (0.4 * size)) ** 2 + ((xx - cx) / (0.3 * size)) ** 2 <= 1] = 1
    for _ in range(3):
        h, w = rng.integers(2, max(3, size // 4), size=2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        labels[y : y + h, x : x + w] = rng.integers(2, num_classes)
    return labels


def fake_image(labels: np.ndarray, palette: np.ndarray, index: int) -> np.ndarray:
    """The image of a map: its palette colours plus a little noise (so a generator can learn it)."""
    rng = np.random.default_rng(10_000 + index)
    noise = rng.integers(-10, 11, size=(*labels.shape, 3))
    return np.clip(palette[labels].astype(int) + noise, 0, 255).astype(np.uint8)


def _write_pairs(folder: Path, indices: Sequence[int], size: int, palette: np.ndarray, offset: int) -> None:
    for sub in ("labels", "color", "images"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in indices:
        labels = fake_label_map(i + offset, size, len(palette))
        Image.fromarray(labels).save(folder / "labels" / f"{i}.png")
        Image.fromarray(palette[labels]).save(folder / "color" / f"{i}.png")
        Image.fromarray(fake_image(labels, palette, i + offset)).save(folder / "images" / f"{i}.png")


def write_fake_export(
    root: Path,
    splits: Mapping[str, int] | None = None,
    *,
    size: int = 32,
    num_classes: int = NUM_CLASSES,
    perturbed: Sequence[str] = ("blur-0.5",),
) -> Path:
    """Write ``root/<split>/{labels,color,images}/<i>.png``, ``root/perturbed/<set>/...`` (for the test
    split) and ``root/manifest.json`` (kind "parsing-export"), as the parsing export lays them out."""
    splits = dict(splits or {"train": 8, "test": 4})
    palette = fake_palette(num_classes)
    indices, start = {}, 0
    for split, count in splits.items():
        indices[split] = list(range(start, start + count))
        start += count + 10
        _write_pairs(root / split, indices[split], size, palette, offset=0)
    sets = {}
    if "test" in indices:
        for k, name in enumerate(perturbed):
            kind, severity = name.rsplit("-", 1)
            _write_pairs(root / "perturbed" / name, indices["test"], size, palette, offset=5000 * (k + 1))
            sets[name] = {
                "kind": kind,
                "severity": float(severity),
                "count": len(indices["test"]),
                "dir": f"perturbed/{name}",
            }
    write_manifest(
        root,
        "parsing-export",
        version=1,
        resolution=size,
        label_order="fake",
        class_names=[f"class{k}" for k in range(num_classes)],
        num_classes=num_classes,
        palette=palette.tolist(),
        splits={split: {"count": len(ids), "indices": ids} for split, ids in indices.items()},
        counts={split: len(ids) for split, ids in indices.items()},
        perturbed={"split": "test" if sets else None, "seed": 0, "sets": sets},
        provenance={"variant": "fake"},
        layout={"labels": "{split}/labels/{index}.png", "images": "{split}/images/{index}.png"},
        dataset=None,
    )
    return root


@pytest.fixture
def fake_export() -> Callable[..., Path]:
    """``fake_export(root, splits={"train": 8, "test": 4}, size=32, ...)`` -> the export directory."""
    return write_fake_export


@pytest.fixture
def no_vgg_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the fp weight cache and torch hub at empty folders (no VGG19 file anywhere)."""
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    return tmp_path / "no-weights"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one torch thread (restored after): these tiny networks gain nothing from two, and on
    a shared 2-core machine two OpenMP threads waiting on each other made a 0.3 s test take minutes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
