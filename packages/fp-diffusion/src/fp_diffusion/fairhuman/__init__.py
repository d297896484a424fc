"""FairHuman: the masked-box dataset reader, box masks and their latent-resolution version, the three masked
objectives, their weightings (MPD and the paper's baselines), LoRA on the UNet, and the fine-tuning step.

See docs/fairhuman.md ("Data layout", "Masks").
"""

from fp_diffusion.fairhuman.data import (
    METADATA_FILE,
    HumanSceneRecord,
    HumanScenes,
    HumanScenesError,
    read_metadata,
)
from fp_diffusion.fairhuman.lora import (
    LORA_KIND,
    LORA_TARGETS,
    LORA_WEIGHTS_FILE,
    LoraSettings,
    add_lora,
    fuse_lora,
    load_lora,
    lora_parameters,
    save_lora,
)
from fp_diffusion.fairhuman.masks import boxes_to_mask, mask_to_latent
from fp_diffusion.fairhuman.objectives import (
    OBJECTIVES,
    fairhuman_losses,
    masked_mse,
    masked_mse_with_area,
)
from fp_diffusion.fairhuman.output_space import OutputSpaceMPD, output_gramian, output_space_backward
from fp_diffusion.fairhuman.step import FairHumanStep, FairHumanStepResult, materialise_params
from fp_diffusion.fairhuman.transforms import CropFlip, JointTransform
from fp_diffusion.fairhuman.weighting import (
    ALL_WEIGHTINGS,
    FAIRHUMAN_WEIGHTINGS,
    FairHumanWeighting,
    build_fairhuman_weighting,
)

__all__ = [
    "ALL_WEIGHTINGS",
    "FAIRHUMAN_WEIGHTINGS",
    "LORA_KIND",
    "LORA_TARGETS",
    "LORA_WEIGHTS_FILE",
    "METADATA_FILE",
    "OBJECTIVES",
    "CropFlip",
    "FairHumanStep",
    "FairHumanStepResult",
    "FairHumanWeighting",
    "HumanSceneRecord",
    "HumanScenes",
    "HumanScenesError",
    "JointTransform",
    "LoraSettings",
    "OutputSpaceMPD",
    "add_lora",
    "boxes_to_mask",
    "build_fairhuman_weighting",
    "fairhuman_losses",
    "fuse_lora",
    "load_lora",
    "lora_parameters",
    "mask_to_latent",
    "masked_mse",
    "masked_mse_with_area",
    "materialise_params",
    "output_gramian",
    "output_space_backward",
    "read_metadata",
    "save_lora",
]
