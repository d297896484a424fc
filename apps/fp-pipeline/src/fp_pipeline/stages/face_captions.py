"""Captions of face images from their annotations, worded like the QDGS faces prompts (issue 13).

The four prompt pairs (:data:`FACE_PROMPT_PAIRS`; label 0 is the first prompt, 1 the second):

* ``skin``: "A person with light skin" / "A person with dark skin", from the image's skin-tone group in
  ``fp_skin_tone.txt`` (groups named ``light`` / ``dark``; another group name is used as is, "medium skin").
  **The real CelebAMask-HQ release has no skin-tone file**: there the skin clause is left out of every
  caption and the ``skin`` label is ``None`` (its zero-shot accuracy cannot be measured).
* ``gender``: "A masculine person" / "A feminine person", from the CelebA attribute ``Male`` (1 / -1). This is
  gender *presentation* as annotated (the renderer draws it from the identity's sex).
* ``hair``: "A person with short hair" / "A person with long hair": long when ``Straight_Hair`` or
  ``Wavy_Hair`` is 1 and ``Bald`` is not. The renderer sets those two only for medium or long hair that is
  visible, so on the synthetic faces "long" means medium or long and "short" means short, bald or hidden
  (under a hat). On the real CelebA attributes Straight / Wavy describe texture, not length, so this label is
  only a proxy there.
* ``age``: "A person in their 20s" / "A person in their 50s", from ``Young`` (1 / -1): the attribute is
  binary, so "20s" stands for young and "50s" for not young.

:func:`captions_for` gives several captions per image: one that describes every known trait (in one of
several templates and clause orders) and one per trait in a prompt-like wording with a varied opener
("A photo of a feminine person"), so the embedded CLIP learns both the full descriptions and each prompt's
words. The choice is seeded (:mod:`fp_core.seeds`), so the captions are reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fp_core.seeds import derive_seed

__all__ = [
    "FACE_PROMPT_PAIRS",
    "FaceTraits",
    "captions_for",
    "face_traits",
    "full_caption",
    "trait_caption",
    "trait_labels",
]

FACE_PROMPT_PAIRS: dict[str, tuple[str, str]] = {
    "skin": ("A person with light skin", "A person with dark skin"),
    "gender": ("A masculine person", "A feminine person"),
    "hair": ("A person with short hair", "A person with long hair"),
    "age": ("A person in their 20s", "A person in their 50s"),
}
"""The QDGS faces prompt pairs; a trait's label is the index of the prompt that fits."""

_OPENERS = ("", "A photo of ", "A portrait of ", "A picture of ", "A face of ")
_FULL_TEMPLATES = (
    "{subject}{skin}{hair}, {age}",
    "{subject} {age}{skin}{hair}",
    "{opener}{subject_lower}{hair}{skin}, {age}",
)
_REQUIRED = ("Male", "Young", "Straight_Hair", "Wavy_Hair", "Bald")


@dataclass(frozen=True)
class FaceTraits:
    """What the captions say about one face.

    Attributes:
        skin: the skin-tone group name (``"light"``, ``"dark"``, ...), or None when the dataset has none.
        feminine: gender presentation (``Male`` is -1 / 0).
        long_hair: ``Straight_Hair`` or ``Wavy_Hair`` and not ``Bald`` (see the module docstring).
        young: ``Young``.
    """

    skin: str | None
    feminine: bool
    long_hair: bool
    young: bool


def face_traits(attributes: Mapping[str, int], skin_group: str | None = None) -> FaceTraits:
    """The traits of one face from its CelebA attributes (name -> 1 / 0, or 1 / -1) and skin-tone group.

    Raises ``KeyError`` naming the attributes that are missing (they are among CelebA's 40).
    """
    missing = [name for name in _REQUIRED if name not in attributes]
    if missing:
        raise KeyError(
            f"attributes {missing} are missing; expected CelebA's 40 (got {sorted(attributes)[:5]}...)"
        )
    on = {name: int(attributes[name]) == 1 for name in _REQUIRED}
    skin = None if skin_group in (None, "") else str(skin_group)
    return FaceTraits(
        skin=skin,
        feminine=not on["Male"],
        long_hair=(on["Straight_Hair"] or on["Wavy_Hair"]) and not on["Bald"],
        young=on["Young"],
    )


