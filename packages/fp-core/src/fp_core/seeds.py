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


_KEY_LIMIT = 2**31  # int keys are one spawn-key word below this; words from it up start a string key
_SEED_LIMIT = 2**128  # the seed fills at most the 4-word entropy pool, so it never runs into the keys


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _keys(keys: tuple[int | str, ...]) -> tuple[int, ...]:
    """The spawn key for ``keys``: distinct key tuples give distinct word sequences.

    An int key ``k`` (``0 <= k < 2**31``) is the word ``k``, as in ``SeedSequence.spawn``. A string key is the
    word ``2**31 + len(utf8)`` followed by its UTF-8 bytes in little-endian 32-bit words (zero-padded): a
    reader going left to right tells ints from strings by the top bit, so no two key tuples share a spawn
    key (unlike reading a string's bytes as one big integer, which ``SeedSequence`` would split into words
    that equal some tuple of ints).
    """
    out: list[int] = []
    for key in keys:
        if isinstance(key, str):
            data = key.encode("utf-8")
            if len(data) >= _KEY_LIMIT:
                raise ValueError("seed key strings must be shorter than 2**31 bytes")
            out.append(_KEY_LIMIT + len(data))
            padded = data + b"\0" * (-len(data) % 4)
            out.extend(int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4))
        elif _is_int(key):
            if not 0 <= int(key) < _KEY_LIMIT:
                raise ValueError(f"seed keys must be ints in [0, 2**31) or strings, got {int(key)}")
            out.append(int(key))
        else:
            raise TypeError(f"seed keys must be ints >= 0 or strings, got {key!r}")
    return tuple(out)


def seed_sequence(seed: int, *keys: int | str) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream ``keys`` under root ``seed`` (``0 <= seed < 2**128``).

    With int keys only, this is ``SeedSequence(seed, spawn_key=keys)``: the same stream as
    ``SeedSequence(seed).spawn(n)[k]`` for ``keys == (k,)``. Raises ``ValueError`` for a negative or too large
    seed or int key and ``TypeError`` for a key that is neither an int nor a string (``bool`` included).
    """
    if not _is_int(seed) or not 0 <= int(seed) < _SEED_LIMIT:
        raise ValueError(f"seed must be an int in [0, 2**128), got {seed!r}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=_keys(keys))


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit integer seed for stream ``keys`` under ``seed`` (for ``torch.Generator.manual_seed``)."""
    state = seed_sequence(seed, *keys).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 32 | int(state[1])) & (2**63 - 1))


def torch_generator(seed: int, *keys: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))
