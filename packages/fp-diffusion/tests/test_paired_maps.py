"""PairedMaps over a fake parsing export written in the real layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fp_core.manifest import ManifestError
from fp_diffusion.data import PairedMaps, PairedMapsError


def test_items_match_the_files(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 5, "test": 3})
    data = PairedMaps(root, "train")
    assert len(data) == 5
    labels, image, name = data[2]
    assert name == "train/labels/2.png"
    assert labels.dtype == torch.int64 and labels.shape == (32, 32)
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32)
    assert float(image.min()) >= -1 and float(image.max()) <= 1
    assert np.array_equal(labels.numpy(), np.asarray(Image.open(root / "train/labels/2.png")))
    pixels = np.asarray(Image.open(root / "train/images/2.png")).astype(np.float32)
    assert torch.allclose(image, torch.from_numpy(pixels).permute(2, 0, 1) / 127.5 - 1)
    assert data.palette is not None and data.palette.shape == (19, 3) and data.label_nc == 19


def test_several_splits_and_perturbed_sets(tmp_path: Path, fake_export) -> None:
    root = fake_export(
        tmp_path / "export", {"train": 4, "val": 2, "test": 3}, perturbed=("blur-0.5", "darkness-0.5")
    )
    both = PairedMaps(root, ["train", "val"])
    assert len(both) == 6 and both.names[4].startswith("val/labels/")
    blur = PairedMaps(root, "blur-0.5")
    test = PairedMaps(root, "test")
    assert [n.rsplit("/", 1)[1] for n in blur.names] == [n.rsplit("/", 1)[1] for n in test.names]
    assert blur.names[0].startswith("perturbed/blur-0.5/labels/")
    assert PairedMaps(root, "perturbed/darkness-0.5").names[0].startswith("perturbed/darkness-0.5/")
    batch = next(iter(DataLoader(both, batch_size=3)))
    assert batch[0].shape == (3, 32, 32) and batch[1].shape == (3, 3, 32, 32) and len(batch[2]) == 3


def test_missing_split_names_the_manifest_and_key(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 2, "test": 2})
    with pytest.raises(
        PairedMapsError, match=r"manifest\.json: no split 'val': 'splits' has \['test', 'train'\]"
    ):
        PairedMaps(root, "val")
    with pytest.raises(ManifestError, match="does not exist"):
        PairedMaps(tmp_path / "nowhere", "train")
    last = PairedMaps(root, "test").names[-1].rsplit("/", 1)[1]
    (root / "test/images" / last).unlink()
    with pytest.raises(PairedMapsError, match=rf"test/images/{last} is missing"):
        PairedMaps(root, "test")


def test_labels_out_of_range_name_the_file(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 3})
    labels = np.asarray(Image.open(root / "train/labels/1.png")).copy()
    labels[0, 0] = 23
    Image.fromarray(labels).save(root / "train/labels/1.png")
    data = PairedMaps(root, "train")
    data[0]
    with pytest.raises(PairedMapsError, match=r"train/labels/1\.png: class id 23 >= label_nc=19"):
        data[1]
    assert int(PairedMaps(root, "train", label_nc=24)[1][0].max()) == 23


def test_resize_keeps_labels_and_flip_applies_to_both(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 6}, size=32)
    plain = PairedMaps(root, "train")
    small = PairedMaps(root, "train", resolution=16)
    labels, image, _ = small[0]
    assert labels.shape == (16, 16) and image.shape == (3, 16, 16)
    assert set(labels.unique().tolist()) <= set(plain[0][0].unique().tolist())  # nearest: no new ids
    assert torch.equal(labels, plain[0][0][::2, ::2]) or torch.equal(labels, plain[0][0][1::2, 1::2])
    flipping = PairedMaps(root, "train", flip=True, seed=3)
    seen = set()
    for epoch in range(4):
        flipping.set_epoch(epoch)
        for i in range(len(flipping)):
            lab, img, _ = flipping[i]
            ref_lab, ref_img, _ = plain[i]
            flipped = flipping.flipped(i)
            seen.add(flipped)
            assert torch.equal(lab, ref_lab.flip(-1) if flipped else ref_lab)
            assert torch.equal(img, ref_img.flip(-1) if flipped else ref_img)
    assert seen == {True, False}
    again = PairedMaps(root, "train", flip=True, seed=3)
    again.set_epoch(2)
    flipping.set_epoch(2)
    assert [again.flipped(i) for i in range(6)] == [flipping.flipped(i) for i in range(6)]


def test_a_foreign_manifest_is_refused(tmp_path: Path, fake_export) -> None:
    root = fake_export(tmp_path / "export", {"train": 2})
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["kind"] = "something-else"
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="expected 'parsing-export'"):
        PairedMaps(root, "train")
