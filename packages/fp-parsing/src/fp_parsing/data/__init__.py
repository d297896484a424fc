"""CelebAMask-HQ data: the layout, its text files, part masks, label orders and the torch Dataset.

Layout, file origins, label orders and split sizes are described in docs/data.md.
"""

from fp_parsing.data.celebamask import SPLITS, CelebAMaskHQ, flip_decision
from fp_parsing.data.check import DatasetReport, SplitCount, check_dataset
from fp_parsing.data.files import (
    ATTRIBUTE_NAMES,
    SPLIT_IDS,
    AttributeTable,
    DataFormatError,
    SkinToneTable,
    read_attribute_file,
    read_identity_file,
    read_mapping_file,
    read_partition_file,
    read_skin_tone_file,
)
from fp_parsing.data.labels import (
    LABEL_ORDERS,
    MIRRORED_PARTS,
    PART_NAMES,
    flip_label_map,
    label_map_to_part_masks,
    label_names,
    merge_part_masks,
    mirror_lookup,
)
from fp_parsing.data.layout import (
    ATTRIBUTE_FILE,
    IDENTITY_FILE,
    IMAGE_DIR,
    MAPPING_FILE,
    MASK_DIR,
    PARTITION_FILE,
    SKIN_TONE_FILE,
    image_path,
    part_mask_path,
)
from fp_parsing.data.masks import find_part_masks, read_part_mask, write_part_masks
from fp_parsing.data.problems import DatasetProblem

__all__ = [
    "ATTRIBUTE_FILE",
    "ATTRIBUTE_NAMES",
    "IDENTITY_FILE",
    "IMAGE_DIR",
    "LABEL_ORDERS",
    "MAPPING_FILE",
    "MASK_DIR",
    "MIRRORED_PARTS",
    "PARTITION_FILE",
    "PART_NAMES",
    "SKIN_TONE_FILE",
    "SPLITS",
    "SPLIT_IDS",
    "AttributeTable",
    "CelebAMaskHQ",
    "DataFormatError",
    "DatasetProblem",
    "DatasetReport",
    "SkinToneTable",
    "SplitCount",
    "check_dataset",
    "find_part_masks",
    "flip_decision",
    "flip_label_map",
    "image_path",
    "label_map_to_part_masks",
    "label_names",
    "merge_part_masks",
    "mirror_lookup",
    "part_mask_path",
    "read_attribute_file",
    "read_identity_file",
    "read_mapping_file",
    "read_part_mask",
    "read_partition_file",
    "read_skin_tone_file",
    "write_part_masks",
]
