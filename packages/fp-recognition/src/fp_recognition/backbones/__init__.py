"""Face-recognition backbones: insightface's iResNet and AdaFace's IR, ``[B, 3, S, S] -> [B, E]``."""

from fp_recognition.backbones.factory import (
    BACKBONES,
    PUBLISHED_PARAMETER_COUNTS,
    build_backbone,
    count_parameters,
)
from fp_recognition.backbones.ir import IR_LAYERS, BasicBlockIR, IRNet
from fp_recognition.backbones.iresnet import IRESNET_LAYERS, IBasicBlock, IResNet

__all__ = [
    "BACKBONES",
    "IRESNET_LAYERS",
    "IR_LAYERS",
    "PUBLISHED_PARAMETER_COUNTS",
    "BasicBlockIR",
    "IBasicBlock",
    "IRNet",
    "IResNet",
    "build_backbone",
    "count_parameters",
]
