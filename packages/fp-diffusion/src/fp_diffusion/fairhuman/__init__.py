"""FairHuman data: the masked-box dataset reader, box masks and their latent-resolution version.

See docs/fairhuman.md ("Data layout", "Masks").
"""

from fp_diffusion.fairhuman.data import (
    METADATA_FILE,
    HumanSceneRecord,
    HumanScenes,
    HumanScenesError,
    read_metadata,
)
from fp_diffusion.fairhuman.masks import boxes_to_mask, mask_to_latent
from fp_diffusion.fairhuman.transforms import CropFlip, JointTransform

__all__ = [
    "METADATA_FILE",
    "CropFlip",
    "HumanSceneRecord",
    "HumanScenes",
    "HumanScenesError",
    "JointTransform",
    "boxes_to_mask",
    "mask_to_latent",
    "read_metadata",
]
