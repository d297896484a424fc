"""Export: aligned (label map, image) pairs at one resolution, perturbed sets, the manifest and its reader,
and the CelebAMask-HQ-layout tree read back exactly through the loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from layout_tree import EXPECTED_SPLITS, write_tree  # noqa: I001  (test helper beside this file)
from PIL import Image

from fp_core.seeds import torch_generator
from fp_parsing.data import CelebAMaskHQ, label_names
from fp_parsing.evaluate import predict
from fp_parsing.export import ExportError, export_predictions, read_export
from fp_parsing.perturbations import perturb
from fp_parsing.plots import PALETTE, colorize

SPLITS = ("train", "val", "test")


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 19, 1)
    )


def _export(root: Path, out: Path, model: torch.nn.Module, image_size: int | None = None, **kwargs):
    splits = {s: CelebAMaskHQ(root, split=s, image_size=image_size) for s in SPLITS}
    manifest = export_predictions(
        model,
        splits,
        out,
        source_root=root,
        label_order="zllrunning",
        batch_size=2,
        device="cpu",
        provenance={"variant": "toy", "seed": 1},
        progress=False,
        **kwargs,
    )
    return splits, manifest


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict, torch.nn.Module]:
    tmp = tmp_path_factory.mktemp("export")
    root = write_tree(tmp / "src", image_size=32)
    model = _model()
    splits, manifest = _export(
        root, tmp / "export", model, perturbations=["blur", "darkness"], severities=[0.5, 1.0]
    )
    return root, tmp / "export", splits, manifest, model


def test_manifest_names_the_contract(exported) -> None:
    _, out, _, manifest, _ = exported
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    assert manifest["kind"] == "parsing-export" and manifest["format_version"] == 1
    assert manifest["resolution"] == 32
    assert manifest["class_names"] == label_names("zllrunning") and manifest["num_classes"] == 19
    assert manifest["palette"] == PALETTE.tolist()
    assert manifest["counts"] == {s: len(v) for s, v in EXPECTED_SPLITS.items()}
    assert manifest["splits"]["test"]["indices"] == sorted(EXPECTED_SPLITS["test"])
    assert manifest["provenance"] == {"variant": "toy", "seed": 1}
    assert sorted(manifest["perturbed"]["sets"]) == ["blur-0.5", "blur-1", "darkness-0.5", "darkness-1"]
    assert manifest["perturbed"]["split"] == "test"


def test_pairs_are_the_predictions_and_the_model_inputs(exported) -> None:
    _, out, splits, _, model = exported
    export = read_export(out)
    assert export.resolution == 32 and sorted(export.splits) == sorted(SPLITS)
    for split in SPLITS:
        by_index = {int(item["index"]): item for item in splits[split]}
        pairs = export.pairs(split)
        assert [p.index for p in pairs] == sorted(EXPECTED_SPLITS[split])
        for pair in pairs:
            label, image = pair.load()
            item = by_index[pair.index]
            assert label.shape == (32, 32) and image.shape == (32, 32, 3)
            assert np.array_equal(label, predict(model, item["image"][None])[0].numpy())
            # the image is exactly the loader's uint8 input (lossless PNG)
            assert np.array_equal(
                image, np.round(item["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            )
            colour = np.asarray(Image.open(pair.color).convert("RGB"))
            assert np.array_equal(colour, colorize(label, export.palette))


def test_perturbed_sets_hold_the_perturbed_inputs_and_their_predictions(exported) -> None:
    _, out, splits, _, model = exported
    export = read_export(out)
    test = splits["test"]
    first = torch.stack([test[k]["image"] for k in range(min(2, len(test)))])  # batch 0 (batch_size 2)
    noisy = perturb(first, "blur", 1.0, generator=torch_generator(0, "export", "blur", "1.0", 0))
    pairs = {p.index: p for p in export.perturbed_pairs("blur", 1.0)}
    assert sorted(pairs) == sorted(EXPECTED_SPLITS["test"])
    for k in range(first.shape[0]):
        label, image = pairs[test.indices[k]].load()
        assert np.array_equal(image, np.round(noisy[k].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        assert np.array_equal(label, predict(model, noisy[k : k + 1])[0].numpy())
    clean = {p.index: p.load()[1] for p in export.pairs("test")}
    assert any(not np.array_equal(clean[i], p.load()[1]) for i, p in pairs.items())
    with pytest.raises(ExportError, match="no perturbed set 'occlusion-0.5'"):
        export.perturbed_pairs("occlusion", 0.5)


def test_dataset_tree_round_trips_through_the_loader_with_copied_images(exported) -> None:
    root, out, splits, _, model = exported
    assert read_export(out).dataset_root == out / "dataset"
    for split, indices in EXPECTED_SPLITS.items():
        reread = CelebAMaskHQ(out / "dataset", split=split, label_order="zllrunning")
        assert reread.indices == sorted(indices)
        for k, index in enumerate(reread.indices):
            item = reread[k]
            expected = predict(model, splits[split][k]["image"][None])[0]
            assert torch.equal(item["mask"], expected)
            assert torch.equal(item["attributes"], splits[split][k]["attributes"])
            assert item["skin_tone"] == splits[split][k]["skin_tone"]
            copied = out / "dataset" / "CelebA-HQ-img" / f"{index}.jpg"
            source = root / "CelebA-HQ-img" / f"{index}.jpg"
            assert copied.stat().st_nlink == 1 and copied.stat().st_ino != source.stat().st_ino
            assert copied.read_bytes() == source.read_bytes()  # already 32 x 32: a byte copy


def test_another_resolution_resizes_maps_by_nearest_and_images_alike(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", image_size=32)
    model = _model()
    splits, manifest = _export(
        root, tmp_path / "export", model, image_size=16, resolution=48, severities=[0.5]
    )
    assert manifest["resolution"] == 48
    export = read_export(tmp_path / "export")
    item = splits["val"][0]
    small = predict(model, item["image"][None])[0].numpy().astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((48, 48), Image.Resampling.NEAREST))
    (pair, *_) = export.pairs("val")
    label, image = pair.load()
    assert np.array_equal(label, big) and set(np.unique(label)) <= set(np.unique(small))
    source = np.asarray(Image.open(root / "CelebA-HQ-img" / f"{pair.index}.jpg").convert("RGB"))
    assert np.array_equal(
        image, np.asarray(Image.fromarray(source).resize((48, 48), Image.Resampling.BILINEAR))
    )
    for p in export.perturbed_pairs("gaussian_noise", 0.5):
        assert [a.shape for a in p.load()] == [(48, 48), (48, 48, 3)]
    reread = CelebAMaskHQ(tmp_path / "export" / "dataset", split="val")
    assert tuple(reread[0]["mask"].shape) == (48, 48) and tuple(reread[0]["image"].shape) == (3, 48, 48)


def test_the_reader_names_the_directory_and_the_key(tmp_path: Path, exported) -> None:
    _, out, _, manifest, _ = exported
    with pytest.raises(ExportError, match=f"{tmp_path}: no manifest.json"):
        read_export(tmp_path)
    cases = [
        ({**manifest, "kind": "gan-samples"}, "'kind' is 'gan-samples'"),
        ({**manifest, "format_version": 2}, "'format_version' is 2"),
        ({k: v for k, v in manifest.items() if k != "palette"}, "'palette' is missing"),
        ({**manifest, "splits": {"test": {"count": 5, "indices": [1]}}}, r"'splits.test' lists 1 indices"),
    ]
    for k, (bad, match) in enumerate(cases):
        folder = tmp_path / f"bad{k}"
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(bad))
        with pytest.raises(ExportError, match=match) as error:
            read_export(folder)
        assert str(folder) in str(error.value)
    folder = tmp_path / "bad_files"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="holds 0 PNGs"):
        read_export(folder)
    assert read_export(folder, check_files=False).counts == manifest["counts"]


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

    with pytest.raises(RuntimeError, match="boom"):
        export_predictions(
            Broken(),
            {"train": CelebAMaskHQ(root, split="train")},
            out,
            source_root=root,
            label_order="zllrunning",
            device="cpu",
            progress=False,
        )
    assert json.loads((out / "manifest.json").read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "src"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_export_writes_the_same_pairs(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", image_size=32)
    splits = {"test": CelebAMaskHQ(root, split="test")}
    kwargs = {"source_root": root, "label_order": "zllrunning", "progress": False, "with_dataset": False}
    export_predictions(_model(), splits, tmp_path / "cpu", device="cpu", **kwargs)
    model = _model()
    export_predictions(model, splits, tmp_path / "cuda", device="cuda", **kwargs)
    assert next(model.parameters()).device.type == "cuda"
    cpu, cuda = read_export(tmp_path / "cpu"), read_export(tmp_path / "cuda")
    for a, b in zip(cpu.pairs("test"), cuda.pairs("test"), strict=True):
        (label_a, image_a), (label_b, image_b) = a.load(), b.load()
        assert np.array_equal(image_a, image_b) and (label_a != label_b).sum() <= 2
