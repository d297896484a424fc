"""One-hot maps, the edge channel and the label checks on hand-made maps."""

from __future__ import annotations

import pytest
import torch

from fp_diffusion.gan import LabelRangeError, edge_map, encode_input, one_hot


def test_one_hot_on_a_hand_made_map() -> None:
    labels = torch.tensor([[[0, 2], [1, 2]]])
    encoded = one_hot(labels, 3)
    expected = torch.tensor([[[[1, 0], [0, 0]], [[0, 0], [1, 0]], [[0, 1], [0, 1]]]], dtype=torch.float32)
    assert torch.equal(encoded, expected)
    assert torch.equal(encoded.sum(1), torch.ones(1, 2, 2))


def test_edges_mark_both_sides_of_every_4_neighbour_change() -> None:
    ids = torch.zeros(1, 5, 5, dtype=torch.long)
    ids[0, 2, 2] = 7  # one pixel differs: it and its 4 neighbours are edges, diagonals are not
    expected = torch.zeros(1, 1, 5, 5)
    for y, x in [(2, 2), (1, 2), (3, 2), (2, 1), (2, 3)]:
        expected[0, 0, y, x] = 1
    assert torch.equal(edge_map(ids), expected)
    halves = torch.tensor([[[1, 1, 2, 2]] * 3])  # a vertical boundary between columns 1 and 2
    assert torch.equal(edge_map(halves)[0, 0], torch.tensor([[0.0, 1, 1, 0]] * 3))
    assert edge_map(torch.full((2, 4, 4), 3)).sum() == 0


def test_encode_input_uses_instances_else_labels_for_edges() -> None:
    labels = torch.tensor([[[0, 0, 1, 1]] * 2])
    plain = encode_input(labels, 2)
    assert plain.shape == (1, 2, 2, 4)
    from_labels = encode_input(labels, 2, edge_channel=True)
    assert torch.equal(from_labels[0, 2], torch.tensor([[0.0, 1, 1, 0]] * 2))
    instances = torch.tensor([[[5, 6, 6, 6]] * 2])  # two instances inside class 0
    from_instances = encode_input(labels, 2, edge_channel=True, instances=instances)
    assert torch.equal(from_instances[0, 2], torch.tensor([[1.0, 1, 0, 0]] * 2))
    assert torch.equal(from_instances[:, :2], plain)


def test_out_of_range_labels_are_clear_errors() -> None:
    with pytest.raises(LabelRangeError, match=r"face_7\.png: class id 19 is outside 0\.\.18"):
        one_hot(torch.tensor([[[0, 19]]]), 19, where="face_7.png")
    with pytest.raises(LabelRangeError, match="class id -1"):
        one_hot(torch.tensor([[[-1, 0]]]), 19)
    with pytest.raises(TypeError, match="integer class ids"):
        one_hot(torch.zeros(1, 2, 2), 19)
