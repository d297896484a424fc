"""AdaFace's IR backbones (``IR_18``, ``IR_50``, ``IR_101`` of mk-minchul/AdaFace), rewritten from the structure.

Structure (all convolutions bias-free):

* input layer: conv3x3(3 -> 64, stride 1) - BN - PReLU(64);
* body: four stages of :class:`BasicBlockIR` with 64, 128, 256, 512 channels, the first unit of each stage
  with stride 2. A unit's residual branch is BN - conv3x3 - BN - PReLU - conv3x3(stride) - BN (AdaFace's
  ``BasicBlockIR``, which has the BatchNorm after the first convolution; the older face.evoLVe
  ``bottleneck_IR`` lacks it and gives other parameter counts); its shortcut is ``MaxPool2d(1, stride)``
  (a subsampling, no parameters) when the channel count is unchanged, else conv1x1(stride) - BN;
* output layer: BN2d(512) - dropout - flatten - Linear(512 * s * s -> E) - BatchNorm1d(E, affine=False),
  ``s = input_size / 16``.

AdaFace's ``IR_101`` has 100 layers: blocks (3, 13, 30, 3). Initialisation as AdaFace: convolutions and the
Linear layer Kaiming-normal (fan_out, ReLU gain) with zero bias, BatchNorm weight 1 and bias 0.
"""

from __future__ import annotations

import torch
from torch import nn

from fp_recognition.backbones._common import feature_side

__all__ = ["IR_LAYERS", "BasicBlockIR", "IRNet"]

#: Units per stage of each AdaFace depth.
IR_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "ir18": (2, 2, 2, 2),
    "ir34": (3, 4, 6, 3),
    "ir50": (3, 4, 14, 3),
    "ir101": (3, 13, 30, 3),
}


class BasicBlockIR(nn.Module):
    """IR unit: ``x [B, cin, H, W] -> residual(x) + shortcut(x)``, ``[B, cout, H / stride, W / stride]``."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if cin == cout:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(kernel_size=1, stride=stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, cin, H, W] -> [B, cout, H / stride, W / stride]``."""
        return self.res_layer(x) + self.shortcut_layer(x)


class IRNet(nn.Module):
    """AdaFace IR: images ``[B, 3, input_size, input_size]`` -> embeddings ``[B, embedding_size]``.

    AdaFace's own module also returns the norm and the normalised embedding; this one returns the raw
    embedding (its L2 norm is the feature norm AdaFace's margin needs).

    Args:
        layers: units per stage, e.g. ``(3, 13, 30, 3)`` for ir101.
        input_size: image side, a multiple of 16 (112 for the published models).
        embedding_size: E, 512 in the paper.
        dropout: dropout probability in the output layer (AdaFace's 0.4).
        width: channels of the input layer and the first stage; the stages have ``width * (1, 2, 4, 8)``
            (64 in the published nets).
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int] | list[int],
        *,
        input_size: int = 112,
        embedding_size: int = 512,
        dropout: float = 0.4,
        width: int = 64,
    ) -> None:
        super().__init__()
        side = feature_side(input_size)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be four positive unit counts, got {layers!r}")
        self.input_size = input_size
        self.embedding_size = embedding_size
        self.width = width
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
        )
        units: list[nn.Module] = []
        cin = width
        for n_units, cout in zip(layers, (width, 2 * width, 4 * width, 8 * width)):
            units.append(BasicBlockIR(cin, cout, stride=2))
            units.extend(BasicBlockIR(cout, cout, stride=1) for _ in range(n_units - 1))
            cin = cout
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(8 * width),
            nn.Dropout(p=dropout),
            nn.Flatten(),
            nn.Linear(8 * width * side * side, embedding_size),
            nn.BatchNorm1d(embedding_size, affine=False),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if any(t.is_meta for t in module.parameters(recurse=False)):
                continue  # meta tensors (shape-only builds, e.g. counting parameters) hold no values
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S] -> [B, E]`` with ``S = input_size``."""
        return self.output_layer(self.body(self.input_layer(x)))