def trait_labels(traits: FaceTraits) -> dict[str, int | None]:
    """Each prompt pair's label (index into :data:`FACE_PROMPT_PAIRS`); ``skin`` is None unless the group is
    ``light`` (0) or ``dark`` (1)."""
    skin = {"light": 0, "dark": 1}.get(traits.skin) if traits.skin is not None else None
    return {
        "skin": skin,
        "gender": int(traits.feminine),
        "hair": int(traits.long_hair),
        "age": int(not traits.young),
    }


def _phrases(traits: FaceTraits) -> dict[str, str]:
    return {
        "skin": "" if traits.skin is None else f"{traits.skin} skin",
        "gender": "feminine" if traits.feminine else "masculine",
        "hair": "long hair" if traits.long_hair else "short hair",
        "age": "in their 20s" if traits.young else "in their 50s",
    }


def trait_caption(traits: FaceTraits, trait: str, opener: str = "") -> str | None:
    """The prompt-like caption of one trait (``"A person with dark skin"``), after ``opener``
    (``"A photo of "`` gives ``"A photo of a person with dark skin"``); None for an unknown skin tone."""
    words = _phrases(traits)
    if trait not in words:
        raise ValueError(f"trait must be one of {sorted(words)}, got {trait!r}")
    if not words[trait]:
        return None
    body = {
        "skin": f"a person with {words['skin']}",
        "gender": f"a {words['gender']} person",
        "hair": f"a person with {words['hair']}",
        "age": f"a person {words['age']}",
    }[trait]
    text = f"{opener}{body}"
    return text[0].upper() + text[1:]


def full_caption(traits: FaceTraits, template: int = 0, opener: str = "") -> str:
    """One caption with every known trait, in template ``template`` (0, 1 or 2, see the source).

    ``full_caption(FaceTraits("dark", True, True, True))`` is
    ``"A feminine person with dark skin and long hair, in their 20s"``.
    """
    if not 0 <= template < len(_FULL_TEMPLATES):
        raise ValueError(f"template must be in 0..{len(_FULL_TEMPLATES) - 1}, got {template}")
    words = _phrases(traits)
    subject = f"A {words['gender']} person"
    if words["skin"]:
        skin, hair = f" with {words['skin']}", f" and {words['hair']}"
        hair_first, skin_after = f" with {words['hair']}", f" and {words['skin']}"
    else:
        skin, hair, hair_first, skin_after = "", f" with {words['hair']}", f" with {words['hair']}", ""
    if template == 2:
        text = _FULL_TEMPLATES[2].format(
            opener=opener,
            subject_lower=subject[0].lower() + subject[1:],
            hair=hair_first,
            skin=skin_after,
            age=words["age"],
        )
    else:
        text = _FULL_TEMPLATES[template].format(subject=subject, skin=skin, hair=hair, age=words["age"])
    return text[0].upper() + text[1:]


def captions_for(
    traits: FaceTraits, *, seed: int, index: int, traits_order: Sequence[str] | None = None
) -> list[str]:
    """The captions of one image: a full description, then one prompt-like caption per known trait.

    The full caption's template and the openers are drawn from ``(seed, "face-captions", index)``, so image
    ``index`` always gets the same captions. ``traits_order`` defaults to ``FACE_PROMPT_PAIRS``'s keys.
    """
    rng = random.Random(derive_seed(seed, "face-captions", index))
    template = rng.randrange(len(_FULL_TEMPLATES))
    out = [full_caption(traits, template, opener=rng.choice(_OPENERS))]
    for trait in traits_order or FACE_PROMPT_PAIRS:
        caption = trait_caption(traits, trait, opener=rng.choice(_OPENERS))
        if caption is not None:
            out.append(caption)
    return out
