"""Training of face recognisers: margin losses on the fp-core harness, two-stage pretrain -> train.

The one obvious path::

    from fp_recognition.train import RecognitionTrainConfig, train_recognizer, load_backbone
    from fp_recognition import RecordDataset

    config = RecognitionTrainConfig.from_dict({"loss": "adaface", "epochs": 26, "milestones": [12, 20, 24]})
    train_recognizer(config, RecordDataset("data/casia"), "model/", checkpoint_dir="ckpt/")
    model = load_backbone("model/")           # eval mode, ready for evaluate_bins / evaluate_rfw

Pretraining then training: ``train_recognizer(config_T, set_T, "T/", checkpoint_dir=..., init_backbone="P/")``
loads the backbone of ``P/`` and builds a fresh head for ``set_T``'s identities.
"""

from fp_recognition.train.config import LOSSES, SCHEDULES, AugmentConfig, ConfigError, RecognitionTrainConfig
from fp_recognition.train.head import MarginHead, build_margin
from fp_recognition.train.loop import (
    HEAD_WEIGHTS,
    TrainResult,
    build_models,
    num_identities,
    train_recognizer,
)
from fp_recognition.train.sampling import EpochPermutation, TrainingView, describe_items
from fp_recognition.train.schedule import lr_factor
from fp_recognition.train.weights import (
    BACKBONE_CONFIG,
    BACKBONE_WEIGHTS,
    load_backbone,
    load_backbone_weights,
    read_backbone_config,
    save_backbone,
)

__all__ = [
    "BACKBONE_CONFIG",
    "BACKBONE_WEIGHTS",
    "HEAD_WEIGHTS",
    "LOSSES",
    "SCHEDULES",
    "AugmentConfig",
    "ConfigError",
    "EpochPermutation",
    "MarginHead",
    "RecognitionTrainConfig",
    "TrainResult",
    "TrainingView",
    "build_margin",
    "build_models",
    "describe_items",
    "load_backbone",
    "load_backbone_weights",
    "lr_factor",
    "num_identities",
    "read_backbone_config",
    "save_backbone",
    "train_recognizer",
]
