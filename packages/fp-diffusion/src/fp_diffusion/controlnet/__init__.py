"""ControlNet conditioned on face-parsing maps (paper 1, Sec. III-F2): palette, conditioning, data, training
(diffusers' ``train_controlnet`` recipe on the fp training harness) and generation."""

from fp_diffusion.controlnet.conditioning import (
    ConditioningError,
    colorize_labels,
    condition_to_labels,
    labels_to_condition,
    resize_labels,
)
from fp_diffusion.controlnet.config import (
    ControlNetConfigError,
    ControlNetTrainConfig,
    embedding_channels_for,
)
from fp_diffusion.controlnet.data import ConditionedFaces
from fp_diffusion.controlnet.palette import ADE20K_PALETTE, FACE_CLASSES, FACE_PALETTE, face_palette
from fp_diffusion.controlnet.pipeline import (
    SEG_CONTROLNET_HUB_ID,
    build_pipeline,
    generate_from_maps,
    load_controlnet,
)
from fp_diffusion.controlnet.train import check_controlnet, controlnet_from_base, train_controlnet

__all__ = [
    "ADE20K_PALETTE",
    "FACE_CLASSES",
    "FACE_PALETTE",
    "SEG_CONTROLNET_HUB_ID",
    "ConditionedFaces",
    "ConditioningError",
    "ControlNetConfigError",
    "ControlNetTrainConfig",
    "build_pipeline",
    "check_controlnet",
    "colorize_labels",
    "condition_to_labels",
    "controlnet_from_base",
    "embedding_channels_for",
    "face_palette",
    "generate_from_maps",
    "labels_to_condition",
    "load_controlnet",
    "resize_labels",
    "train_controlnet",
]
