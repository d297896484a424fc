"""Fair and robust multi-objective face parsing (arXiv 2502.04391): U-Net parser, homotopy-scheduled
Dice + robustness + fairness losses, perturbations, training with resume, evaluation, export and report.

The one obvious path::

    from fp_parsing import CelebAMaskHQ, TrainConfig, evaluate_parser, train_parser

    train_set = CelebAMaskHQ("data", split="train", image_size=256, hflip=True)
    result = train_parser(TrainConfig(schedule={"kind": "linear"}), train_set, "model/", checkpoint_dir="ckpt/")
    evaluation = evaluate_parser(load_parser("model/"), CelebAMaskHQ("data", split="test", image_size=256))

See docs/parsing.md and docs/data.md.
"""

from fp_parsing.data import LABEL_ORDERS, CelebAMaskHQ, label_names
from fp_parsing.evaluate import Evaluation, evaluate_parser, predict
from fp_parsing.export import export_predictions
from fp_parsing.groups import build_groupings, group_ids
from fp_parsing.losses import ParsingObjectives, combine
from fp_parsing.model import EncoderWeightsUnavailable, build_parser, load_parser, save_parser
from fp_parsing.perturbations import PERTURBATIONS, perturb, random_perturb
from fp_parsing.report import render_report
from fp_parsing.schedules import build_schedule, schedule_table
from fp_parsing.train import TrainConfig, TrainResult, train_parser

__version__ = "0.1.0"

__all__: list[str] = [
    "LABEL_ORDERS",
    "PERTURBATIONS",
    "CelebAMaskHQ",
    "EncoderWeightsUnavailable",
    "Evaluation",
    "ParsingObjectives",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "build_groupings",
    "build_parser",
    "build_schedule",
    "combine",
    "evaluate_parser",
    "export_predictions",
    "group_ids",
    "label_names",
    "load_parser",
    "perturb",
    "predict",
    "random_perturb",
    "render_report",
    "save_parser",
    "schedule_table",
    "train_parser",
]
