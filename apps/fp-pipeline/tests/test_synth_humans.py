"""Synthetic human scenes: determinism, layout, boxes against the drawn pixels, fingers, captions, config."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fp_core.manifest import read_manifest
from fp_pipeline.synth.humans import (
    HumanSceneConfig,
    HumanSceneConfigError,
    render_human_scenes,
    render_scene,
)
from fp_pipeline.synth.humans.body import HEAD_PAINTS, BodyPaint, hand_paint
from fp_pipeline.synth.humans.captions import BACKGROUND_PHRASES, POSE_PHRASES
from fp_pipeline.synth.humans.clothes import COLOURS
from fp_pipeline.synth.humans.config import SKIN_TONES
from fp_pipeline.synth.humans.render import PAINTS_PER_PERSON
from fp_pipeline.synth.paints import Paint

SMALL = {"num_images": 6, "image_size": 64, "two_people_prob": 0.5}


def _any_block(mask: np.ndarray, ss: int) -> np.ndarray:
    """Canvas ``[H*ss, W*ss]`` bool -> ``[H, W]``: the pixel holds any sub-pixel of the mask."""
    h = mask.shape[0] // ss
    return mask.reshape(h, ss, h, ss).any(axis=(1, 3))


def _bbox(mask: np.ndarray) -> list[int] | None:
    ys, xs = np.nonzero(mask)
    return None if len(xs) == 0 else [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    config = HumanSceneConfig.from_dict(SMALL)
    render_human_scenes(config, tmp_path / "a")
    render_human_scenes(config, tmp_path / "b")
    render_human_scenes(HumanSceneConfig.from_dict({**SMALL, "seed": 1}), tmp_path / "c")
    a, b, c = (_files(tmp_path / k) for k in "abc")
    assert a == b
    assert a["images/000000.png"] != c["images/000000.png"]


def test_layout_metadata_and_manifest(tmp_path):
    config = HumanSceneConfig.from_dict(SMALL)
    manifest = render_human_scenes(config, tmp_path / "out")
    root = tmp_path / "out"
    lines = (root / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 6
    faces = hands = 0
    for k, line in enumerate(lines):
        record = json.loads(line)
        assert record["file_name"] == f"images/{k:06d}.png"
        assert record["conditions"] == {"pose": f"conditions/pose/{k:06d}.png"}
        for path in (record["file_name"], record["conditions"]["pose"]):
            with Image.open(root / path) as image:
                assert image.size == (64, 64) and image.mode == "RGB"
        assert isinstance(record["text"], str) and record["text"]
        assert len(record["people"]) == record["num_people"]
        for x0, y0, x1, y1 in record["face_boxes"] + record["hand_boxes"]:
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        faces += len(record["face_boxes"])
        hands += len(record["hand_boxes"])
    on_disk = read_manifest(root, "human-scenes", required=["counts", "params"])
    assert on_disk["counts"] == manifest["counts"]
    assert on_disk["params"] == config.to_dict()
    assert on_disk["counts"]["images"] == 6
    assert on_disk["counts"]["face_boxes"] == faces and on_disk["counts"]["hand_boxes"] == hands


def test_boxes_are_the_tight_boxes_of_the_drawn_head_and_hands():
    config = HumanSceneConfig(image_size=96, two_people_prob=0.5)
    ss = config.supersample
    checked = 0
    for index in range(30):
        rendered = render_scene(config, index)
        paint_map = rendered.paint_map.astype(int)
        person, local = paint_map // PAINTS_PER_PERSON, paint_map % PAINTS_PER_PERSON
        drawn = paint_map > 0
        for p, attributes in enumerate(rendered.people):
            head = _any_block(drawn & (person == p) & np.isin(local, list(HEAD_PAINTS)), ss)
            skin = _any_block(drawn & (person == p) & (local == int(Paint.FACE)), ss)
            box = attributes["face_box"]
            if box is None:
                assert head.sum() < config.min_box_pixels
                continue
            assert box == _bbox(head)  # nothing of the head lies outside, and the box is tight
            x0, y0, x1, y1 = box
            assert skin[y0:y1, x0:x1].sum() == skin.sum() > 0
            assert box in rendered.face_boxes
            for side, name in ((-1, "hand_right"), (1, "hand_left")):
                hand = _any_block(drawn & (person == p) & (local == int(hand_paint(side))), ss)
                hand_box = attributes["hand_boxes"][name]
                assert hand_box == (_bbox(hand) if hand_box is not None else None)
                if hand_box is not None:
                    assert hand_box in rendered.hand_boxes
            checked += 1
    assert checked >= 30


def test_hidden_hands_get_no_box_and_raised_hands_have_five_fingers():
    hidden = HumanSceneConfig(image_size=64, pose_weights={"hands_behind_back": 1.0})
    for index in range(5):
        rendered = render_scene(hidden, index)
        assert rendered.hand_boxes == [] and len(rendered.face_boxes) >= 1
    config = HumanSceneConfig(
        image_size=256, supersample=3, two_people_prob=0.0, out_of_frame_prob=0.0,
        person_height=(0.7, 0.8), pose_weights={"arms_raised": 1.0},
    )  # fmt: skip
    canvas = 256 * 3
    for index in range(3):
        rendered = render_scene(config, index)
        assert len(rendered.hand_boxes) == 2
        from fp_pipeline.synth.humans.body import draw_person  # the same drawing, to read the tips

        drawing = draw_person(rendered.scene.people[0], np.random.default_rng(0))
        for hand in drawing.hands:
            paint = int(hand_paint(hand.side))
            centre = np.asarray(hand.palm_centre)
            near_tips = [centre + 0.9 * (tip - centre) for tip in hand.tips[:4]]
            samples = np.concatenate([np.linspace(a, b, 60) for a, b in zip(near_tips[:-1], near_tips[1:])])
            cols = np.clip((samples[:, 0] * canvas).astype(int), 0, canvas - 1)
            rows = np.clip((samples[:, 1] * canvas).astype(int), 0, canvas - 1)
            on = rendered.paint_map[rows, cols] == paint
            runs = int(on[0]) + int(np.sum(on[1:] & ~on[:-1]))
            assert runs == 4, f"image {index}: {runs} separate fingers across the hand, expected 4"
            x0, y0, x1, y1 = rendered.people[0]["hand_boxes"]["hand_right" if hand.side < 0 else "hand_left"]
            for tx, ty in hand.tips * 256:
                assert x0 <= tx <= x1 and y0 <= ty <= y1


def test_caption_words_agree_with_what_was_drawn():
    config = HumanSceneConfig(image_size=128, two_people_prob=0.3, pattern_prob=0.3)
    ss = config.supersample
    plain_checked = 0
    for index in range(40):
        rendered = render_scene(config, index)
        text = rendered.caption
        assert BACKGROUND_PHRASES[rendered.scene.background] in text
        assert text.startswith("two people") == (len(rendered.people) == 2)
        image = np.asarray(rendered.image, dtype=np.float32) / 255.0
        for p, (person, attributes) in enumerate(zip(rendered.scene.people, rendered.people)):
            low, high = SKIN_TONES[attributes["skin"]]
            assert low <= person.identity.tone <= high
            phrase = (
                f"a {'man' if attributes['sex'] == 'male' else 'woman'} with {attributes['skin']} skin in a "
                f"{attributes['top_colour']}"
            )
            assert phrase in text and POSE_PHRASES[attributes["pose"]] in text
            assert attributes["bottom_colour"] + " " + attributes["bottom"] in text
            if attributes["top_pattern"] != "plain":
                assert f"{attributes['top_colour']} {attributes['top_pattern']}" in text
                continue
            top = rendered.paint_map == p * PAINTS_PER_PERSON + int(BodyPaint.TOP)
            full = top.reshape(128, ss, 128, ss).all(axis=(1, 3))
            if full.sum() < 10:
                continue
            mean = image[full].mean(axis=0)
            nearest = min(COLOURS, key=lambda name: float(np.sum((np.asarray(COLOURS[name]) - mean) ** 2)))
            assert nearest == attributes["top_colour"], (
                f"image {index}: top looks {nearest}, caption says so not"
            )
            plain_checked += 1
    assert plain_checked >= 20


def test_config_errors_name_the_key():
    with pytest.raises(HumanSceneConfigError, match="unknown key 'num_imgs'"):
        HumanSceneConfig.from_dict({"num_imgs": 3})
    with pytest.raises(HumanSceneConfigError, match="image_size"):
        HumanSceneConfig.from_dict({"image_size": 16})
    with pytest.raises(HumanSceneConfigError, match="pose_weights: unknown name 'dancing'"):
        HumanSceneConfig.from_dict({"pose_weights": {"dancing": 1}})
    with pytest.raises(HumanSceneConfigError, match="person_height"):
        HumanSceneConfig.from_dict({"person_height": [0.9, 0.5]})
    config = HumanSceneConfig.from_dict({"person_height": [0.5, 0.6], "pose_weights": {"sitting": 2}})
    assert HumanSceneConfig.from_dict(config.to_dict()) == config
    assert config.pose_weights["standing"] == 0.0


def test_people_are_small_in_the_frame():
    config = HumanSceneConfig()
    sizes = []
    for index in range(20):
        rendered = render_scene(config, index)
        sizes += [max(x1 - x0, y1 - y0) for x0, y0, x1, y1 in rendered.face_boxes + rendered.hand_boxes]
    assert max(sizes) <= 0.15 * config.image_size
    assert np.median(sizes) <= 0.1 * config.image_size
