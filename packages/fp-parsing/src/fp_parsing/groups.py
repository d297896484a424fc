"""Demographic groupings of a batch for the fairness losses.

A *grouping* splits the images of a batch into groups: a binary CelebA attribute gives two groups
(0 = absent, 1 = present), skin tone gives one group per tone. ``group_ids`` returns one column per grouping:
``LongTensor [B, A]`` with -1 where an image's group is unknown (unknown skin tone).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from fp_parsing.data.layout import SKIN_TONE_FILE

__all__ = [
    "DEFAULT_FAIRNESS_ATTRIBUTES",
    "SKIN_TONE",
    "Grouping",
    "GroupingSpec",
    "GroupingUnavailableWarning",
    "GroupedDataset",
    "build_groupings",
    "group_ids",
    "groupings_for",
]

# The paper's high-disparity attributes could not be confirmed from its text; these are the attributes the
# project uses (sex, age, pale skin, eyeglasses, hats), each split present / absent.
DEFAULT_FAIRNESS_ATTRIBUTES = ("Male", "Young", "Pale_Skin", "Eyeglasses", "Wearing_Hat")
SKIN_TONE = "skin_tone"


@dataclass(frozen=True)
class Grouping:
    """One grouping: its ``name`` (an attribute or ``"skin_tone"``), the column of ``attributes`` it reads
    (``None`` for skin tone) and the names of its groups (group id ``g`` is ``group_names[g]``)."""

    name: str
    column: int | None
    group_names: tuple[str, ...]

    @property
    def num_groups(self) -> int:
        """Number of groups (2 for an attribute)."""
        return len(self.group_names)

    def label(self, group: int) -> str:
        """``"<name>=<group name>"``, e.g. ``"Male=present"``."""
        return f"{self.name}={self.group_names[group]}"


@dataclass(frozen=True)
class GroupingSpec:
    """The groupings in column order of :func:`group_ids` and the number of attribute columns expected."""

    groupings: tuple[Grouping, ...]
    num_attributes: int

    @property
    def names(self) -> list[str]:
        """Grouping names, one per column of :func:`group_ids`."""
        return [g.name for g in self.groupings]

    @property
    def num_groups(self) -> list[int]:
        """Groups per grouping, one per column of :func:`group_ids`."""
        return [g.num_groups for g in self.groupings]

    @property
    def group_names(self) -> list[list[str]]:
        """The groups' names per grouping."""
        return [list(g.group_names) for g in self.groupings]

    def __len__(self) -> int:
        return len(self.groupings)

    def describe(self) -> dict[str, list[str]]:
        """``{grouping name: its group names}`` of the groupings in use, in column order (for run params)."""
        return {g.name: list(g.group_names) for g in self.groupings}


class GroupingUnavailableWarning(UserWarning):
    """A requested grouping cannot be formed from the dataset (e.g. skin tone without ``fp_skin_tone.txt``)."""


class GroupedDataset(Protocol):
    """What :func:`groupings_for` reads of a dataset (:class:`fp_parsing.data.CelebAMaskHQ` has it)."""

    attribute_names: Sequence[str]
    skin_tone_groups: Sequence[str] | None


def build_groupings(
    attribute_names: Sequence[str],
    attributes: Sequence[str] = DEFAULT_FAIRNESS_ATTRIBUTES,
    include_skin_tone: bool = True,
    num_skin_tone_groups: int = 0,
    skin_tone_names: Sequence[str] | None = None,
) -> GroupingSpec:
    """The groupings for ``attributes`` (names among ``attribute_names``, the dataset's 40 CelebA columns)
    plus, with ``include_skin_tone``, a skin-tone grouping of ``num_skin_tone_groups`` groups (named
    ``skin_tone_names`` or ``tone_0``, ``tone_1``, ...). ``"skin_tone"`` in ``attributes`` is accepted as
    another way to ask for the skin-tone grouping.
    """
    names = list(attribute_names)
    groupings: list[Grouping] = []
    wants_skin_tone = include_skin_tone
    seen: set[str] = set()
    for attribute in attributes:
        if attribute == SKIN_TONE:
            wants_skin_tone = True
            continue
        if attribute not in names:
            raise ValueError(f"unknown fairness attribute {attribute!r}; expected one of {names}")
        if attribute in seen:
            raise ValueError(f"fairness attribute {attribute!r} is listed twice")
        seen.add(attribute)
        groupings.append(Grouping(attribute, names.index(attribute), ("absent", "present")))
    if wants_skin_tone:
        if skin_tone_names is not None:
            tone_names = tuple(str(n) for n in skin_tone_names)
            if num_skin_tone_groups not in (0, len(tone_names)):
                raise ValueError(
                    f"num_skin_tone_groups={num_skin_tone_groups} disagrees with {len(tone_names)} skin_tone_names"
                )
        else:
            tone_names = tuple(f"tone_{i}" for i in range(num_skin_tone_groups))
        if len(tone_names) < 1:
            raise ValueError("the skin-tone grouping needs num_skin_tone_groups >= 1 (or skin_tone_names)")
        groupings.append(Grouping(SKIN_TONE, None, tone_names))
    return GroupingSpec(tuple(groupings), len(names))


