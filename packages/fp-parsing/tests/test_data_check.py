"""``check_dataset`` on the tiny real-layout tree with broken files: every problem in one run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from fp_parsing.data import CelebAMaskHQ, DatasetProblem, check_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tree writer beside this file (no conftest)
from layout_tree import EXPECTED_SPLITS, write_tree  # noqa: E402

ANNO = "CelebAMask-HQ-mask-anno"
IMAGES = "CelebA-HQ-img"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "celebamask")


def _paths(problems: list[DatasetProblem]) -> list[Path]:
    return [problem.path for problem in problems]


def test_a_clean_tree_passes(root: Path) -> None:
    report = check_dataset(root, image_size=8, progress=False)
    assert report.ok and report.problems == []
    assert report.counts == {split: len(indices) for split, indices in EXPECTED_SPLITS.items()}
    assert all(count.decoded == count.listed for count in report.splits.values())


def test_every_broken_file_is_reported_in_one_run(root: Path) -> None:
    jpeg = root / IMAGES / "0.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])  # truncated JPEG (train)
    png = root / ANNO / "0" / "00002_nose.png"
    png.write_bytes(png.read_bytes()[:20] + b"garbage" * 5)  # corrupt PNG (val)
    for mask in (root / ANNO / "1").glob("02001_*.png"):
        mask.unlink()  # image 2001 (test) has no mask left
    CelebAMaskHQ(root, "train")  # construction alone does not notice

    report = check_dataset(root, progress=False)

    assert not report.ok
    assert _paths(report.problems) == [jpeg, png, root / ANNO / "1"]
    by_path = {problem.path: problem.message for problem in report.problems}
    assert "image does not decode" in by_path[jpeg]
    assert "part mask does not decode" in by_path[png]
    assert "no part mask for image 2001.jpg" in by_path[root / ANNO / "1"]
    assert {name: (c.listed, c.decoded) for name, c in report.splits.items()} == {
        "train": (3, 2),
        "val": (1, 0),
        "test": (2, 1),
    }
    assert any(str(jpeg) in line for line in report.lines())


def test_every_broken_mask_of_one_image_is_listed(root: Path) -> None:
    broken = [root / ANNO / "0" / f"00002_{part}.png" for part in ("skin", "nose")]
    for path in broken:
        path.write_bytes(b"\x89PNG broken")
    report = check_dataset(root, splits=["val"], progress=False)
    assert _paths(report.problems) == broken


def test_missing_files_do_not_hide_each_other(root: Path) -> None:
    (root / IMAGES / "0.jpg").unlink()
    (root / IMAGES / "1.jpg").unlink()
    shutil.rmtree(root / ANNO / "1")  # masks of 2000 (train) and 2001 (test)
    report = check_dataset(root, progress=False, num_workers=0)
    assert _paths(report.problems) == [
        root / IMAGES / "0.jpg",
        root / IMAGES / "1.jpg",
        root / ANNO / "1",
    ]
    assert "listed image missing" in report.problems[0].message
    assert report.splits["train"].listed == 3 and report.splits["train"].decoded == 0


def test_a_missing_text_file_is_listed_once(root: Path) -> None:
    (root / "list_eval_partition.txt").unlink()
    report = check_dataset(root, progress=False)
    assert len(report.problems) == 1
    assert "list_eval_partition.txt" in str(report.problems[0])
    assert check_dataset(root, splits=["all"], progress=False).ok


def test_workers_find_the_same_problems(root: Path) -> None:
    (root / IMAGES / "3.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    serial = check_dataset(root, progress=False)
    parallel = check_dataset(root, progress=False, num_workers=2)
    assert parallel.problems == serial.problems and _paths(serial.problems) == [root / IMAGES / "3.jpg"]


def test_a_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_dataset(tmp_path / "nowhere", progress=False)
