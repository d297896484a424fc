"""Synthetic human scenes for FairHuman: small people (faces and hands small in the frame) with face and hand
boxes, captions and OpenPose-style pose conditions (see docs/fairhuman.md).

Use: ``render_human_scenes(HumanSceneConfig.from_dict(params["fairhuman_data"]), out_dir)``.
"""

from fp_pipeline.synth.humans.config import (
    BACKGROUNDS,
    POSES,
    SKIN_TONES,
    HumanSceneConfig,
    HumanSceneConfigError,
)
from fp_pipeline.synth.humans.dataset import MANIFEST_KIND, render_human_scenes
from fp_pipeline.synth.humans.preview import contact_sheet
from fp_pipeline.synth.humans.render import RenderedScene, render_scene

__all__ = [
    "BACKGROUNDS",
    "MANIFEST_KIND",
    "POSES",
    "SKIN_TONES",
    "HumanSceneConfig",
    "HumanSceneConfigError",
    "RenderedScene",
    "contact_sheet",
    "render_human_scenes",
    "render_scene",
]
