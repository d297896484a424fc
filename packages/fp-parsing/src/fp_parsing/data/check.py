"""Check a CelebAMask-HQ-layout directory by decoding every item of every split, as training would.

:func:`check_dataset` builds each split with :class:`CelebAMaskHQ` (in its collecting mode, so that one
missing file does not hide the next) and reads every item through ``dataset[k]``; a failing item is then
examined file by file, so every broken image and part mask is listed, not just the first of each item.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from fp_parsing.data.celebamask import SPLITS, CelebAMaskHQ, _read_image
from fp_parsing.data.files import DataFormatError
from fp_parsing.data.layout import MASK_DIR, image_path, mask_folder
from fp_parsing.data.masks import read_part_mask
from fp_parsing.data.problems import DatasetProblem, problem_from_error

__all__ = ["DatasetReport", "SplitCount", "check_dataset"]

#: what decoding bad data raises (anything else is a bug and propagates)
_DATA_ERRORS = (DataFormatError, OSError, ValueError)


@dataclass(frozen=True)
class SplitCount:
    """One split: ``listed`` images (by the text files), ``decoded`` (read without a problem)."""

    split: str
    listed: int
    decoded: int


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found: counts per split and every problem, in the order found."""

    root: Path
    splits: dict[str, SplitCount] = field(default_factory=dict)
    problems: list[DatasetProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def counts(self) -> dict[str, int]:
        """``{split: listed images}``."""
        return {name: count.listed for name, count in self.splits.items()}

    def lines(self) -> list[str]:
        """The report as text lines: one per split, then one per problem."""
        out = [
            f"{name}: {count.listed} images, {count.decoded} decoded" for name, count in self.splits.items()
        ]
        if self.problems:
            out.append(f"{len(self.problems)} problem(s):")
            out.extend(f"  {problem}" for problem in self.problems)
        return out


def _item_problems(dataset: CelebAMaskHQ, k: int) -> list[DatasetProblem]:
    """Problems of item ``k``: none when ``dataset[k]`` works and the image has part masks."""
    index = dataset.indices[k]
    files = dataset.part_mask_files(k)
    if not files:
        folder = mask_folder(dataset.root / MASK_DIR, index)
        return [
            DatasetProblem(folder, f"no part mask for image {index}.jpg (no file {index:05d}_<part>.png)")
        ]
    try:
        dataset[k]
        return []
    except _DATA_ERRORS as error:
        first = problem_from_error(error, image_path(dataset.root, index))
    found: list[DatasetProblem] = []
    try:
        _read_image(image_path(dataset.root, index))
    except _DATA_ERRORS as error:
        found.append(problem_from_error(error, image_path(dataset.root, index)))
    for path in files:
        try:
            read_part_mask(path)
        except _DATA_ERRORS as error:
            found.append(problem_from_error(error, path))
    return found or [first]


class _ItemProblems(Dataset[list[DatasetProblem]]):
    """Item ``k`` is the list of problems of ``dataset[k]`` (so DataLoader workers can check in parallel)."""

    def __init__(self, dataset: CelebAMaskHQ) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, k: int) -> list[DatasetProblem]:
        return _item_problems(self.dataset, k)


def _as_is(problems: list[DatasetProblem]) -> list[DatasetProblem]:
    return problems


def _item_results(dataset: CelebAMaskHQ, num_workers: int) -> Iterable[list[DatasetProblem]]:
    items = _ItemProblems(dataset)
    if num_workers <= 0:
        return (items[k] for k in range(len(items)))
    return DataLoader(items, batch_size=None, num_workers=num_workers, collate_fn=_as_is)


def check_dataset(
    root: str | os.PathLike[str],
    *,
    image_size: int | None = None,
    label_order: str = "zllrunning",
    splits: Sequence[str] = ("train", "val", "test"),
    progress: bool = True,
    num_workers: int = 0,
) -> DatasetReport:
    """Decode every image and part mask of every split of ``root``; return the counts and every problem.

    Items are read through :class:`CelebAMaskHQ` with ``image_size`` and ``label_order``, as training
    reads them. Problems (missing or undecodable files, mask size mismatches, images without any part
    mask, badly named mask files, unreadable text files) are collected, not raised; a problem common to
    several splits is listed once. A missing ``root`` raises ``FileNotFoundError``.

    Args:
        root: the dataset directory (CelebAMask-HQ layout).
        image_size: as for :class:`CelebAMaskHQ` (``data.image_size``).
        label_order: as for :class:`CelebAMaskHQ` (``data.label_order``).
        splits: the splits to check, among ``"train"``, ``"val"``, ``"test"``, ``"all"``.
        progress: show a tqdm bar per split.
        num_workers: DataLoader worker processes decoding in parallel (0: decode in this process).
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist or is not a folder; expected a directory in the "
            "CelebAMask-HQ layout (see docs/data.md)"
        )
    unknown = [split for split in splits if split not in SPLITS]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; expected some of: {', '.join(SPLITS)}")
    report = DatasetReport(root)
    seen: set[DatasetProblem] = set()

    def add(problems: Iterable[DatasetProblem]) -> None:
        for problem in problems:
            if problem not in seen:
                seen.add(problem)
                report.problems.append(problem)

    for split in splits:
        collected: list[DatasetProblem] = []
        try:
            dataset = CelebAMaskHQ(
                root, split=split, image_size=image_size, label_order=label_order, problems=collected
            )
        except (FileNotFoundError, DataFormatError) as error:
            add([problem_from_error(error, root)])
            report.splits[split] = SplitCount(split, 0, 0)
            continue
        add(collected)
        decoded = 0
        results = _item_results(dataset, num_workers)
        for problems in tqdm(results, total=len(dataset), desc=f"check {split}", disable=not progress):
            add(problems)
            decoded += not problems
        report.splits[split] = SplitCount(split, len(dataset) + len(dataset.excluded), decoded)
    return report
