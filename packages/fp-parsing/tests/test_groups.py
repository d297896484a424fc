"""Demographic groupings: exact group ids on a hand-made batch, names, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from fp_parsing.data import CelebAMaskHQ
from fp_parsing.groups import (
    DEFAULT_FAIRNESS_ATTRIBUTES,
    SKIN_TONE,
    GroupingUnavailableWarning,
    build_groupings,
    group_ids,
    groupings_for,
)

NAMES = ["Bald", "Eyeglasses", "Male", "Pale_Skin", "Wearing_Hat", "Young"]


def test_group_ids_on_a_hand_made_batch() -> None:
    spec = build_groupings(
        NAMES, ["Male", "Young", "Eyeglasses"], include_skin_tone=True, num_skin_tone_groups=3
    )
    attributes = torch.tensor(
        [
            # Bald Eyeg Male Pale Hat Young
            [0, 1, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 1],
            [1, 0, 1, 0, 1, 1],
            [0, 1, 0, 0, 0, 0],
        ]
    )
    skin_tone = torch.tensor([2, -1, 0, 1])
    ids = group_ids(attributes, skin_tone, spec)
    assert ids.dtype == torch.long
    expected = torch.tensor(
        [
            # Male Young Eyeglasses skin_tone
            [1, 0, 1, 2],
            [0, 1, 0, -1],
            [1, 1, 0, 0],
            [0, 0, 1, 1],
        ]
    )
    assert torch.equal(ids, expected)
    assert spec.names == ["Male", "Young", "Eyeglasses", SKIN_TONE]
    assert spec.num_groups == [2, 2, 2, 3]
    assert spec.group_names[0] == ["absent", "present"] and spec.group_names[3] == [
        "tone_0",
        "tone_1",
        "tone_2",
    ]
    assert spec.groupings[0].label(1) == "Male=present"


def test_plus_minus_one_and_bool_attributes_give_the_same_groups() -> None:
    spec = build_groupings(NAMES, ["Male", "Young"], include_skin_tone=False)
    zero_one = torch.tensor([[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1]])
    plus_minus = zero_one * 2 - 1
    assert torch.equal(group_ids(zero_one, None, spec), group_ids(plus_minus, None, spec))
    assert torch.equal(group_ids(zero_one, None, spec), group_ids(zero_one.bool(), None, spec))
    assert torch.equal(group_ids(zero_one, None, spec), torch.tensor([[1, 0], [0, 1]]))


def test_skin_tone_by_name_and_in_the_attribute_list() -> None:
    spec = build_groupings(
        NAMES, ["Male", SKIN_TONE], include_skin_tone=False, skin_tone_names=["light", "dark"]
    )
    assert spec.names == ["Male", SKIN_TONE] and spec.group_names[1] == ["light", "dark"]
    ids = group_ids(torch.zeros(2, 6, dtype=torch.long), torch.tensor([1, -3]), spec)
    assert torch.equal(ids[:, 1], torch.tensor([1, -1]))


def test_no_groupings_gives_an_empty_column_set() -> None:
    spec = build_groupings(NAMES, [], include_skin_tone=False)
    assert group_ids(torch.zeros(3, 6), None, spec).shape == (3, 0)


def test_default_attributes_exist_in_celeba() -> None:
    celeba = [
        "5_o_Clock_Shadow",
        "Arched_Eyebrows",
        "Attractive",
        "Bags_Under_Eyes",
        "Bald",
        "Bangs",
        "Big_Lips",
        "Big_Nose",
        "Black_Hair",
        "Blond_Hair",
        "Blurry",
        "Brown_Hair",
        "Bushy_Eyebrows",
        "Chubby",
        "Double_Chin",
        "Eyeglasses",
        "Goatee",
        "Gray_Hair",
        "Heavy_Makeup",
        "High_Cheekbones",
        "Male",
        "Mouth_Slightly_Open",
        "Mustache",
        "Narrow_Eyes",
        "No_Beard",
        "Oval_Face",
        "Pale_Skin",
        "Pointy_Nose",
        "Receding_Hairline",
        "Rosy_Cheeks",
        "Sideburns",
        "Smiling",
        "Straight_Hair",
        "Wavy_Hair",
        "Wearing_Earrings",
        "Wearing_Hat",
        "Wearing_Lipstick",
        "Wearing_Necklace",
        "Wearing_Necktie",
        "Young",
    ]
    spec = build_groupings(celeba, include_skin_tone=True, num_skin_tone_groups=4)
    assert spec.names == [*DEFAULT_FAIRNESS_ATTRIBUTES, SKIN_TONE]
    assert [g.column for g in spec.groupings[:-1]] == [celeba.index(a) for a in DEFAULT_FAIRNESS_ATTRIBUTES]


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown fairness attribute 'Gender'"):
        build_groupings(NAMES, ["Gender"])
    with pytest.raises(ValueError, match="listed twice"):
        build_groupings(NAMES, ["Male", "Male"], include_skin_tone=False)
    with pytest.raises(ValueError, match="num_skin_tone_groups >= 1"):
        build_groupings(NAMES, ["Male"], include_skin_tone=True, num_skin_tone_groups=0)
    spec = build_groupings(NAMES, ["Male"], include_skin_tone=True, num_skin_tone_groups=2)
    with pytest.raises(ValueError, match=r"attributes must be a tensor \[B, 6\]"):
        group_ids(torch.zeros(2, 40), torch.zeros(2), spec)
    with pytest.raises(ValueError, match=r"skin_tone must be an integer tensor \[B\] with B=2"):
        group_ids(torch.zeros(2, 6), None, spec)
    with pytest.raises(ValueError, match="skin_tone holds 5; expected ids < 2"):
        group_ids(torch.zeros(2, 6), torch.tensor([0, 5]), spec)


# --- groupings_for: the groupings a dataset can give ---------------------------------------------------


class _Dataset:
    """The two attributes ``groupings_for`` reads, plus a root like CelebAMaskHQ's."""

    def __init__(self, tones: list[str] | None, root: str = "/data/celebamask") -> None:
        self.attribute_names = NAMES
        self.skin_tone_groups = tones
        self.root = root