def group_ids(attributes: torch.Tensor, skin_tone: torch.Tensor | None, spec: GroupingSpec) -> torch.Tensor:
    """Group of every image in every grouping: ``LongTensor [B, A]`` (``A = len(spec)``), -1 = unknown.

    Args:
        attributes: ``[B, num_attributes]`` with 0/1 (or -1/+1, or bool) values; ``> 0`` means present.
        skin_tone: ``[B]`` integer tone ids, -1 (any negative) for unknown; may be ``None`` when ``spec``
            has no skin-tone grouping.
        spec: from :func:`build_groupings`.
    """
    if (
        not isinstance(attributes, torch.Tensor)
        or attributes.dim() != 2
        or attributes.shape[1] != spec.num_attributes
    ):
        shape = tuple(attributes.shape) if isinstance(attributes, torch.Tensor) else type(attributes).__name__
        raise ValueError(f"attributes must be a tensor [B, {spec.num_attributes}], got {shape}")
    batch = attributes.shape[0]
    columns: list[torch.Tensor] = []
    for grouping in spec.groupings:
        if grouping.column is not None:
            columns.append((attributes[:, grouping.column] > 0).long())
            continue
        if not isinstance(skin_tone, torch.Tensor) or skin_tone.shape != (batch,):
            shape = (
                tuple(skin_tone.shape) if isinstance(skin_tone, torch.Tensor) else type(skin_tone).__name__
            )
            raise ValueError(f"skin_tone must be an integer tensor [B] with B={batch}, got {shape}")
        tones = skin_tone.to(device=attributes.device, dtype=torch.long)
        if batch and int(tones.max()) >= grouping.num_groups:
            raise ValueError(
                f"skin_tone holds {int(tones.max())}; expected ids < {grouping.num_groups} or -1 for unknown"
            )
        columns.append(tones.clamp_min(-1))
    if not columns:
        return torch.empty((batch, 0), dtype=torch.long, device=attributes.device)
    return torch.stack(columns, dim=1)


def _dataset_root(dataset: Any) -> str:
    root = getattr(dataset, "root", None)
    return str(root) if root is not None else f"<{type(dataset).__name__} without a root>"


def groupings_for(dataset: GroupedDataset, attributes: Sequence[str], *, skin_tone: bool) -> GroupingSpec:
    """The groupings of ``dataset`` for the fairness losses and metrics.

    ``attributes`` are names among ``dataset.attribute_names`` (``"skin_tone"`` among them is the same as
    ``skin_tone=True``). The skin-tone grouping uses ``dataset.skin_tone_groups``; when it was asked for and
    the dataset has none (the real CelebAMask-HQ has no ``fp_skin_tone.txt``), it is left out with a
    :class:`GroupingUnavailableWarning` naming the dataset root and the missing file.

    Raises:
        ValueError: an attribute the dataset does not have (the message lists the valid names).
    """
    valid = [str(name) for name in dataset.attribute_names]
    wanted = [str(name) for name in attributes]
    unknown = [name for name in wanted if name != SKIN_TONE and name not in valid]
    if unknown:
        raise ValueError(
            f"unknown fairness attribute(s) {unknown} for dataset {_dataset_root(dataset)}; valid names: "
            f"{', '.join(valid)} (and {SKIN_TONE!r})"
        )
    wants_skin_tone = skin_tone or SKIN_TONE in wanted
    tone_names = list(dataset.skin_tone_groups or [])
    if wants_skin_tone and not tone_names:
        root = getattr(dataset, "root", None)
        missing = Path(root) / SKIN_TONE_FILE if root is not None else Path(SKIN_TONE_FILE)
        warnings.warn(
            f"skin-tone grouping requested but dataset {_dataset_root(dataset)} has no skin-tone labels "
            f"(missing {missing}); training and evaluating without it",
            GroupingUnavailableWarning,
            stacklevel=2,
        )
        wants_skin_tone = False
    return build_groupings(
        valid,
        [name for name in wanted if name != SKIN_TONE],
        include_skin_tone=wants_skin_tone,
        skin_tone_names=tone_names if wants_skin_tone else None,
    )
