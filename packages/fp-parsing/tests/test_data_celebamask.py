"""The CelebAMask-HQ Dataset on a tiny tree in the real layout, written by the tests (layout_tree.py)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fp_parsing.data import (
    ATTRIBUTE_NAMES,
    LABEL_ORDERS,
    CelebAMaskHQ,
    DataFormatError,
    flip_decision,
    flip_label_map,
    read_part_mask,
    write_part_masks,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tree writer beside this file (no conftest)
from layout_tree import (  # noqa: E402
    EXPECTED_SPLITS,
    IDENTITIES,
    INDICES,
    SKIN_TONES,
    attribute_bits,
    part_masks,
    reference_label_map,
    write_mask_png,
    write_tree,
)

ANNO = "CelebAMask-HQ-mask-anno"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "celebamask")


def _item(dataset: CelebAMaskHQ, index: int) -> dict[str, torch.Tensor]:
    return dataset[dataset.indices.index(index)]


# --- label maps -----------------------------------------------------------------------------------------

# (row, col) of image 0 -> label in zllrunning, official, farl (hand-computed from layout_tree.BOXES)
KNOWN_PIXELS = {
    (7, 7): (10, 2, 10),  # skin < nose
    (6, 7): (10, 3, 15),  # skin, eye_g, nose: nose wins in zllrunning, eye_g in the others
    (1, 5): (18, 14, 16),  # hair < hat
    (3, 4): (17, 13, 14),  # skin, l_brow, hair: hair
    (5, 4): (6, 4, 15),  # skin, eye_g, l_eye
    (8, 1): (9, 15, 17),  # l_ear < ear_r
    (10, 10): (12, 11, 13),  # skin, mouth, u_lip
    (11, 7): (11, 10, 11),  # skin, mouth
    (12, 5): (13, 12, 12),  # skin, mouth, l_lip
    (14, 7): (15, 17, 18),  # neck and neck_l: neck wins only in the official order
    (15, 7): (16, 18, 3),  # neck < cloth
    (13, 13): (1, 1, 2),  # skin alone
    (12, 0): (0, 0, 0),  # background
}


@pytest.mark.parametrize(("position", "order"), [(0, "zllrunning"), (1, "official"), (2, "farl")])
def test_overwrite_order_at_known_pixels(root: Path, position: int, order: str) -> None:
    mask = _item(CelebAMaskHQ(root, "all", label_order=order), 0)["mask"]
    for (row, col), labels in KNOWN_PIXELS.items():
        assert int(mask[row, col]) == labels[position], (order, row, col)


@pytest.mark.parametrize("order", sorted(LABEL_ORDERS))
def test_every_mask_matches_the_slow_reference(root: Path, order: str) -> None:
    dataset = CelebAMaskHQ(root, "all", label_order=order)
    assert dataset.class_names == ["background", *LABEL_ORDERS[order]]
    for index in INDICES:
        item = _item(dataset, index)
        np.testing.assert_array_equal(item["mask"].numpy(), reference_label_map(index, LABEL_ORDERS[order]))


def test_item_contents(root: Path) -> None:
    dataset = CelebAMaskHQ(root, "all")
    assert dataset.indices == sorted(INDICES)
    assert dataset.attribute_names == list(ATTRIBUTE_NAMES)
    item = _item(dataset, 2000)
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["mask"].dtype == torch.int64 and item["mask"].shape == (16, 16)
    assert item["attributes"].dtype == torch.int64 and item["attributes"].shape == (40,)
    for index in INDICES:
        expected = [1 if bit == 1 else 0 for bit in attribute_bits(index)]
        assert _item(dataset, index)["attributes"].tolist() == expected
    for key in ("skin_tone", "identity", "index"):
        assert item[key].dtype == torch.int64 and item[key].shape == ()
    assert int(item["index"]) == 2000
    # the image is the file's pixels (blue channel constant 100 + 20 * position, JPEG within a few levels)
    blue = item["image"][2] * 255
    assert abs(float(blue.mean()) - (100 + 20 * 4)) < 3
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["mask"].shape == (4, 16, 16)
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_identity_and_skin_tone(root: Path) -> None:
    dataset = CelebAMaskHQ(root, "all")
    assert dataset.skin_tone_groups == ["light", "dark"]
    for index in INDICES:
        item = _item(dataset, index)
        assert int(item["identity"]) == IDENTITIES[index], index
        assert int(item["skin_tone"]) == SKIN_TONES[index], index
    assert dataset.identities.tolist() == [IDENTITIES[i] for i in dataset.indices]


def test_identity_and_skin_tone_absent(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "bare", with_identity=False, with_skin_tone=False)
    dataset = CelebAMaskHQ(root, "test")
    assert dataset.skin_tone_groups is None
    assert [int(dataset[k]["identity"]) for k in range(len(dataset))] == [-1, -1]
    assert [int(dataset[k]["skin_tone"]) for k in range(len(dataset))] == [-1, -1]


# --- splits ---------------------------------------------------------------------------------------------


def test_split_join_on_orig_file(root: Path) -> None:
    for split, expected in EXPECTED_SPLITS.items():
        assert CelebAMaskHQ(root, split).indices == expected, split
    assert CelebAMaskHQ(root, "all").indices == sorted(INDICES)


def test_all_needs_no_partition_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "nopart", with_partition=False)
    assert len(CelebAMaskHQ(root, "all")) == len(INDICES)
    with pytest.raises(FileNotFoundError) as caught:
        CelebAMaskHQ(root, "train")
    message = str(caught.value)
    assert str(root / "list_eval_partition.txt") in message
    assert "CelebA's Eval/list_eval_partition.txt" in message and "copy it into the dataset root" in message


def test_image_without_mapping_row(root: Path) -> None:
    mapping = root / "CelebA-HQ-to-CelebA-mapping.txt"
    mapping.write_text(
        "".join(line for line in mapping.read_text().splitlines(True) if not line.startswith("2 "))
    )
    with pytest.raises(DataFormatError, match=r"CelebA-HQ-to-CelebA-mapping.txt: no row for image 2\.jpg"):
        CelebAMaskHQ(root, "train")
    assert 2 in CelebAMaskHQ(root, "all").indices  # "all" does not need the join


def test_file_without_partition_row(root: Path) -> None:
    partition = root / "list_eval_partition.txt"
    partition.write_text(
        "".join(ln for ln in partition.read_text().splitlines(True) if "000041.jpg" not in ln)
    )
    with pytest.raises(
        DataFormatError, match=r"list_eval_partition.txt: no row for 000041\.jpg.*image 3\.jpg"
    ):
        CelebAMaskHQ(root, "val")


# --- flips ----------------------------------------------------------------------------------------------


def test_hflip_mirrors_image_and_swaps_labels(root: Path) -> None:
    plain = CelebAMaskHQ(root, "all", label_order="official")
    flipping = CelebAMaskHQ(root, "all", label_order="official", hflip=True, seed=3)
    outcomes = set()
    for epoch in range(6):
        flipping.set_epoch(epoch)
        for k in range(len(plain)):
            reference, item = plain[k], flipping[k]
            flipped = flipping.is_flipped(k)
            outcomes.add(flipped)
            if flipped:
                torch.testing.assert_close(item["image"], reference["image"].flip(-1), rtol=0, atol=0)
                assert torch.equal(item["mask"], flip_label_map(reference["mask"], "official"))
            else:
                assert torch.equal(item["image"], reference["image"]) and torch.equal(
                    item["mask"], reference["mask"]
                )
            assert torch.equal(item["attributes"], reference["attributes"])
    assert outcomes == {True, False}
    # hand-checked pixels of image 0 when flipped (official: eye_g 3, l_eye 4, r_eye 5, l_ear 8, r_ear 9)
    epoch = next(e for e in range(50) if flip_decision(3, e, 0))
    flipping.set_epoch(epoch)
    mask = flipping[0]["mask"]
    assert int(plain[0]["mask"][5, 10]) == 3 and int(mask[5, 10]) == 5  # mirrored l_eye, now r_eye
    assert int(plain[0]["mask"][7, 1]) == 8 and int(mask[7, 14]) == 9  # mirrored l_ear, now r_ear


def test_flips_are_a_function_of_seed_epoch_and_index(root: Path) -> None:
    def pattern(split: str, seed: int) -> dict[tuple[int, int], bool]:
        dataset = CelebAMaskHQ(root, split, hflip=True, seed=seed)
        flips = {}
        for epoch in range(8):
            dataset.set_epoch(epoch)
            flips.update({(epoch, index): dataset.is_flipped(k) for k, index in enumerate(dataset.indices)})
        return flips

    everything = pattern("all", 11)
    assert pattern("all", 11) == everything  # a fresh dataset (a resumed run) flips the same items
    test_split = pattern("test", 11)  # keyed on the image index, not the item's position in its split
    assert test_split == {key: everything[key] for key in test_split}
    assert pattern("all", 12) != everything
    assert everything == {
        (e, i): bool(np.random.default_rng([11, e, i]).random() < 0.5) for e, i in everything
    }
    share = np.mean([flip_decision(0, 0, index) for index in range(4000)])
    assert 0.45 < share < 0.55
    assert not any(CelebAMaskHQ(root, "all", hflip=False).is_flipped(k) for k in range(6))


# --- sizes ----------------------------------------------------------------------------------------------


def test_image_size_resizes_image_bilinear_and_mask_nearest(root: Path) -> None:
    original = CelebAMaskHQ(root, "all")
    larger = CelebAMaskHQ(root, "all", image_size=32)
    smaller = CelebAMaskHQ(root, "all", image_size=8)
    odd = CelebAMaskHQ(root, "all", image_size=5)
    for k in range(len(original)):
        mask = original[k]["mask"]
        big = larger[k]
        assert big["image"].shape == (3, 32, 32)
        assert torch.equal(big["mask"], mask.repeat_interleave(2, 0).repeat_interleave(2, 1))
        small = smaller[k]
        assert small["image"].shape == (3, 8, 8)
        assert torch.equal(small["mask"], mask[1::2, 1::2])  # nearest: the centre pixel of each 2x2 block
        five = odd[k]["mask"]
        assert five.shape == (5, 5)
        assert set(five.unique().tolist()) <= set(mask.unique().tolist())
        # bilinear with antialiasing keeps each channel's mean, and the result stays in [0, 1]
        for resized in (big["image"], small["image"]):
            torch.testing.assert_close(
                resized.mean((1, 2)), original[k]["image"].mean((1, 2)), atol=0.02, rtol=0
            )
            assert 0.0 <= float(resized.min()) and float(resized.max()) <= 1.0


def test_half_size_masks_like_the_release(tmp_path: Path) -> None:
    # the release pairs 1024x1024 images with 512x512 masks; here 32x32 images with 16x16 masks
    root = write_tree(tmp_path / "half", image_size=32, mask_size=16)
    full = CelebAMaskHQ(root, "all", label_order="farl")
    at_mask_size = CelebAMaskHQ(root, "all", label_order="farl", image_size=16)
    for k, index in enumerate(full.indices):
        reference = torch.from_numpy(reference_label_map(index, LABEL_ORDERS["farl"]))
        item = full[k]
        assert item["image"].shape == (3, 32, 32)
        assert torch.equal(item["mask"], reference.repeat_interleave(2, 0).repeat_interleave(2, 1))
        assert torch.equal(at_mask_size[k]["mask"], reference)


# --- mask encodings -------------------------------------------------------------------------------------


def test_masks_read_as_grayscale_above_zero(root: Path) -> None:
    anno = root / ANNO / "0"
    with Image.open(anno / "00001_skin.png") as image:
        assert image.mode == "L" and int(np.asarray(image).max()) == 225
    with Image.open(anno / "00002_hair.png") as image:
        assert image.mode == "RGB"
    with Image.open(anno / "00003_nose.png") as image:
        assert image.mode == "P"
        raw = np.asarray(image)
    # the palette PNG's part pixels are index 0 (white): judging raw indices would invert the mask
    np.testing.assert_array_equal(raw == 0, part_masks(3)["nose"])
    for index, part in ((1, "skin"), (2, "hair"), (3, "nose")):
        path = anno / f"{index:05d}_{part}.png"
        np.testing.assert_array_equal(read_part_mask(path), part_masks(index)[part])
    dataset = CelebAMaskHQ(root, "all", label_order="official")
    for index in (1, 2, 3):
        np.testing.assert_array_equal(
            _item(dataset, index)["mask"].numpy(), reference_label_map(index, LABEL_ORDERS["official"])
        )


# --- the round trip through write_part_masks ------------------------------------------------------------


@pytest.mark.parametrize("order", sorted(LABEL_ORDERS))
def test_write_part_masks_round_trip_through_the_dataset(root: Path, order: str) -> None:
    rng = np.random.default_rng(len(order))
    label_map = rng.integers(0, 19, size=(16, 16)).astype(np.uint8)
    label_map[:, :3] = 0
    label_map[label_map == 18] = 0  # the last part is absent
    for path in (root / ANNO / "1").glob("02001_*.png"):
        path.unlink()
    written = write_part_masks(label_map, root / ANNO, 2001, order)
    assert len(written) == len(set(np.unique(label_map).tolist()) - {0})
    assert not (root / ANNO / "1" / f"02001_{LABEL_ORDERS[order][17]}.png").exists()
    assert all(path.parent == root / ANNO / "1" and path.name.startswith("02001_") for path in written)
    item = _item(CelebAMaskHQ(root, "all", label_order=order), 2001)
    np.testing.assert_array_equal(item["mask"].numpy(), label_map)


def test_export_style_tree_reads_back_the_same_label_maps(root: Path, tmp_path: Path) -> None:
    source = CelebAMaskHQ(root, "all", label_order="farl")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(ANNO))
    for k, index in enumerate(source.indices):
        write_part_masks(source[k]["mask"], copy / ANNO, index, "farl")
    rewritten = CelebAMaskHQ(copy, "all", label_order="farl")
    for k in range(len(source)):
        assert torch.equal(source[k]["mask"], rewritten[k]["mask"]), k
    # the written masks are disjoint, so another order reads the same regions under its own label ids
    farl_to_zll = torch.tensor([0] + [LABEL_ORDERS["zllrunning"].index(p) + 1 for p in LABEL_ORDERS["farl"]])
    in_zll = CelebAMaskHQ(copy, "all", label_order="zllrunning")
    for k in range(len(source)):
        assert torch.equal(in_zll[k]["mask"], farl_to_zll[source[k]["mask"]]), k


def test_write_part_masks_removes_stale_parts(root: Path) -> None:
    anno = root / ANNO
    hat = anno / "0" / "00000_hat.png"
    assert hat.exists()
    label_map = np.zeros((16, 16), dtype=np.uint8)
    label_map[4:8, 4:8] = 1  # zllrunning skin only
    assert write_part_masks(label_map, anno, 0) == [anno / "0" / "00000_skin.png"]
    assert sorted(path.name for path in (anno / "0").glob("00000_*.png")) == ["00000_skin.png"]
    np.testing.assert_array_equal(_item(CelebAMaskHQ(root, "all"), 0)["mask"].numpy(), label_map)
    write_part_masks(np.zeros((16, 16), dtype=np.uint8), anno, 0)
    assert not list((anno / "0").glob("00000_*.png"))
    assert int(_item(CelebAMaskHQ(root, "all"), 0)["mask"].max()) == 0  # no parts: all background


# --- bad input ------------------------------------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"dataset root {tmp_path / 'nowhere'} does not exist")
    ):
        CelebAMaskHQ(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("name", "origin"),
    [
        ("CelebA-HQ-img", "CelebAMask-HQ/CelebA-HQ-img/"),
        ("CelebAMask-HQ-mask-anno", "CelebAMask-HQ/CelebAMask-HQ-mask-anno/"),
        ("CelebAMask-HQ-attribute-anno.txt", "CelebAMask-HQ/CelebAMask-HQ-attribute-anno.txt"),
        ("CelebA-HQ-to-CelebA-mapping.txt", "CelebAMask-HQ/CelebA-HQ-to-CelebA-mapping.txt"),
    ],
)
def test_missing_required_file(root: Path, name: str, origin: str) -> None:
    target = root / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(FileNotFoundError) as caught:
        CelebAMaskHQ(root, "all")
    assert f"missing {target}; it comes from the CelebAMask-HQ release ({origin})" in str(caught.value)


def test_listed_image_missing(root: Path) -> None:
    (root / "CelebA-HQ-img" / "3.jpg").unlink()
    with pytest.raises(FileNotFoundError) as caught:
        CelebAMaskHQ(root, "test")
    message = str(caught.value)
    assert f"listed image missing: {root / 'CelebA-HQ-img' / '3.jpg'}" in message
    assert "CelebAMask-HQ-attribute-anno.txt, line 5" in message
    assert len(CelebAMaskHQ(root, "train")) == 3  # checks cover the split being loaded


def test_image_that_does_not_decode(root: Path) -> None:
    (root / "CelebA-HQ-img" / "2.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    dataset = CelebAMaskHQ(root, "val")  # decoding is lazy
    with pytest.raises(
        DataFormatError, match=re.escape(f"{root / 'CelebA-HQ-img' / '2.jpg'}: image does not decode")
    ):
        dataset[0]


def test_mask_that_does_not_decode(root: Path) -> None:
    (root / ANNO / "0" / "00002_nose.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(
        DataFormatError, match=re.escape(f"{root / ANNO / '0' / '00002_nose.png'}: part mask does not")
    ):
        CelebAMaskHQ(root, "val")[0]


def test_mask_of_another_size_than_its_siblings(root: Path) -> None:
    path = root / ANNO / "0" / "00002_nose.png"
    write_mask_png(path, np.ones((8, 8), dtype=bool))
    with pytest.raises(DataFormatError) as caught:
        CelebAMaskHQ(root, "val")[0]
    message = str(caught.value)
    assert message.startswith(f"{path}: mask is 8x8 but {root / ANNO / '0' / '00002_skin.png'} is 16x16")
    assert "all part masks of an image must have one size" in message


def test_non_square_mask_of_another_size_than_the_image(root: Path) -> None:
    for name, mask in part_masks(2).items():
        write_mask_png(root / ANNO / "0" / f"00002_{name}.png", mask[:, :12])  # 12 wide, 16 high
    with pytest.raises(DataFormatError) as caught:
        CelebAMaskHQ(root, "val")[0]
    message = str(caught.value)
    assert message.startswith(f"{root / ANNO / '0' / '00002_skin.png'}: mask is 12x16 but image ")
    assert f"{root / 'CelebA-HQ-img' / '2.jpg'} is 16x16" in message


def test_square_mask_for_a_non_square_image(root: Path) -> None:
    Image.fromarray(np.zeros((16, 20, 3), dtype=np.uint8)).save(root / "CelebA-HQ-img" / "2.jpg")
    with pytest.raises(DataFormatError, match=r"mask is 16x16 but image .*2\.jpg is 20x16"):
        CelebAMaskHQ(root, "val")[0]


def test_attribute_row_with_wrong_column_count(root: Path) -> None:
    path = root / "CelebAMask-HQ-attribute-anno.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]  # line 5 loses its last attribute
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{path}, line 5: expected 41 columns")):
        CelebAMaskHQ(root, "all")


def test_mask_files_with_bad_names_or_places(root: Path) -> None:
    stray = root / ANNO / "0" / "00001_beard.png"
    write_mask_png(stray, np.ones((16, 16), dtype=bool))
    with pytest.raises(DataFormatError, match=re.escape(f"{stray}: unknown part 'beard'")):
        CelebAMaskHQ(root, "all")
    stray.unlink()
    misplaced = root / ANNO / "0" / "02000_hat.png"
    write_mask_png(misplaced, np.ones((16, 16), dtype=bool))
    with pytest.raises(
        DataFormatError, match=re.escape(f"expected it at {root / ANNO / '1' / '02000_hat.png'}")
    ):
        CelebAMaskHQ(root, "all")


def test_missing_mask_folder(root: Path) -> None:
    shutil.rmtree(root / ANNO / "1")
    with pytest.raises(FileNotFoundError, match=re.escape(f"missing mask folder {root / ANNO / '1'}")):
        CelebAMaskHQ(root, "test")
    assert CelebAMaskHQ(root, "val").indices == [2]  # only folder 0 is needed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "dev"}, "unknown split 'dev'"),
        ({"label_order": "lapa"}, "unknown label order 'lapa'"),
        ({"image_size": 0}, "image_size must be a positive integer or None"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments(root: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CelebAMaskHQ(root, **kwargs)
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        CelebAMaskHQ(root, "all").set_epoch(-1)
    with pytest.raises(IndexError):
        CelebAMaskHQ(root, "val")[1]
