"""Segmentation, fairness, generative and verification metrics for fp.

Modules: ``segmentation`` (confusion matrices, IoU / Dice, foreground F1), ``groups`` (per-group mIoU and
fairness summaries), ``soft`` (differentiable IoU / Dice), ``classification`` (group accuracy, disparate
impact, mean ± s.e.), ``generative`` (FID, KID, streaming statistics), ``features`` (clean-fid Inception
features), ``perceptual`` (LPIPS, CLIP score), ``clip_models`` (the embedded / named CLIP loader), ``verification`` (LFW protocol, ROC, TAR@FAR).

Imports only torch, numpy and pillow; the adapters that need ``lpips``, ``open_clip`` or weight files
load them lazily when they are constructed, and never download. See ``docs/metrics.md`` for formulas
and conventions.
"""

from fp_core.weights import WeightsNotFoundError, find_weight_file, weights_dir
from fp_metrics.classification import (
    MeanStderr,
    disparate_impact_ratio,
    group_accuracy,
    mean_group_accuracy,
    mean_stderr,
)
from fp_metrics.clip_models import (
    EMBEDDED_CLIP_KIND,
    OPENAI_MEAN,
    OPENAI_STD,
    LoadedCLIP,
    load_clip,
    preprocess_images,
    save_clip,
)
from fp_metrics.features import (
    IMAGE_EXTENSIONS,
    INCEPTION_FILENAME,
    INCEPTION_URL,
    InceptionFeatureExtractor,
    clean_resize,
    extract_features,
    feature_stats_from_images,
    list_images,
)
from fp_metrics.generative import (
    FeatureStats,
    fid_from_features,
    fid_from_stats,
    frechet_distance,
    kid_from_features,
    mmd2_unbiased,
)
from fp_metrics.groups import GroupFairness, group_confusion, group_fairness, group_miou
from fp_metrics.perceptual import LPIPS_TRUNK_FILES, CLIPScore, LPIPSDistance
from fp_metrics.segmentation import (
    ConfusionMatrix,
    SegmentationScores,
    confusion_matrix,
    dice_from_confusion,
    foreground_micro_f1,
    iou_from_confusion,
    per_image_confusion,
    segmentation_scores,
)
from fp_metrics.soft import soft_dice, soft_group_miou, soft_intersection_union, soft_iou, soft_miou
from fp_metrics.verification import (
    VerificationResult,
    flip_fuse,
    group_verification_accuracy,
    kfold_accuracy,
    l2_normalize,
    lfw_thresholds,
    pair_distances,
    roc_auc,
    roc_curve,
    tar_at_far,
    verify_pairs,
)

__version__ = "0.1.0"

__all__: list[str] = [
    # segmentation
    "ConfusionMatrix",
    "SegmentationScores",
    "confusion_matrix",
    "dice_from_confusion",
    "foreground_micro_f1",
    "iou_from_confusion",
    "per_image_confusion",
    "segmentation_scores",
    # soft (differentiable)
    "soft_dice",
    "soft_group_miou",
    "soft_intersection_union",
    "soft_iou",
    "soft_miou",
    # groups / segmentation fairness
    "GroupFairness",
    "group_confusion",
    "group_fairness",
    "group_miou",
    # classification fairness
    "MeanStderr",
    "disparate_impact_ratio",
    "group_accuracy",
    "mean_group_accuracy",
    "mean_stderr",
    # generative
    "FeatureStats",
    "fid_from_features",
    "fid_from_stats",
    "frechet_distance",
    "kid_from_features",
    "mmd2_unbiased",
    # features
    "IMAGE_EXTENSIONS",
    "INCEPTION_FILENAME",
    "INCEPTION_URL",
    "InceptionFeatureExtractor",
    "clean_resize",
    "extract_features",
    "feature_stats_from_images",
    "list_images",
    # perceptual
    "CLIPScore",
    "LPIPSDistance",
    "LPIPS_TRUNK_FILES",
    # CLIP models (embedded and open_clip, loaded offline)
    "EMBEDDED_CLIP_KIND",
    "OPENAI_MEAN",
    "OPENAI_STD",
    "LoadedCLIP",
    "load_clip",
    "preprocess_images",
    "save_clip",
    # verification
    "VerificationResult",
    "flip_fuse",
    "group_verification_accuracy",
    "kfold_accuracy",
    "l2_normalize",
    "lfw_thresholds",
    "pair_distances",
    "roc_auc",
    "roc_curve",
    "tar_at_far",
    "verify_pairs",
    # weights
    "WeightsNotFoundError",
    "find_weight_file",
    "weights_dir",
    "__version__",
]
