"""ConditionedFaces: items' shapes and ranges, captions, and flips shared by image and map."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fp_diffusion.controlnet.conditioning import condition_to_labels
from fp_diffusion.controlnet.data import ConditionedFaces, caption_for, stack_items


def test_items_have_the_training_layout(tmp_path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 3, "test": 2}, size=32)
    data = ConditionedFaces(export, "train", resolution=16, captions="a photo of a face")
    assert len(data) == 3
    item = data[1]
    assert set(item) == {"pixel_values", "conditioning_pixel_values", "caption", "name"}
    assert item["pixel_values"].shape == (3, 16, 16) and item["conditioning_pixel_values"].shape == (
        3,
        16,
        16,
    )
    assert -1 <= float(item["pixel_values"].min()) and float(item["pixel_values"].max()) <= 1
    assert (
        0
        <= float(item["conditioning_pixel_values"].min())
        <= float(item["conditioning_pixel_values"].max())
        <= 1
    )
    assert item["caption"] == "a photo of a face" and item["name"] == "train/labels/1.png"
    # the condition is the exported map, nearest-resized, in face colours
    exported = np.asarray(Image.open(export / "train/labels/1.png"))
    expected = np.asarray(Image.fromarray(exported).resize((16, 16), Image.Resampling.NEAREST))
    assert condition_to_labels(item["conditioning_pixel_values"]).numpy().tolist() == expected.tolist()
    batch = stack_items([data[0], data[1]])
    assert batch["pixel_values"].shape == (2, 3, 16, 16) and batch["name"] == [
        "train/labels/0.png",
        item["name"],
    ]


def test_captions_by_name_or_index_and_missing_named(tmp_path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 2, "test": 1}, size=16)
    data = ConditionedFaces(
        export, "train", resolution=16, captions={"train/labels/0.png": "first", "1": "second"}
    )
    assert [data[0]["caption"], data[1]["caption"]] == ["first", "second"]
    with pytest.raises(KeyError, match=r"train/labels/1.png"):
        ConditionedFaces(export, "train", resolution=16, captions={"0": "only one"})
    assert caption_for("x/labels/3.png", "fixed") == "fixed"


def test_flips_mirror_image_and_map_together(tmp_path, fake_export) -> None:
    export = fake_export(tmp_path / "export", {"train": 8, "test": 1}, size=16)
    plain = ConditionedFaces(export, "train", resolution=16, captions="x")
    flipped = ConditionedFaces(export, "train", resolution=16, captions="x", flip=True, seed=3)
    seen = set()
    for epoch in range(3):
        flipped.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], flipped[i]
            mirrored = flipped.pairs.flipped(i)
            seen.add(mirrored)
            for key in ("pixel_values", "conditioning_pixel_values"):
                expected = torch.flip(a[key], dims=[-1]) if mirrored else a[key]
                assert torch.equal(b[key], expected)
    assert seen == {True, False}
