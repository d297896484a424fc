"""Global-batch plumbing of the parsing objectives under ``torch.distributed`` (``accelerate launch``).

Every objective is built from statistics summed over the ranks by :func:`global_sum` (a differentiable
all_reduce), so each rank holds the global batch's terms; :class:`BatchSlice` says where a rank's images sit in
the global batch, so random draws per image agree with one process; :func:`frozen_batchnorm_stats` keeps an
extra forward (input-mode robustness) from updating BatchNorm's running statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["BatchSlice", "distributed_world", "frozen_batchnorm_stats", "global_sum"]


def distributed_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` when ``torch.distributed`` is not
    available or not initialised."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def global_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` (any shape) over the ranks, differentiably; the identity on one process.

    Uses ``torch.distributed.nn.functional.all_reduce`` (op SUM), whose backward all-reduces (sums) the
    incoming gradients: if every rank computes the same scalar ``L(S)`` of the global sum ``S = sum_r s_r``,
    rank ``r``'s backward gives ``W * dL/dS * ds_r/dtheta``, ``W`` times its local contribution, and the
    mean over ranks (DDP's gradient averaging) is ``dL/dS * sum_r ds_r/dtheta``: the global-batch gradient.
    """
    if distributed_world()[1] <= 1:
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor.contiguous())


@dataclass(frozen=True)
class BatchSlice:
    """Where this call's ``B`` images sit in the global batch, for the random draws.

    Attributes:
        offset: index of this call's first image in the global batch (``rank * B`` under even sharding).
        global_size: images in the global batch (``world_size * B``).
        block: the input-mode subset is drawn per block of ``block`` consecutive global images (stratified:
            ``max(1, round(input_share * block))`` images of every block); ``offset``, ``B`` and
            ``global_size`` must be multiples of it. One rank's slice is the natural block (``B``).
    """

    offset: int
    global_size: int
    block: int

    def check(self, batch: int) -> None:
        """Raises ``ValueError`` unless ``batch`` images at ``offset`` are whole blocks of the global batch."""
        if self.block < 1 or self.offset < 0 or self.offset + batch > self.global_size:
            raise ValueError(f"{self} does not hold {batch} images at offset {self.offset}")
        if self.offset % self.block or batch % self.block or self.global_size % self.block:
            raise ValueError(
                f"{self}: offset, batch size {batch} and global_size must be multiples of block={self.block}"
            )


@contextmanager
def frozen_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Within the block, BatchNorm layers in train mode normalise with the batch statistics but do not
    update ``running_mean``, ``running_var`` or ``num_batches_tracked`` (``track_running_stats`` is switched
    off and restored afterwards). Layers in eval mode keep using their running statistics."""
    layers = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True
