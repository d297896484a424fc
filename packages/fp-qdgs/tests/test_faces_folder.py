"""The identity-folder export: layout, manifest, chunked sources, the alignment hook and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fp_core.manifest import ManifestError
from fp_qdgs.faces.folder import read_identity_folder, write_identity_folder


def _write(tmp_path, **kwargs):
    images = np.full((5, 2, 8, 8, 3), 128, dtype=np.uint8)
    args = {
        "measures": np.arange(10.0).reshape(5, 2),
        "provenance": {"run": "t"},
        "image_size": 8,
        "measure_names": ["yaw", "smile"],
    }
    args.update(kwargs)
    return write_identity_folder(images, np.array([1, 0, 1, 2, 0]), tmp_path / "ids", **args)


def test_layout_and_manifest(tmp_path) -> None:
    out = _write(tmp_path)
    folder = read_identity_folder(out)
    assert folder.names == ["id-00000", "id-00001", "id-00002"]
    assert [len(f) for f in folder.files] == [4, 4, 2]
    assert folder.files[0] == [f"id-00000/00000{i}.jpg" for i in range(4)]
    m = folder.manifest
    assert m["kind"] == "qdgs-identities" and m["num_identities"] == 3 and m["num_solutions"] == 5
    assert m["variants_per_solution"] == 2 and m["num_images"] == 10 and m["image_size"] == [8, 8]
    assert m["identities"][1]["solutions"] == [0, 2]
    assert m["identities"][1]["measures"] == [[0.0, 1.0], [4.0, 5.0]]
    assert m["provenance"] == {"run": "t"} and m["aligned"] is False
    np.testing.assert_array_equal(folder.labels, [0] * 4 + [1] * 4 + [2] * 2)


def test_resize_and_align_hook(tmp_path) -> None:
    out = _write(tmp_path, image_size=4)
    assert read_identity_folder(out).manifest["image_size"] == [4, 4]
    calls = []

    def align(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return batch[:, 2:6, 2:6]

    out = _write(tmp_path, image_size=4, align=align, chunk_size=2)
    assert calls == [(4, 8, 8, 3), (4, 8, 8, 3), (2, 8, 8, 3)]
    assert read_identity_folder(out).manifest["aligned"] is True
    with pytest.raises(ValueError, match="align must return"):
        _write(tmp_path, image_size=5, align=align)


def test_bad_inputs(tmp_path) -> None:
    images = np.zeros((2, 1, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="contiguous"):
        write_identity_folder(
            images, np.array([0, 2]), tmp_path / "a", measures=np.zeros((2, 2)), provenance={}, image_size=4
        )
    with pytest.raises(ValueError, match="uint8"):
        write_identity_folder(
            images.astype(np.float32),
            np.array([0, 1]),
            tmp_path / "a",
            measures=np.zeros((2, 2)),
            provenance={},
            image_size=4,
        )
    assert not (tmp_path / "a").exists()


def test_read_errors_name_the_file(tmp_path) -> None:
    out = _write(tmp_path)
    (out / "id-00001" / "000003.jpg").unlink()
    with pytest.raises(ManifestError, match="id-00001"):
        read_identity_folder(out)
    out = _write(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["num_images"] = 11
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="num_images"):
        read_identity_folder(out)
    with pytest.raises(ManifestError, match="manifest.json"):
        read_identity_folder(tmp_path)
