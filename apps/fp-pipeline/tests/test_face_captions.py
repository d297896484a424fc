"""The face captions from hand-made attribute rows: exact texts, labels, and the real-data case (no skin tone)."""

from __future__ import annotations

import pytest

from fp_pipeline.stages.face_captions import (
    FACE_PROMPT_PAIRS,
    FaceTraits,
    captions_for,
    face_traits,
    full_caption,
    trait_caption,
    trait_labels,
)

NAMES = ["Male", "Young", "Straight_Hair", "Wavy_Hair", "Bald", "Smiling"]


def _row(**on: int) -> dict[str, int]:
    return {name: on.get(name, -1) for name in NAMES}


def test_a_young_woman_with_wavy_hair_and_dark_skin() -> None:
    traits = face_traits(_row(Young=1, Wavy_Hair=1), "dark")
    assert traits == FaceTraits(skin="dark", feminine=True, long_hair=True, young=True)
    assert trait_labels(traits) == {"skin": 1, "gender": 1, "hair": 1, "age": 0}
    assert full_caption(traits, 0) == "A feminine person with dark skin and long hair, in their 20s"
    assert full_caption(traits, 1) == "A feminine person in their 20s with dark skin and long hair"
    assert (
        full_caption(traits, 2, "A photo of ")
        == "A photo of a feminine person with long hair and dark skin, in their 20s"
    )
    # each trait caption is exactly its prompt (no opener) or the prompt after an opener
    for trait, prompts in FACE_PROMPT_PAIRS.items():
        label = trait_labels(traits)[trait]
        assert trait_caption(traits, trait) == prompts[label]
    assert trait_caption(traits, "skin", "A portrait of ") == "A portrait of a person with dark skin"


def test_an_older_bald_man_with_light_skin_has_short_hair() -> None:
    # Bald wins over Straight_Hair (a fringe on a bald head is not long hair)
    traits = face_traits(_row(Male=1, Bald=1, Straight_Hair=1), "light")
    assert traits == FaceTraits(skin="light", feminine=False, long_hair=False, young=False)
    assert trait_labels(traits) == {"skin": 0, "gender": 0, "hair": 0, "age": 1}
    assert full_caption(traits, 0) == "A masculine person with light skin and short hair, in their 50s"
    assert trait_caption(traits, "age") == "A person in their 50s"


def test_real_celebamask_rows_have_no_skin_clause_and_no_skin_label() -> None:
    traits = face_traits({**_row(Young=1, Straight_Hair=1), "Male": 0})  # 0/1 values are accepted too
    assert traits.skin is None and traits.feminine and traits.long_hair
    assert trait_labels(traits)["skin"] is None
    assert trait_caption(traits, "skin") is None
    assert full_caption(traits, 0) == "A feminine person with long hair, in their 20s"
    captions = captions_for(traits, seed=0, index=0)
    assert len(captions) == 4 and not any("skin" in c for c in captions)


def test_captions_are_seeded_and_cover_every_prompt_family() -> None:
    traits = face_traits(_row(Male=1, Young=1), "dark")
    first = captions_for(traits, seed=3, index=7)
    assert first == captions_for(traits, seed=3, index=7)
    assert len(first) == 5
    for caption, prompt in zip(first[1:], ["dark skin", "masculine person", "short hair", "in their 20s"]):
        assert caption.endswith(prompt)
    # across images the templates and openers vary
    variants = {tuple(captions_for(traits, seed=3, index=i)) for i in range(30)}
    assert len(variants) > 10


def test_missing_attributes_and_bad_traits_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="Wavy_Hair"):
        face_traits({"Male": 1, "Young": 1, "Straight_Hair": 1, "Bald": -1})
    with pytest.raises(ValueError, match="trait must be one of"):
        trait_caption(FaceTraits("dark", True, True, True), "eyes")
    with pytest.raises(ValueError, match="template"):
        full_caption(FaceTraits("dark", True, True, True), 5)
