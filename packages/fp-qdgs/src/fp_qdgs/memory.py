"""A FIFO memory of unit image embeddings (the CLIP scorer's recently accepted images)."""

from __future__ import annotations

import torch

__all__ = ["EmbeddingMemory"]


class EmbeddingMemory:
    """Keeps the last ``capacity`` pushed embeddings ``[M, D]``, oldest first; ``M <= capacity``."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self._items is None else self._items.shape[0]

    @property
    def embeddings(self) -> torch.Tensor | None:
        """``[M, D]`` oldest first, or ``None`` while empty."""
        return self._items

    def push(self, embeddings: torch.Tensor) -> None:
        """Append ``embeddings [m, D]`` (detached); drop the oldest beyond ``capacity``."""
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must have shape [m, D], got {tuple(embeddings.shape)}")
        if embeddings.shape[0] == 0:
            return
        new = embeddings.detach()
        if self._items is not None:
            if new.shape[1] != self._items.shape[1]:
                raise ValueError(f"embedding dim {new.shape[1]} != memory dim {self._items.shape[1]}")
            new = torch.cat([self._items, new.to(self._items.device, self._items.dtype)])
        self._items = new[-self.capacity :].clone()

    def clear(self) -> None:
        """Forget everything."""
        self._items = None

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """``{"memory": [M, D]}`` (empty dict while empty), for checkpoints."""
        return {} if self._items is None else {"memory": self._items.cpu()}

    def load_state_tensors(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        """Inverse of :meth:`state_tensors`."""
        self._items = state["memory"][-self.capacity :].to(device).clone() if "memory" in state else None
