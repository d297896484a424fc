"""FairHuman data reader: box masks, latent masks, reader errors and mask/image alignment through the transform."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fp_core.seeds import torch_generator
from fp_diffusion.fairhuman import (
    HumanScenes,
    HumanScenesError,
    JointTransform,
    boxes_to_mask,
    mask_to_latent,
)

FACE, HAND = [10, 20, 26, 34], [40, 5, 48, 13]
RED, GREEN, GRAY = (255, 0, 0), (0, 255, 0), (128, 128, 128)


def _scene(size: int = 64) -> Image.Image:
    """Gray image with the face box pure red and the hand box pure green."""
    pixels = np.full((size, size, 3), GRAY, dtype=np.uint8)
    pixels[FACE[1] : FACE[3], FACE[0] : FACE[2]] = RED
    pixels[HAND[1] : HAND[3], HAND[0] : HAND[2]] = GREEN
    return Image.fromarray(pixels)


def _folder(tmp_path, records=None, size: int = 64):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "conditions" / "pose").mkdir(parents=True)
    for k in range(3):
        _scene(size).save(root / "images" / f"{k}.png")
        _scene(size).save(root / "conditions" / "pose" / f"{k}.png")
    if records is None:
        records = [
            {"file_name": f"images/{k}.png", "text": f"person {k}", "face_boxes": [FACE], "hand_boxes": [HAND],
             "conditions": {"pose": f"conditions/pose/{k}.png"}, "people": []}
            for k in range(3)
        ]  # fmt: skip
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return root, records


def test_boxes_to_mask_exact_cases():
    expected = torch.zeros(3, 4, dtype=torch.bool)
    expected[0:2, 1:3] = True
    assert torch.equal(boxes_to_mask([[1, 0, 3, 2]], 3, 4), expected)
    grown = torch.zeros(6, 6, dtype=torch.bool)
    grown[1:5, 1:5] = True  # a 2-pixel box grown by 0.5 of its size: one pixel per side
    assert torch.equal(boxes_to_mask([[2, 2, 4, 4]], 6, 6, dilation=0.5), grown)
    # pixel centres decide fractional boxes: 0.5 and 1.5 lie in [0.4, 1.6)
    assert boxes_to_mask([[0.4, 0, 1.6, 1]], 1, 4).tolist() == [[True, True, False, False]]
    clipped = boxes_to_mask([[2, 2, 4, 4], [0, 0, 1, 1]], 4, 4, dilation=1.0)
    assert clipped.all()  # grown to [0, 0, 6, 6], clipped to the image
    assert not boxes_to_mask([], 2, 2).any()
    with pytest.raises(ValueError, match="empty"):
        boxes_to_mask([[3, 0, 3, 2]], 4, 4)
    with pytest.raises(ValueError, match="dilation"):
        boxes_to_mask([[0, 0, 1, 1]], 4, 4, dilation=-0.1)


def test_mask_to_latent_any_rule_exact():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1, 2] = True
    assert mask_to_latent(mask, 2).tolist() == [[False, True], [False, False]]
    odd = torch.zeros(5, 5)
    odd[2, 0] = 1.0  # 5 -> 2: cells cover rows 0..2 and 2..4, so row 2 lies in both
    assert mask_to_latent(odd, (2, 2)).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    soft = torch.tensor([[0.2, 0.0], [0.0, 0.7]])
    assert mask_to_latent(soft, 1).tolist() == [[pytest.approx(0.7)]]
    batch = torch.zeros(2, 3, 8, 8)
    batch[1, 2, 7, 7] = 1
    out = mask_to_latent(batch, 4)
    assert out.shape == (2, 3, 4, 4) and out.sum() == 1 and out[1, 2, 3, 3] == 1
    with pytest.raises(ValueError, match="latent size"):
        mask_to_latent(torch.zeros(4, 4), 8)


def test_reader_items_shapes_ranges_and_masks(tmp_path):
    root, _ = _folder(tmp_path)
    data = HumanScenes(root)
    assert len(data) == 3 and data.condition_names == ("pose",)
    item = data[1]
    assert item["pixel_values"].shape == (3, 64, 64)
    assert item["pixel_values"].min() >= -1 and item["pixel_values"].max() <= 1
    assert torch.equal(item["face_mask"], boxes_to_mask([FACE], 64, 64).float())
    assert torch.equal(item["hand_mask"], boxes_to_mask([HAND], 64, 64).float())
    assert item["conditions"]["pose"].shape == (3, 64, 64) and item["conditions"]["pose"].max() <= 1
    assert item["caption"] == "person 1" and item["file_name"] == "images/1.png"
    resized = HumanScenes(root, size=32)[0]
    assert resized["pixel_values"].shape == (3, 32, 32) and resized["face_mask"].shape == (32, 32)


def _write(root, records):
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[1].update(file_name="images/missing.png"), r"metadata.jsonl:2: the image .*missing.png does not exist"),
        (lambda r: r[2].update(face_boxes=[[10, 5, 10, 9]]), r"metadata.jsonl:3: face_boxes box \[10, 5, 10, 9\] is malformed"),
        (lambda r: r[0].update(hand_boxes=[[50, 50, 70, 60]]), r"metadata.jsonl:1: hand_boxes box .* outside the 64x64 image"),
        (lambda r: r[0].update(hand_boxes=[[1, 2, 3]]), r"metadata.jsonl:1: hand_boxes holds \[1, 2, 3\]"),
        (lambda r: r[1].update(conditions={}), r"metadata.jsonl:2: images/1.png has no condition 'pose'"),
        (lambda r: r[2].update(conditions={"pose": "conditions/pose/9.png"}), r"metadata.jsonl:3: the condition 'pose' .*9.png does not exist"),
        (lambda r: r[0].pop("text"), r"metadata.jsonl:1: 'text' must be a string"),
    ],
)  # fmt: skip
def test_reader_errors_name_the_file_and_line(tmp_path, change, message):
    root, records = _folder(tmp_path)
    change(records)
    _write(root, records)
    with pytest.raises(HumanScenesError, match=message):
        HumanScenes(root)


def test_reader_errors_for_bad_json_missing_folder_and_datasets(tmp_path):
    root, _ = _folder(tmp_path)
    with (root / "metadata.jsonl").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(HumanScenesError, match=r"metadata.jsonl:4: not valid JSON"):
        HumanScenes(root)
    with pytest.raises(HumanScenesError, match="metadata.jsonl does not exist"):
        HumanScenes(tmp_path / "data" / "images")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "state.json").write_text("{}")
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(HumanScenesError, match="needs the 'datasets' package"):
            HumanScenes(hf)


def _check_alignment(item, exact: bool) -> None:
    rgb = (item["pixel_values"] + 1) / 2
    red = (rgb[0] > 0.75) & (rgb[1] < 0.25)
    green = (rgb[1] > 0.75) & (rgb[0] < 0.25)
    pose = item["conditions"]["pose"]
    pose_red = (pose[0] > 0.75) & (pose[1] < 0.25)
    face, hand = item["face_mask"] > 0.5, item["hand_mask"] > 0.5
    if exact:
        assert torch.equal(face, red) and torch.equal(hand, green) and torch.equal(pose_red, red)
        return
    for mask, colour in ((face, red), (hand, green), (face, pose_red)):
        union = (mask | colour).sum()
        if union:
            assert (mask & colour).sum() / union >= 0.7


def test_masks_follow_the_image_through_every_flip_and_crop(tmp_path):
    root, _ = _folder(tmp_path)
    flips = set()
    exact = JointTransform(48, crop_scale=(0.75, 0.75), flip_prob=0.5)  # 48-pixel crops: no resize
    for seed in range(150):
        data = HumanScenes(root, transform=exact, seed=seed)
        params = exact.draw(64, 64, torch_generator(seed, 0, 0))  # the draw the dataset makes
        flips.add(params.flip)
        _check_alignment(data[0], exact=True)
    assert flips == {True, False}
    resized = JointTransform(32, crop_scale=(0.5, 1.0), flip_prob=0.5)
    for seed in range(60):
        _check_alignment(HumanScenes(root, transform=resized, seed=seed)[0], exact=False)


def test_seeded_items_are_reproducible_and_change_with_the_epoch(tmp_path):
    root, _ = _folder(tmp_path)
    transform = JointTransform(40, crop_scale=(0.5, 0.9))
    a, b = HumanScenes(root, transform=transform, seed=3), HumanScenes(root, transform=transform, seed=3)
    assert torch.equal(a[0]["face_mask"], b[0]["face_mask"])
    masks = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        masks.add(a[0]["face_mask"].numpy().tobytes())
    assert len(masks) > 1
