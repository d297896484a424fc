"""Export: predicted label maps written in three forms, read back exactly through the loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from layout_tree import EXPECTED_SPLITS, write_tree  # noqa: I001  (test helper beside this file)
from PIL import Image

from fp_parsing.data import CelebAMaskHQ
from fp_parsing.evaluate import predict
from fp_parsing.export import export_predictions
from fp_parsing.plots import colorize


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 19, 1)
    )
    return model


def test_export_round_trips_through_the_loader(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", image_size=32)
    splits = {s: CelebAMaskHQ(root, split=s, label_order="zllrunning") for s in ("train", "val", "test")}
    model = _model()
    out = tmp_path / "export"
    manifest = export_predictions(
        model,
        splits,
        out,
        source_root=root,
        label_order="zllrunning",
        batch_size=2,
        provenance={"variant": "toy"},
        progress=False,
    )
    assert manifest["counts"] == {s: len(v) for s, v in EXPECTED_SPLITS.items()}
    assert json.loads((out / "manifest.json").read_text())["variant"] == "toy"

    for split, indices in EXPECTED_SPLITS.items():
        reread = CelebAMaskHQ(out / "dataset", split=split, label_order="zllrunning")
        assert reread.indices == sorted(indices)
        for k, index in enumerate(reread.indices):
            item = reread[k]
            expected = predict(model, splits[split][k]["image"][None])[0]
            assert torch.equal(item["mask"], expected)
            label_png = np.asarray(Image.open(out / "labels" / f"{index}.png"))
            assert np.array_equal(label_png, expected.numpy())
            color_png = np.asarray(Image.open(out / "color" / f"{index}.png").convert("RGB"))
            assert np.array_equal(color_png, colorize(expected))
            # the side files travel with the tree
            assert torch.equal(item["attributes"], splits[split][k]["attributes"])
            assert item["skin_tone"] == splits[split][k]["skin_tone"]


def test_a_failed_export_keeps_the_previous_one(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", image_size=32)
    out = tmp_path / "export"
    out.mkdir()
    (out / "manifest.json").write_text('{"old": true}')

    class Broken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    try:
        export_predictions(
            Broken(),
            {"train": CelebAMaskHQ(root, split="train")},
            out,
            source_root=root,
            label_order="zllrunning",
            progress=False,
        )
    except RuntimeError:
        pass
    assert json.loads((out / "manifest.json").read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "src"]
