"""The QDGS export: layout, round trip, bad manifests, threshold labels, archive export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fp_core.manifest import ManifestError
from fp_qdgs import SamplerConfig, random_sampling
from fp_qdgs.export import archive_export, export_samples, label_by_threshold, read_export, to_uint8
from fp_qdgs.toy import LinearSigmoidGenerator, SphereScorer


def _data(n: int = 5, k: int = 2, latent: int = 3, size: int = 4):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=g)
    labels = torch.tensor([0, 1, 1, 0, 1][:n])
    measures = torch.randn(n, k, generator=g)
    objectives = torch.randn(n, generator=g) * 10
    latents = torch.randn(n, latent, generator=g)
    return images, labels, measures, objectives, latents


def _export(path: Path, **kw) -> Path:
    images, labels, measures, objectives, latents = _data()
    args = {
        "label_names": ["triangle", "square"],
        "measure_names": ["colour", "shape"],
        "provenance": {"run": "test", "seed": 3},
        **kw,
    }
    return export_samples(path, images, labels, measures, objectives, latents, **args)


def test_layout_csv_and_manifest(tmp_path: Path) -> None:
    out = _export(tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == [
        "latents.npy",
        "manifest.json",
        "samples.csv",
        "square",
        "triangle",
    ]
    assert sorted(p.name for p in (out / "triangle").iterdir()) == ["000000.png", "000003.png"]
    assert sorted(p.name for p in (out / "square").iterdir()) == ["000001.png", "000002.png", "000004.png"]
    with (out / "samples.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "label", "objective", "colour", "shape"]
    assert [r[:2] for r in rows[1:3]] == [["triangle/000000.png", "0"], ["square/000001.png", "1"]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "qdgs-export"
    assert manifest["counts"] == {"triangle": 2, "square": 3}
    assert manifest["measure_names"] == ["colour", "shape"]
    assert manifest["provenance"] == {"run": "test", "seed": 3}
    assert manifest["image_size"] == [4, 4] and manifest["latent_dim"] == 3
    assert not list(tmp_path.glob(".export*"))  # no temporary left behind


def test_round_trip_is_exact(tmp_path: Path) -> None:
    images, labels, measures, objectives, latents = _data()
    back = read_export(_export(tmp_path / "e"))
    assert torch.equal(back.images, to_uint8(images))
    assert back.images.dtype == torch.uint8
    torch.testing.assert_close(back.float_images(), images, atol=0.5 / 255 + 1e-6, rtol=0)
    assert torch.equal(back.labels, labels)
    assert torch.equal(back.measures, measures.float())  # float32 bits survive the CSV
    assert torch.equal(back.objectives, objectives.float())
    assert torch.equal(back.latents, latents.float())
    assert back.label_names == ["triangle", "square"] and back.measure_names == ["colour", "shape"]
    assert back.provenance["seed"] == 3
    assert back.files[0] == "triangle/000000.png"


def test_an_image_folder_dataset_reads_the_layout(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    out = _export(tmp_path / "e")
    folder = torchvision.datasets.ImageFolder(str(out))
    assert sorted(folder.class_to_idx) == ["square", "triangle"]
    assert len(folder) == 5


def test_rewrite_replaces_the_directory(tmp_path: Path) -> None:
    out = _export(tmp_path / "e")
    (out / "stale.txt").write_text("old")
    _export(out)
    assert not (out / "stale.txt").exists()


def test_missing_image_is_named(tmp_path: Path) -> None:
    out = _export(tmp_path / "e")
    (out / "square" / "000002.png").unlink()
    with pytest.raises(ManifestError, match="000002.png is missing"):
        read_export(out)


def test_wrong_counts_kind_and_latents_are_named(tmp_path: Path) -> None:
    out = _export(tmp_path / "e")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "counts": {"triangle": 3, "square": 2}}))
    with pytest.raises(ManifestError, match="'counts'"):
        read_export(out)
    (out / "manifest.json").write_text(json.dumps({**manifest, "kind": "parsing-export"}))
    with pytest.raises(ManifestError, match="expected 'qdgs-export'"):
        read_export(out)
    (out / "manifest.json").write_text(json.dumps(manifest))
    np.save(out / "latents.npy", np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ManifestError, match="latents.npy has shape"):
        read_export(out)
    del manifest["latent_dim"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="latent_dim"):
        read_export(out)


def test_truncated_csv_is_named(tmp_path: Path) -> None:
    out = _export(tmp_path / "e")
    lines = (out / "samples.csv").read_text().splitlines()
    (out / "samples.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ManifestError, match="samples.csv has 4 rows"):
        read_export(out)


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    images, labels, measures, objectives, latents = _data()
    kw = {"label_names": ["a", "b"], "measure_names": ["m1", "m2"], "provenance": {}}
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        export_samples(tmp_path / "x", images, labels + 1, measures, objectives, latents, **kw)
    with pytest.raises(ValueError, match="measures must have 2 columns"):
        export_samples(tmp_path / "x", images, labels, measures[:, :1], objectives, latents, **kw)
    with pytest.raises(ValueError, match="values in"):
        export_samples(tmp_path / "x", images * 2, labels, measures, objectives, latents, **kw)
    with pytest.raises(ValueError, match="objectives must have shape"):
        export_samples(tmp_path / "x", images, labels, measures, objectives[:3], latents, **kw)
    with pytest.raises(ValueError, match="image_format"):
        export_samples(
            tmp_path / "x", images, labels, measures, objectives, latents, image_format="gif", **kw
        )
    assert not (tmp_path / "x").exists()


def test_label_by_threshold_exact() -> None:
    measures = torch.tensor([[0.0, -0.2], [5.0, 0.1], [1.0, 0.0], [2.0, -0.05]])
    assert label_by_threshold(measures, 1, 0.0).tolist() == [0, 1, 1, 0]  # 0.0 is not below 0.0
    assert label_by_threshold(measures, 1, 0.0, below=1).tolist() == [1, 0, 0, 1]
    assert label_by_threshold(measures.numpy(), 0, 1.5).tolist() == [0, 1, 0, 1]
    assert label_by_threshold(measures, -1, -0.1).tolist() == [0, 1, 1, 1]
    with pytest.raises(ValueError, match="index 2"):
        label_by_threshold(measures, 2, 0.0)


def test_archive_export_of_the_random_baseline(tmp_path: Path) -> None:
    gen, scorer = LinearSigmoidGenerator(latent_dim=4, size=4), SphereScorer(latent_dim=4)
    config = SamplerConfig(measure_dims=(4, 4), measure_ranges=((-4.0, 4.0), (-4.0, 4.0)), eval_batch=16)
    archive = random_sampling(gen, scorer, config, 64)
    out = archive_export(
        tmp_path / "random",
        archive,
        gen,
        label_index=1,
        threshold=0.0,
        label_names=["low", "high"],
        measure_names=["m1", "m2"],
        provenance={"arm": "random"},
        batch_size=5,
    )
    back = read_export(out)
    elites = archive.data(["solution", "measures", "index"])
    order = np.argsort(elites["index"])
    assert len(back.files) == len(archive)
    torch.testing.assert_close(back.latents, torch.as_tensor(elites["solution"][order], dtype=torch.float32))
    assert back.labels.tolist() == (elites["measures"][order][:, 1] >= 0).astype(int).tolist()
    assert torch.equal(back.images, to_uint8(gen(back.latents)))
    assert back.provenance["arm"] == "random"
    assert back.provenance["archive"]["dims"] == [4, 4]
    assert back.provenance["archive"]["metrics"]["num_elites"] == len(archive)
    drawn = read_export(
        archive_export(
            tmp_path / "drawn",
            archive,
            gen,
            label_index=0,
            threshold=0.0,
            label_names=["a", "b"],
            measure_names=["m1", "m2"],
            provenance={},
            n=3,
            seed=1,
        )
    )
    assert len(drawn.files) == 3
