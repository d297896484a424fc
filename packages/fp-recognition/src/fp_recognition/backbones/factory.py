"""``build_backbone(name)``: one entry point for the iResNet and IR families, with their parameter counts."""

from __future__ import annotations

from torch import nn

from fp_recognition.backbones.ir import IR_LAYERS, IRNet
from fp_recognition.backbones.iresnet import IRESNET_LAYERS, IResNet

__all__ = ["BACKBONES", "PUBLISHED_PARAMETER_COUNTS", "build_backbone", "count_parameters"]

#: Every name :func:`build_backbone` accepts.
BACKBONES: tuple[str, ...] = (*IRESNET_LAYERS, *IR_LAYERS)

#: ``sum(p.numel() for p in model.parameters())`` at 112x112 with E = 512 (frozen weights included).
#: iresnet50 and ir101 are the published insightface / AdaFace networks; the others follow from the same
#: layer structure (checked in the tests by building each network).
PUBLISHED_PARAMETER_COUNTS: dict[str, int] = {
    "iresnet18": 24_025_600,
    "iresnet34": 34_139_328,
    "iresnet50": 43_590_848,
    "iresnet100": 65_156_160,
    "ir18": 24_020_352,
    "ir34": 34_134_080,
    "ir50": 43_585_600,
    "ir101": 65_150_912,
}


def build_backbone(
    name: str,
    *,
    input_size: int = 112,
    embedding_size: int = 512,
    dropout: float | None = None,
    width: int = 64,
) -> nn.Module:
    """Build backbone ``name`` (one of :data:`BACKBONES`): ``[B, 3, S, S] -> [B, E]`` embeddings.

    Args:
        name: ``iresnet18|34|50|100`` (insightface) or ``ir18|34|50|101`` (AdaFace).
        input_size: S, a multiple of 16; the last feature map has side ``S / 16`` (use 32 or 48 on a CPU).
        embedding_size: E.
        dropout: before the Linear layer; ``None`` takes the family's default (iResNet 0, IR 0.4).
        width: channels of the first stage (stages ``width * (1, 2, 4, 8)``); 64 is the published network,
            the counts in :data:`PUBLISHED_PARAMETER_COUNTS` hold only for it. 16 makes a toy CPU model.
    """
    if name in IRESNET_LAYERS:
        return IResNet(
            IRESNET_LAYERS[name],
            input_size=input_size,
            embedding_size=embedding_size,
            dropout=0.0 if dropout is None else dropout,
            width=width,
        )
    if name in IR_LAYERS:
        return IRNet(
            IR_LAYERS[name],
            input_size=input_size,
            embedding_size=embedding_size,
            dropout=0.4 if dropout is None else dropout,
            width=width,
        )
    raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")


def count_parameters(model: nn.Module) -> int:
    """``sum(p.numel())`` over all parameters, trainable or not."""
    return sum(p.numel() for p in model.parameters())