def test_groupings_for_a_dataset_with_skin_tones() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = groupings_for(_Dataset(["light", "dark"]), ["Male", "Young"], skin_tone=True)
    assert spec.names == ["Male", "Young", SKIN_TONE]
    assert spec.describe() == {
        "Male": ["absent", "present"],
        "Young": ["absent", "present"],
        SKIN_TONE: ["light", "dark"],
    }


def test_skin_tone_requested_without_labels_warns_and_is_left_out() -> None:
    with pytest.warns(GroupingUnavailableWarning) as caught:
        spec = groupings_for(_Dataset(None), ["Male"], skin_tone=True)
    message = str(caught[0].message)
    assert "/data/celebamask" in message and "/data/celebamask/fp_skin_tone.txt" in message
    assert issubclass(GroupingUnavailableWarning, UserWarning)
    assert spec.describe() == {"Male": ["absent", "present"]}
    with pytest.warns(GroupingUnavailableWarning):  # asked for by name in the list: the same
        assert groupings_for(_Dataset([]), ["Male", SKIN_TONE], skin_tone=False).names == ["Male"]


def test_skin_tone_not_requested_is_silent() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = groupings_for(_Dataset(["light", "dark"]), ["Eyeglasses"], skin_tone=False)
    assert spec.describe() == {"Eyeglasses": ["absent", "present"]}
    assert groupings_for(_Dataset(None), [], skin_tone=False).describe() == {}


def test_groupings_for_an_unknown_attribute_lists_the_valid_names() -> None:
    with pytest.raises(ValueError) as caught:
        groupings_for(_Dataset(None), ["Male", "Beard"], skin_tone=False)
    message = str(caught.value)
    assert "'Beard'" in message and "/data/celebamask" in message
    assert all(name in message for name in NAMES)


def test_groupings_for_the_loader_without_a_skin_tone_file(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tree writer beside this file
    from layout_tree import write_tree

    real_like = CelebAMaskHQ(write_tree(tmp_path / "real", with_skin_tone=False), "all")
    with pytest.warns(GroupingUnavailableWarning, match=str(tmp_path / "real" / "fp_skin_tone.txt")):
        spec = groupings_for(real_like, ["Male", "Young"], skin_tone=True)
    assert spec.names == ["Male", "Young"] and spec.num_attributes == 40
    synthetic_like = CelebAMaskHQ(write_tree(tmp_path / "synth"), "all")
    assert groupings_for(synthetic_like, ["Male"], skin_tone=True).describe()[SKIN_TONE] == ["light", "dark"]
