"""The VGG19 feature extractor of the perceptual loss, from torchvision's ImageNet weights found offline.

The weights are torchvision's ``vgg19-dcbb9e9d.pth``, looked up with :func:`fp_core.weights.find_weight_file`
(an explicit path, then ``$FP_WEIGHTS_DIR`` / ``~/.cache/fp``, then torch hub's ``checkpoints`` folder) and
read with ``torch.load(weights_only=True)``. Nothing is downloaded; a missing file is a
:class:`fp_core.weights.WeightsNotFoundError` (the losses turn the term off and say so).

Inputs are generator images in [-1, 1]; they are mapped to [0, 1] and normalised with ImageNet's mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), the statistics the weights were trained with (upstream
pix2pixHD feeds [-1, 1] images unnormalised; we follow torchvision's convention instead).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from fp_core.weights import find_weight_file

__all__ = ["VGG19_FILE", "VGG19_URL", "VGG_LAYER_WEIGHTS", "VGG19Features", "find_vgg19_weights"]

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
# slice ends in torchvision's vgg19().features: relu1_1 = 1, relu2_1 = 6, relu3_1 = 11, relu4_1 = 20,
# relu5_1 = 29 (index of the ReLU; the slice ends after it)
_SLICE_ENDS = (2, 7, 12, 21, 30)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def find_vgg19_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The local ``vgg19-dcbb9e9d.pth`` (raises :class:`fp_core.weights.WeightsNotFoundError`)."""
    return find_weight_file(
        VGG19_FILE,
        VGG19_URL,
        path=path,
        extra_dirs=[Path(torch.hub.get_dir()) / "checkpoints"],
        what="VGG19 weights for the Pix2PixHD perceptual loss",
    )


class VGG19Features(nn.Module):
    """Frozen VGG19 up to relu5_1: ``images [B, 3, H, W]`` in [-1, 1] -> the 5 feature maps of
    :data:`VGG_LAYERS`."""

    def __init__(self, weights_file: str | os.PathLike[str]) -> None:
        super().__init__()
        from torchvision.models import vgg19

        with torch.device("meta"):  # no time spent initialising weights that are replaced
            features = vgg19(weights=None).features
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
        prefix = "features."
        own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not own:
            raise ValueError(f"{weights_file}: no 'features.*' tensors; expected torchvision's {VGG19_FILE}")
        features.load_state_dict(own, assign=True)
        starts = (0, *_SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(
            nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in zip(starts, _SLICE_ENDS)
        )
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        """Always in eval mode (frozen feature extractor)."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images + 1) / 2 - self.mean) / self.std
        outputs = []
        for block in self.slices:
            x = block(x)
            outputs.append(x)
        return outputs
