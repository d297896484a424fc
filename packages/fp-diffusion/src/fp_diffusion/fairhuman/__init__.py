"""FairHuman: the masked-box dataset reader, box masks and their latent-resolution version, the three masked
objectives, their weightings (MPD and the paper's baselines), LoRA on the UNet, the fine-tuning step, the
trainer (LoRA or a pose ControlNet on the fp-core harness), region crops and the evaluation metrics.

See docs/fairhuman.md ("Data layout", "Masks").
"""

from fp_diffusion.fairhuman.data import (
    METADATA_FILE,
    HumanSceneRecord,
    HumanScenes,
    HumanScenesError,
    read_metadata,
)
from fp_diffusion.fairhuman.evaluate import (
    OPTIONAL_METRICS,
    clip_score,
    generate_scenes,
    optional_metric,
    regional_fd,
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
from fp_diffusion.fairhuman.regions import crop_box, crop_regions
from fp_diffusion.fairhuman.step import FairHumanStep, FairHumanStepResult, materialise_params
from fp_diffusion.fairhuman.train import (
    collate_scenes,
    fairhuman_forward,
    lora_settings,
    train_fairhuman,
    trained_module,
)
from fp_diffusion.fairhuman.train_config import FairHumanConfigError, FairHumanTrainConfig
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
    "OPTIONAL_METRICS",
    "CropFlip",
    "FairHumanConfigError",
    "FairHumanStep",
    "FairHumanStepResult",
    "FairHumanTrainConfig",
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
    "clip_score",
    "collate_scenes",
    "crop_box",
    "crop_regions",
    "fairhuman_forward",
    "fairhuman_losses",
    "fuse_lora",
    "generate_scenes",
    "load_lora",
    "lora_parameters",
    "lora_settings",
    "mask_to_latent",
    "masked_mse",
    "masked_mse_with_area",
    "materialise_params",
    "optional_metric",
    "output_gramian",
    "output_space_backward",
    "read_metadata",
    "regional_fd",
    "save_lora",
    "train_fairhuman",
    "trained_module",
]
