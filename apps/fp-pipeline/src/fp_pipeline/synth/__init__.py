"""Synthetic faces in the exact layout of the CelebAMask-HQ release (see docs/synth.md).

Use: ``render_dataset(SynthConfig.from_dict(params["synth"]), out_dir)`` writes the dataset and returns its
manifest (also written as ``out_dir/fp_synth_manifest.json``).
"""

from fp_pipeline.synth.config import HAIR_COLOURS, SkinToneGroup, SynthConfig, SynthConfigError
from fp_pipeline.synth.dataset import render_dataset
from fp_pipeline.synth.layout import ATTRIBUTE_NAMES, PARTS
from fp_pipeline.synth.render import RenderedFace, render_face

__all__ = [
    "ATTRIBUTE_NAMES",
    "HAIR_COLOURS",
    "PARTS",
    "RenderedFace",
    "SkinToneGroup",
    "SynthConfig",
    "SynthConfigError",
    "render_dataset",
    "render_face",
]
