"""``fairhuman-data``: render the train and test human scenes (fp_pipeline.synth.humans, used as is).

``fairhuman.data.common`` holds the :class:`~fp_pipeline.synth.humans.HumanSceneConfig` settings both splits
share; ``fairhuman.data.train`` / ``fairhuman.data.test`` override them per split (at least their own
``seed``, so the test scenes are not train scenes, and ``num_images``). Writes
``outputs/fairhuman/data/{train,test}`` and a contact sheet of the train images with their boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, load_params, section
from fp_pipeline.stages.fairhuman_common import CONTACT_SHEET, DATA_DIR, SPLITS, split_dir
from fp_pipeline.tracking import stage_run

__all__ = ["data_stage", "scene_config"]


def scene_config(params: dict[str, Any], split: str) -> Any:
    """The split's ``HumanSceneConfig``: ``fairhuman.data.common`` updated by ``fairhuman.data.<split>``."""
    from fp_pipeline.synth.humans import HumanSceneConfig, HumanSceneConfigError

    data = section(params, "fairhuman.data")
    values = {**dict(data.get("common") or {}), **dict(data.get(split) or {})}
    try:
        return HumanSceneConfig.from_dict(values)
    except HumanSceneConfigError as err:
        raise ParamsError(f"fairhuman.data.{split}: {err}") from err


def data_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Render both splits and the contact sheet; return ``outputs/fairhuman/data``."""
    from fp_pipeline.synth.humans import contact_sheet, render_human_scenes

    params = load_params(params_path)
    configs = {split: scene_config(params, split) for split in SPLITS}
    if configs["train"].seed == configs["test"].seed:
        raise ParamsError(
            f"fairhuman.data: train and test have the same seed {configs['train'].seed}: the test scenes "
            "would repeat the train scenes; give fairhuman.data.test its own seed"
        )
    logged = {f"fairhuman.data.{s}": c.to_dict() for s, c in configs.items()}
    with stage_run("fairhuman-data", params=logged) as run:
        counts = {}
        for split, config in configs.items():
            manifest = render_human_scenes(config, split_dir(split), progress=progress)
            counts[split] = manifest["counts"]
            run({f"{split}/{k}": float(v) for k, v in manifest["counts"].items() if isinstance(v, int)}, 0)
        contact_sheet(split_dir("train"), CONTACT_SHEET, count=32, columns=8)
        run.log_artifact(CONTACT_SHEET)
    summary = {s: (c["images"], c["face_boxes"], c["hand_boxes"]) for s, c in counts.items()}
    typer.echo(f"fairhuman-data: (images, face boxes, hand boxes) {summary} -> {DATA_DIR}")
    return DATA_DIR
