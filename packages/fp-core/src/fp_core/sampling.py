"""A shuffling sampler whose order depends only on ``(seed, stream, epoch)``: what makes resume exact.

The training harness calls ``set_epoch(epoch)`` on the loader's sampler before each epoch and skips the batches
a resumed epoch already trained on, so with this sampler a resumed run sees exactly the batches of an
uninterrupted one. Each trainer names its own ``stream`` (e.g. ``("order",)`` for the parser,
``("clip", "order")`` for the embedded CLIP) so two trainers with the same seed do not share an order.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from fp_core.seeds import torch_generator

__all__ = ["EpochPermutation"]


class EpochPermutation(Sampler[int]):
    """Indices ``0 .. N-1`` in the order of ``torch.randperm(N)`` under the generator of
    ``(seed, *stream, epoch)`` (:func:`fp_core.seeds.torch_generator`); with ``repeats = R > 1`` an epoch is
    ``R`` such shuffles one after another, the ``r``-th (``r >= 1``) under ``(seed, *stream, epoch, r)``
    (fewer, longer epochs on a small dataset: fewer epoch-end checkpoints and evaluations).

    Args:
        num_items: N, the dataset's length.
        seed: the run's seed.
        stream: the names that make this trainer's order its own (default ``("order",)``).
        repeats: shuffles per epoch (``len`` is ``N * repeats``).
    """

    def __init__(self, num_items: int, seed: int, *stream: str | int, repeats: int = 1) -> None:
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 0:
            raise ValueError(f"num_items must be an int >= 0, got {num_items!r}")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
        self.num_items, self.seed, self.epoch, self.repeats = num_items, seed, 0, repeats
        self.stream: tuple[str | int, ...] = stream or ("order",)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        order: list[int] = []
        for r in range(self.repeats):
            keys = (self.epoch,) if r == 0 else (self.epoch, r)
            generator = torch_generator(self.seed, *self.stream, *keys)
            order += torch.randperm(self.num_items, generator=generator).tolist()
        return iter(order)

    def __len__(self) -> int:
        return self.num_items * self.repeats
