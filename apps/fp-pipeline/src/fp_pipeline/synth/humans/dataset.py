"""``render_human_scenes``: the whole human-scene dataset, written atomically (layout: docs/fairhuman.md).

::

    <out>/images/<id>.png              RGB scene
    <out>/conditions/pose/<id>.png     OpenPose-style skeletons on black
    <out>/metadata.jsonl               one JSON object per image (Hugging Face "imagefolder" metadata)
    <out>/manifest.json                kind "human-scenes": params and counts
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fp_core.atomic import atomic_output_dir, write_text
from fp_core.manifest import write_manifest
from fp_pipeline.synth.humans.config import BACKGROUNDS, POSES, SKIN_TONES, HumanSceneConfig
from fp_pipeline.synth.humans.render import RenderedScene, render_scene

__all__ = ["MANIFEST_KIND", "image_id", "metadata_record", "render_human_scenes"]

MANIFEST_KIND = "human-scenes"


def image_id(index: int) -> str:
    """The file stem of image ``index``: ``"000042"``."""
    return f"{index:06d}"


def metadata_record(index: int, rendered: RenderedScene) -> dict[str, Any]:
    """The ``metadata.jsonl`` line of one image (before ``json.dumps``)."""
    stem = image_id(index)
    return {
        "file_name": f"images/{stem}.png",
        "text": rendered.caption,
        "face_boxes": rendered.face_boxes,
        "hand_boxes": rendered.hand_boxes,
        "conditions": {"pose": f"conditions/pose/{stem}.png"},
        "background": rendered.scene.background,
        "num_people": len(rendered.people),
        "people": rendered.people,
    }


def render_human_scenes(
    config: HumanSceneConfig, out_dir: str | os.PathLike[str], *, progress: bool = False
) -> dict[str, Any]:
    """Render every image of ``config`` into ``out_dir`` (replaced as a whole, atomically); return the
    manifest (also ``out_dir/manifest.json``). The same config gives byte-identical files."""
    if not isinstance(config, HumanSceneConfig):
        raise TypeError(f"render_human_scenes needs a HumanSceneConfig, got {type(config).__name__}")
    lines: list[str] = []
    counts: Counter[str] = Counter()
    with atomic_output_dir(Path(out_dir)) as root:
        (root / "images").mkdir()
        (root / "conditions" / "pose").mkdir(parents=True)
        for index in tqdm(range(config.num_images), desc="humans", unit="img", disable=not progress):
            rendered = render_scene(config, index)
            record = metadata_record(index, rendered)
            rendered.image.save(root / record["file_name"], format="PNG")
            rendered.pose_image.save(root / record["conditions"]["pose"], format="PNG")
            lines.append(json.dumps(record, sort_keys=True))
            _count(counts, rendered)
        write_text(root / "metadata.jsonl", "\n".join(lines) + "\n")
        manifest_fields = {
            "generator": "fp_pipeline.synth.humans",
            "layout": {
                "images": "images/<id>.png",
                "conditions": {"pose": "conditions/pose/<id>.png"},
                "metadata": "metadata.jsonl",
                "boxes": "pixel xyxy, x1/y1 exclusive",
            },  # fmt: skip
            "image_size": config.image_size,
            "counts": _summary(counts, config.num_images),
        }
        write_manifest(root, MANIFEST_KIND, params=config.to_dict(), **manifest_fields)
    return {"kind": MANIFEST_KIND, "params": config.to_dict(), **manifest_fields}


def _count(counts: Counter[str], rendered: RenderedScene) -> None:
    counts["people"] += len(rendered.people)
    counts["face_boxes"] += len(rendered.face_boxes)
    counts["hand_boxes"] += len(rendered.hand_boxes)
    counts["two_people"] += len(rendered.people) == 2
    counts[f"background.{rendered.scene.background}"] += 1
    for person in rendered.people:
        counts[f"pose.{person['pose']}"] += 1
        counts[f"skin.{person['skin']}"] += 1
        counts[f"sex.{person['sex']}"] += 1


def _summary(counts: Counter[str], total: int) -> dict[str, Any]:
    return {
        "images": total,
        "people": counts["people"],
        "images_with_two_people": counts["two_people"],
        "face_boxes": counts["face_boxes"],
        "hand_boxes": counts["hand_boxes"],
        "hands_without_box": 2 * counts["people"] - counts["hand_boxes"],
        "background": {name: counts[f"background.{name}"] for name in BACKGROUNDS},
        "pose": {name: counts[f"pose.{name}"] for name in POSES},
        "skin": {name: counts[f"skin.{name}"] for name in SKIN_TONES},
        "sex": {name: counts[f"sex.{name}"] for name in ("female", "male")},
    }
