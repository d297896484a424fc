"""A small in-memory dataset with the item layout of ``CelebAMaskHQ`` (for training / evaluation tests)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

ATTRIBUTES = ["Male", "Young", "Pale_Skin", "Eyeglasses", "Wearing_Hat", "Smiling"]


class ToyFaces(Dataset):
    """``n`` images ``[3, size, size]`` whose masks are a disc (class 1) on background, plus a square
    (class 2) whose colour depends on a "skin tone" group; attributes derived from the index."""

    class_names = ["background", "skin", "hair"]
    attribute_names = ATTRIBUTES
    skin_tone_groups = ["light", "dark"]

    def __init__(self, n: int = 8, size: int = 32, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        self.items = []
        for i in range(n):
            cx, cy = (torch.randint(size // 3, 2 * size // 3, (2,), generator=generator)).tolist()
            radius = size // 4
            mask = torch.zeros(size, size, dtype=torch.int64)
            mask[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2] = 1
            mask[: size // 4, :] = 2
            tone = i % 4 == 3  # one in four "dark"
            colours = torch.tensor([[0.2, 0.5, 0.8], [0.9, 0.7, 0.6], [0.3, 0.2, 0.1]])
            if tone:
                colours[1] = torch.tensor([0.35, 0.25, 0.2])
            image = colours[mask].permute(2, 0, 1).clone()
            image += 0.05 * torch.randn(image.shape, generator=generator)
            attributes = torch.tensor([(i >> b) & 1 for b in range(len(ATTRIBUTES))], dtype=torch.int64)
            self.items.append(
                {
                    "image": image.clamp(0, 1).float(),
                    "mask": mask,
                    "attributes": attributes,
                    "skin_tone": torch.tensor(int(tone)),
                    "identity": torch.tensor(i // 2),
                    "index": torch.tensor(i),
                }
            )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return dict(self.items[k])
