"""Demographic groupings of a batch for the fairness losses.

A *grouping* splits the images of a batch into groups: a binary CelebA attribute gives two groups
(0 = absent, 1 = present), skin tone gives one group per tone. ``group_ids`` returns one column per grouping:
``LongTensor [B, A]`` with -1 where an image's group is unknown (unknown skin tone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "DEFAULT_FAIRNESS_ATTRIBUTES",
    "SKIN_TONE",
    "Grouping",
    "GroupingSpec",
    "build_groupings",
    "group_ids",
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
