"""Captions made from what was drawn: "a woman with dark skin in a red striped t-shirt and blue trousers
raising both hands in a park"."""

from __future__ import annotations

from fp_pipeline.synth.humans.body import PersonSpec
from fp_pipeline.synth.humans.scene import SceneSpec

__all__ = ["BACKGROUND_PHRASES", "POSE_PHRASES", "caption", "person_phrase"]

POSE_PHRASES: dict[str, str] = {
    "standing": "standing",
    "walking": "walking",
    "arms_raised": "raising both hands",
    "waving": "waving one hand",
    "hands_on_hips": "with hands on hips",
    "sitting": "sitting on a bench",
    "hands_behind_back": "with hands behind the back",
}
BACKGROUND_PHRASES: dict[str, str] = {
    "plain": "against a plain backdrop",
    "room": "in a room",
    "park": "in a park",
    "street": "on a street",
}


def person_phrase(person: PersonSpec) -> str:
    """``"a man with light skin in a blue checked shirt and black shorts walking"``."""
    who = "man" if person.identity.male else "woman"
    top = "t-shirt" if person.sleeves == "short" else "shirt"
    pattern = "" if person.top_pattern == "plain" else f" {person.top_pattern}"
    article = "a " if person.bottom == "skirt" else ""
    return (
        f"a {who} with {person.skin} skin in a {person.top_colour}{pattern} {top} "
        f"and {article}{person.bottom_colour} {person.bottom} "
        f"{POSE_PHRASES[person.pose_kind]}"
    )


def caption(scene: SceneSpec) -> str:
    """The caption of a scene: one person's phrase, or "two people ...: <phrase> and <phrase>"."""
    place = BACKGROUND_PHRASES[scene.background]
    phrases = [person_phrase(p) for p in sorted(scene.people, key=lambda p: p.neck[0])]
    if len(phrases) == 1:
        return f"{phrases[0]} {place}"
    return f"two people {place}: {phrases[0]} on the left and {phrases[1]} on the right"
