"""Seeds derived with ``numpy.random.SeedSequence``: one root seed, many independent streams.

``derive_seed(seed, *keys)`` is the seed of the stream addressed by ``keys`` (epoch, step, purpose, ...) under
the run's ``seed``. Different ``(seed, keys)`` give statistically independent streams; no arithmetic mix of
the numbers can make two of them collide (``(1, 0, 27)`` and ``(0, 10, 0)`` are different streams, unlike a
linear mix such as ``seed * a + epoch * b + step``).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["derive_seed", "seed_sequence", "torch_generator"]


def _keys(keys: tuple[int | str, ...]) -> tuple[int, ...]:
    out = []
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise TypeError(f"seed keys must be ints >= 0 or strings, got {key!r}")
        if isinstance(key, str):  # a purpose name: its UTF-8 bytes as one integer
            out.append(int.from_bytes(key.encode("utf-8"), "little"))
        elif key < 0:
            raise ValueError(f"seed keys must be >= 0, got {key}")
        else:
            out.append(key)
    return tuple(out)


def seed_sequence(seed: int, *keys: int | str) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream ``keys`` under root ``seed`` (``spawn_key=keys``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return np.random.SeedSequence(entropy=seed, spawn_key=_keys(keys))


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit integer seed for stream ``keys`` under ``seed`` (for ``torch.Generator.manual_seed``)."""
    state = seed_sequence(seed, *keys).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & (2**63 - 1))


def torch_generator(seed: int, *keys: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))
