"""Label orders, merging (overwrite order), flips and the label map <-> part mask round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_parsing.data import (
    LABEL_ORDERS,
    PART_NAMES,
    flip_label_map,
    label_map_to_part_masks,
    label_names,
    merge_part_masks,
    mirror_lookup,
)


def test_three_orders_are_permutations_of_the_18_parts() -> None:
    assert set(LABEL_ORDERS) == {"zllrunning", "official", "farl"}
    for parts in LABEL_ORDERS.values():
        assert len(parts) == 18
        assert sorted(parts) == sorted(PART_NAMES)


def test_label_ids_of_each_order() -> None:
    zll = label_names("zllrunning")
    assert zll[0] == "background"
    assert [zll.index(p) for p in ("skin", "l_brow", "eye_g", "ear_r", "nose", "neck", "cloth", "hair", "hat")] == [
        1, 2, 6, 9, 10, 14, 16, 17, 18,
    ]  # fmt: skip
    official = label_names("official")
    assert [official.index(p) for p in ("skin", "nose", "eye_g", "hair", "hat", "neck_l", "neck", "cloth")] == [
        1, 2, 3, 13, 14, 16, 17, 18,
    ]  # fmt: skip
    farl = label_names("farl")
    assert [farl.index(p) for p in ("neck", "skin", "cloth", "nose", "l_lip", "u_lip", "eye_g", "neck_l")] == [
        1, 2, 3, 10, 12, 13, 15, 18,
    ]  # fmt: skip
    assert label_names() == zll


def test_unknown_order_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown label order 'celeba'.*zllrunning, official, farl"):
        label_names("celeba")


def _square(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_merge_later_label_overwrites_earlier() -> None:
    # skin everywhere, nose in the middle, eye_g across the nose's top row, hair on row 0, hat at (0, 0)
    shape = (4, 4)
    masks = {
        "skin": np.ones(shape, dtype=bool),
        "nose": _square(shape, slice(1, 3), slice(1, 3)),
        "eye_g": _square(shape, slice(1, 2), slice(0, 4)),
        "hair": _square(shape, slice(0, 1), slice(0, 4)),
        "hat": _square(shape, slice(0, 1), slice(0, 1)),
    }
    zll = merge_part_masks(masks, "zllrunning")  # skin 1, eye_g 6, nose 10, hair 17, hat 18
    np.testing.assert_array_equal(zll, [[18, 17, 17, 17], [6, 10, 10, 6], [1, 10, 10, 1], [1, 1, 1, 1]])
    official = merge_part_masks(masks, "official")  # skin 1, nose 2, eye_g 3, hair 13, hat 14
    np.testing.assert_array_equal(official, [[14, 13, 13, 13], [3, 3, 3, 3], [1, 2, 2, 1], [1, 1, 1, 1]])
    farl = merge_part_masks(masks, "farl")  # skin 2, nose 10, hair 14, eye_g 15, hat 16
    np.testing.assert_array_equal(farl, [[16, 14, 14, 14], [15, 15, 15, 15], [2, 10, 10, 2], [2, 2, 2, 2]])
    assert zll.dtype == np.uint8


def test_merge_edge_cases() -> None:
    np.testing.assert_array_equal(merge_part_masks({}, shape=(2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="needs `shape`"):
        merge_part_masks({})
    with pytest.raises(ValueError, match=r"unknown part names \['beard'\]"):
        merge_part_masks({"beard": np.ones((2, 2), dtype=bool)})
    with pytest.raises(ValueError, match="differ in size"):
        merge_part_masks({"skin": np.ones((2, 2), dtype=bool), "nose": np.ones((3, 3), dtype=bool)})


def test_mirror_lookup_swaps_only_left_right_pairs() -> None:
    for order, parts in LABEL_ORDERS.items():
        lookup = mirror_lookup(order)
        names = label_names(order)
        swapped = {names[a]: names[b] for a, b in enumerate(lookup) if a != b}
        assert swapped == {
            "l_brow": "r_brow", "r_brow": "l_brow", "l_eye": "r_eye", "r_eye": "l_eye",
            "l_ear": "r_ear", "r_ear": "l_ear",
        }, order  # fmt: skip
        assert len(lookup) == len(parts) + 1


def test_flip_label_map_numpy_and_torch() -> None:
    # zllrunning: 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 7 l_ear, 8 r_ear, 9 ear_r (no swap), 10 nose
    label_map = np.array([[2, 0, 10, 9], [4, 7, 1, 5]], dtype=np.uint8)
    expected = np.array([[9, 10, 0, 3], [4, 1, 8, 5]], dtype=np.uint8)
    flipped = flip_label_map(label_map)
    np.testing.assert_array_equal(flipped, expected)
    assert flipped.dtype == np.uint8
    as_tensor = flip_label_map(torch.from_numpy(label_map).long())
    assert as_tensor.dtype == torch.int64
    np.testing.assert_array_equal(as_tensor.numpy(), expected)
    # a batch [B, H, W] flips each map; flipping twice is the identity
    batch = torch.from_numpy(np.stack([label_map, expected])).long()
    np.testing.assert_array_equal(flip_label_map(flip_label_map(batch)).numpy(), batch.numpy())
    with pytest.raises(ValueError, match=r"values \[19\] outside 0..18"):
        flip_label_map(np.array([[19]]))


@pytest.mark.parametrize("order", sorted(LABEL_ORDERS))
def test_part_masks_round_trip(order: str) -> None:
    rng = np.random.default_rng(5)
    label_map = rng.integers(0, 19, size=(9, 11)).astype(np.uint8)
    label_map[0, :] = 0  # some maps lack parts
    label_map[label_map == 7] = 0
    parts = label_map_to_part_masks(label_map, order)
    assert LABEL_ORDERS[order][6] not in parts  # label 7 is absent, so is its part
    assert all(mask.dtype == bool and mask.shape == (9, 11) for mask in parts.values())
    np.testing.assert_array_equal(merge_part_masks(parts, order), label_map)
    # the split is disjoint, so any other merge order gives the same map back too
    np.testing.assert_array_equal(merge_part_masks(dict(reversed(list(parts.items()))), order), label_map)
    from_tensor = label_map_to_part_masks(torch.from_numpy(label_map), order)
    assert from_tensor.keys() == parts.keys()


def test_part_masks_reject_bad_maps() -> None:
    with pytest.raises(ValueError, match="2-D"):
        label_map_to_part_masks(np.zeros((1, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"values \[-1, 25\]"):
        label_map_to_part_masks(np.array([[-1, 25]]))
    with pytest.raises(ValueError, match="integers"):
        label_map_to_part_masks(np.zeros((2, 2), dtype=np.float32))
