"""insightface's iResNet (arcface_torch ``iresnet18/34/50/100``), rewritten from its layer structure.

Structure (all convolutions bias-free, BatchNorm eps 1e-5):

* stem: conv3x3(3 -> 64, stride 1) - BN - PReLU(64);
* four stages of :class:`IBasicBlock` with 64, 128, 256, 512 channels, the first block of each stage with
  stride 2 and a downsample shortcut conv1x1(stride 2) - BN (every stage has one, the first included);
* head: BN2d(512) - dropout - flatten - Linear(512 * s * s -> E) - BatchNorm1d(E) with its weight fixed to 1
  (``requires_grad = False``, as insightface does), ``s = input_size / 16`` (7 at 112x112).

Initialisation as insightface: convolutions ``N(0, 0.1)``, BatchNorm weight 1 and bias 0, the Linear layer
PyTorch's default.
"""

from __future__ import annotations

import torch
from torch import nn

from fp_recognition.backbones._common import feature_side

__all__ = ["IBasicBlock", "IResNet", "IRESNET_LAYERS"]

#: Blocks per stage of each published depth.
IRESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation residual block BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN, plus the shortcut.

    ``x [B, cin, H, W] -> [B, cout, H / stride, W / stride]``; the shortcut is the identity, or
    conv1x1(stride) - BN when the stride or the channel count changes. No activation after the sum.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = _conv3x3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3x3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(cout, eps=1e-5),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, cin, H, W] -> [B, cout, H / stride, W / stride]``."""
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """iResNet: images ``[B, 3, input_size, input_size]`` -> embeddings ``[B, embedding_size]`` (not normalised).

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 14, 3)`` for iresnet50.
        input_size: image side, a multiple of 16 (112 for the published models).
        embedding_size: E, 512 in the paper.
        dropout: dropout probability before the Linear layer (insightface's default 0).
        width: channels of the stem and the first stage; the stages have ``width * (1, 2, 4, 8)`` (64 in
            the published nets; a smaller width makes a toy CPU model).
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int] | list[int],
        *,
        input_size: int = 112,
        embedding_size: int = 512,
        dropout: float = 0.0,
        width: int = 64,
    ) -> None:
        super().__init__()
        side = feature_side(input_size)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {layers!r}")
        self.input_size = input_size
        self.embedding_size = embedding_size
        self.width = width
        self.conv1 = _conv3x3(3, width)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-5)
        self.prelu = nn.PReLU(width)
        stages: list[nn.Module] = []
        cin = width
        for n_blocks, cout in zip(layers, (width, 2 * width, 4 * width, 8 * width)):
            blocks = [IBasicBlock(cin, cout, stride=2)] + [
                IBasicBlock(cout, cout) for _ in range(n_blocks - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(8 * width, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(8 * width * side * side, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if any(t.is_meta for t in module.parameters(recurse=False)):
                continue  # meta tensors (shape-only builds, e.g. counting parameters) hold no values
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.1)
            elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        self.features.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S] -> [B, E]`` with ``S = input_size``."""
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.dropout(self.bn2(x)), 1)
        return self.features(self.fc(x))
