"""What the diffusion stages share (paper 1, Sec. III-F2): where outputs live and how params become settings.

Layout (all under ``outputs/``)::

    diffusion-base/                       the small text-to-image base (diffusers StableDiffusionPipeline layout
                                          + manifest); default only: real scale reads SD 1.5 by hub id
    diffusion-base-metrics.json           what the base reaches: CLIP-FD of its samples vs the real test faces
    diffusion-base-samples.png            a grid of its samples from test captions (DVC plots)
    controlnet/<variant>/model/epoch-<e>/ the ControlNet after epoch e (diffusers save_pretrained layout)
    controlnet/<variant>/model/final/     the last one
    controlnet/<variant>/eval/metrics.json  per snapshot epoch: FD, LPIPS, map adherence (DVC metrics)
    controlnet/<variant>/eval/fig7.png    test maps | generated | real of the final ControlNet
    controlnet/<variant>/eval/samples.npz the Fig. 7 maps and images (uint8, for the report's grid)
    controlnet-report/                    report.md, summary.json, figures/
    checkpoints/diffusion-base-{vae,unet}/, checkpoints/controlnet-<variant>/   resumable checkpoints
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, section

__all__ = [
    "BASE_DIR",
    "BASE_METRICS_FILE",
    "BASE_SAMPLES_FILE",
    "CONTROLNET_ROOT",
    "REPORT_DIR",
    "base_model",
    "controlnet_variants",
    "eval_dir",
    "face_captions_by_index",
    "model_dir",
]

BASE_DIR = Path("outputs/diffusion-base")
BASE_METRICS_FILE = Path("outputs/diffusion-base-metrics.json")
BASE_SAMPLES_FILE = Path("outputs/diffusion-base-samples.png")
CONTROLNET_ROOT = Path("outputs/controlnet")
REPORT_DIR = Path("outputs/controlnet-report")


def model_dir(variant: str) -> Path:
    """``outputs/controlnet/<variant>/model`` (the DVC output: one folder per snapshot epoch and ``final``)."""
    return CONTROLNET_ROOT / variant / "model"


def eval_dir(variant: str) -> Path:
    """``outputs/controlnet/<variant>/eval``."""
    return CONTROLNET_ROOT / variant / "eval"


def base_model(params: dict[str, Any]) -> str:
    """``controlnet.base_model``: the base to fine-tune, a directory or a hub id (default: our own base)."""
    value = section(params, "controlnet").get("base_model") or str(BASE_DIR)
    if not isinstance(value, str):
        raise ParamsError(f"controlnet.base_model must be a path or a hub id, got {value!r}")
    return value


def controlnet_variants(params: dict[str, Any]) -> list[str]:
    """``controlnet.variants``: parser variants (keys of ``parsing.variants``) that get a ControlNet."""
    values = section(params, "controlnet.variants")
    known = section(params, "parsing.variants")
    if not isinstance(values, list) or not values or len(set(values)) != len(values):
        raise ParamsError(f"controlnet.variants must be a non-empty list of distinct names, got {values!r}")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ParamsError(f"controlnet.variants {unknown} are not keys of parsing.variants {sorted(known)}")
    return [str(v) for v in values]


def face_captions_by_index(root: Path, splits: list[str], label_order: str) -> dict[str, str]:
    """``{str(CelebA-HQ index): caption}`` for the images of ``splits`` of ``root``: the full description of
    what was drawn (:func:`fp_pipeline.stages.face_captions.full_caption`, template 0), the prompt of each
    image in training and generation alike."""
    from fp_parsing.data import CelebAMaskHQ
    from fp_pipeline.stages.face_captions import face_traits, full_caption

    out: dict[str, str] = {}
    for split in splits:
        ds = CelebAMaskHQ(root, split=split, label_order=label_order)
        names, groups = list(ds.attribute_names), ds.skin_tone_groups
        for k, index in enumerate(ds.indices):
            attributes = dict(zip(names, (int(v) for v in ds.attributes[k])))
            tone = int(ds.skin_tones[k])
            traits = face_traits(attributes, groups[tone] if groups is not None and tone >= 0 else None)
            out[str(int(index))] = full_caption(traits, 0)
    return out
