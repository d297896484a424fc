"""The synthetic recognition sets: readable by the fp_recognition readers, disjoint, skewed, deterministic."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fp_pipeline.synth.recognition import RecognitionSynthConfig, pair_plan, render_recognition_sets

TINY = {
    "train_identities": 8,
    "train_images_per_identity": 2,
    "eval_identities_per_group": 3,
    "eval_images_per_identity": 2,
    "pairs": 20,
    "bin_identities": 3,
    "bin_images_per_identity": 2,
    "bin_pairs": 20,
    "bin_sets": {"lfw": {}, "cfp_fp": {"max_yaw": 0.2}},
    "supersample": 1,
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("recog") / "data"
    return out, render_recognition_sets(RecognitionSynthConfig.from_dict(TINY), out, progress=False)


def test_every_set_reads_back(rendered: tuple[Path, dict]) -> None:
    from fp_recognition.data import ImageFolderDataset, RecordDataset, load_bins, load_rfw

    out, manifest = rendered
    folder, record = ImageFolderDataset(out / "train"), RecordDataset(out / "train_rec")
    assert folder.num_classes == record.num_classes == 8 and len(folder) == len(record) == 16
    image, label = record[3]
    assert image.shape == (3, 32, 32) and label == folder[3][1]
    assert manifest["counts"]["train"]["identities"] == {"light": 7, "dark": 1}  # the renderer's 7:1
    rfw = load_rfw(out / "rfw", ("light", "dark"))
    assert {g: p.num_pairs for g, p in rfw.items()} == {"light": 20, "dark": 20}
    assert rfw["dark"].issame[:1].all() and not rfw["dark"].issame[-1]  # genuine first in each fold
    bins = load_bins(out / "bins", ["lfw", "cfp_fp"])
    assert bins["lfw"].num_pairs == 20 and len(bins["cfp_fp"].images) == 40


def test_identities_are_disjoint_across_sets(rendered: tuple[Path, dict]) -> None:
    out, manifest = rendered
    with (out / "identities.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)) == manifest["identities"] == 8 + 2 * 3 + 2 * 3
    train = {r["name"] for r in rows if r["role"] == "train"}
    assert train == {p.name for p in (out / "train").iterdir()}
    rfw = {p.name for p in (out / "rfw/test/data/light").iterdir()} | {
        p.name for p in (out / "rfw/test/data/dark").iterdir()
    }
    assert not train & rfw and len(rfw) == 6


def test_same_seed_same_bytes_other_seed_other_images(rendered: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = rendered
    again = tmp_path / "again"
    render_recognition_sets(RecognitionSynthConfig.from_dict(TINY), again, progress=False)
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.name != "manifest.json":
            assert path.read_bytes() == (again / path.relative_to(out)).read_bytes(), path
    other = tmp_path / "other"
    render_recognition_sets(RecognitionSynthConfig.from_dict({**TINY, "seed": 1}), other, progress=False)
    assert (other / "bins/lfw.bin").read_bytes() != (out / "bins/lfw.bin").read_bytes()


def test_the_balanced_training_set_is_balanced_and_leaves_the_skewed_sets_alone(
    rendered: tuple[Path, dict], tmp_path: Path
) -> None:
    from fp_recognition.data import ImageFolderDataset, RecordDataset

    skewed, _ = rendered
    out = tmp_path / "data"
    manifest = render_recognition_sets(
        RecognitionSynthConfig.from_dict({**TINY, "balanced_train": True}), out, progress=False
    )
    assert manifest["counts"]["train_balanced"] == {"identities": {"light": 4, "dark": 4}, "images": 16}
    assert manifest["counts"]["train"]["identities"] == {"light": 7, "dark": 1}
    folder, record = ImageFolderDataset(out / "train_balanced"), RecordDataset(out / "train_balanced_rec")
    assert folder.num_classes == record.num_classes == 8 and len(folder) == len(record) == 16
    for name in ("train_rec/train.rec", "bins/lfw.bin", "rfw/test/txts/dark/dark_pairs.txt"):
        assert (out / name).read_bytes() == (skewed / name).read_bytes(), name
    with (out / "identities.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    balanced = {r["name"] for r in rows if r["role"] == "train_balanced"}
    assert balanced == {p.name for p in (out / "train_balanced").iterdir()} and len(balanced) == 8
    assert not balanced & {r["name"] for r in rows if r["role"] != "train_balanced"}
    assert not (skewed / "train_balanced").exists()  # off by default


def test_pair_plan_folds_and_settings_checks() -> None:
    import numpy as np

    plan = pair_plan([3, 2, 4], 40, np.random.default_rng(0))
    same = [a == b for a, _, b, _ in plan]
    assert len(plan) == 40 and same[:2] == [True, True] and same[2:4] == [False, False]
    assert all(i != j for a, i, b, j in plan if a == b)
    with pytest.raises(ValueError, match="unknown key"):
        RecognitionSynthConfig.from_dict({"identities": 3})
    with pytest.raises(ValueError, match="10 folds"):
        RecognitionSynthConfig.from_dict({"pairs": 10})
