"""Shapes sets on disk: exact round trip, layout, and clear errors for damaged sets."""

from __future__ import annotations

import pytest
import torch

from fp_core.manifest import ManifestError, read_manifest
from fp_qdgs.shapes.folder import read_shapes_set, write_shapes_set
from fp_qdgs.shapes.render import make_shapes


def test_round_trip_is_exact_on_8_bit_images(tmp_path):
    data = make_shapes(12, 0.9, seed=3)
    write_shapes_set(tmp_path / "set", data, extra={"bias": 0.9, "seed": 3})
    back = read_shapes_set(tmp_path / "set")
    expected = (data.images * 255).round() / 255
    assert torch.equal(back.images, expected)
    assert torch.equal(back.shape, data.shape) and torch.equal(back.colour, data.colour)
    assert back.captions == data.captions
    manifest = read_manifest(tmp_path / "set", "shapes-set")
    assert manifest["size"] == 12 and manifest["params"] == {"bias": 0.9, "seed": 3}
    assert sum(manifest["groups"].values()) == 12
    # ImageFolder layout: each image in the folder of its shape
    assert len(list((tmp_path / "set" / "triangle").glob("*.png"))) == int((data.shape == 0).sum())
    assert len(list((tmp_path / "set" / "square").glob("*.png"))) == int((data.shape == 1).sum())


def test_missing_image_is_named(tmp_path):
    write_shapes_set(tmp_path / "set", make_shapes(4, 0.5, seed=0))
    victim = sorted((tmp_path / "set").rglob("*.png"))[0]
    victim.unlink()
    with pytest.raises(ManifestError, match=victim.name):
        read_shapes_set(tmp_path / "set")


def test_wrong_row_count_and_label_are_errors(tmp_path):
    write_shapes_set(tmp_path / "set", make_shapes(4, 0.5, seed=0))
    table = tmp_path / "set" / "labels.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ManifestError, match="3 rows but the manifest says size 4"):
        read_shapes_set(tmp_path / "set")
    table.write_text("\n".join(lines).replace(",red,", ",green,", 1) + "\n")
    with pytest.raises(ManifestError, match="green"):
        read_shapes_set(tmp_path / "set")


def test_not_a_set_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="manifest.json"):
        read_shapes_set(tmp_path)
