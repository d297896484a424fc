"""The QDGS faces hand-off: fp_qdgs writes an identity folder that fp_recognition's ImageFolderDataset reads."""

from __future__ import annotations

import numpy as np
import torch

from fp_qdgs.faces.folder import read_identity_folder, write_identity_folder
from fp_recognition.data.folder import ImageFolderDataset


def test_identity_folder_reads_back_in_recognition(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n, v, size = 7, 9, 16
    identities = np.array([0, 2, 1, 0, 3, 2, 1])
    # a flat colour per solution so every image is recognisable after JPEG
    colours = rng.integers(30, 225, size=(n, 3), dtype=np.uint8)
    images = np.broadcast_to(colours[:, None, None, None, :], (n, v, 24, 24, 3)).copy()
    out = write_identity_folder(
        lambda a, b: images[a:b],
        identities,
        tmp_path / "ids",
        measures=rng.normal(size=(n, 2)),
        provenance={"test": True},
        image_size=size,
        chunk_size=3,
    )
    folder = read_identity_folder(out)
    dataset = ImageFolderDataset(out, normalise=False)
    assert dataset.num_classes == 4 and dataset.identities == folder.names
    assert len(dataset) == n * v == folder.manifest["num_images"]
    np.testing.assert_array_equal([label for _, label in dataset.samples], folder.labels)
    # sample j of identity k is solution (the j // v-th of k): the colour says which
    for index in range(0, len(dataset), 5):
        x, label = dataset[index]
        assert x.shape == (3, size, size)
        path, _ = dataset.samples[index]
        within = int(path.stem)
        solution = np.flatnonzero(identities == label)[within // v]
        torch.testing.assert_close(
            x.mean(dim=(1, 2)),
            torch.tensor(colours[solution] / 255.0, dtype=torch.float32),
            atol=0.03,
            rtol=0,
        )
