"""Seeds from ``SeedSequence``: deterministic, collision-free, strict about their keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fp_core.seeds import derive_seed, seed_sequence, torch_generator


def test_the_old_linear_mix_collision_is_gone() -> None:
    assert derive_seed(1, 0, 27) != derive_seed(0, 10, 0)


def test_deterministic_and_63_bit() -> None:
    assert derive_seed(7, 3, "train") == derive_seed(7, 3, "train")
    seeds = [derive_seed(s, k) for s in range(5) for k in range(5)]
    assert all(0 <= s < 2**63 for s in seeds)
    a = torch.rand(4, generator=torch_generator(7, 3))
    b = torch.rand(4, generator=torch_generator(7, 3))
    assert torch.equal(a, b) and not torch.equal(a, torch.rand(4, generator=torch_generator(7, 4)))


def test_int_keys_are_numpy_spawn_keys() -> None:
    spawned = np.random.SeedSequence(5).spawn(4)[3]
    assert np.array_equal(seed_sequence(5, 3).generate_state(4), spawned.generate_state(4))
    assert derive_seed(5, np.int64(3)) == derive_seed(5, 3)


def test_no_collisions_over_seeds_epochs_and_steps() -> None:
    seeds = {derive_seed(s, e, t) for s in range(4) for e in range(50) for t in range(200)}
    assert len(seeds) == 4 * 50 * 200


def test_keys_of_different_lengths_and_types_are_different_streams() -> None:
    keys = [
        (),
        (0,),
        (0, 0),
        (1,),
        (0, 1),
        ("",),
        ("a",),
        ("a", "b"),
        ("ab",),
        (97,),  # the bytes of "a" read as an integer
        ("a\0",),
        ("abcde",),
        (1684234849, 101),  # the 32-bit words of "abcde"
        ("train",),
        ("eval",),
        ("train", 0),
        (0, "train"),
    ]
    seeds = [derive_seed(3, *k) for k in keys]
    assert len(set(seeds)) == len(keys)
    assert derive_seed(3, "é") != derive_seed(3, "e")


def test_invalid_seeds_and_keys() -> None:
    with pytest.raises(ValueError, match=">= 0|\\[0, 2\\*\\*31\\)"):
        derive_seed(0, -1)
    with pytest.raises(ValueError, match="2\\*\\*31"):
        derive_seed(0, 2**31)
    with pytest.raises(TypeError, match="True"):
        derive_seed(0, True)
    with pytest.raises(TypeError, match="1.5"):
        derive_seed(0, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1, 0)
    with pytest.raises(ValueError, match="seed"):
        derive_seed(False, 0)
    with pytest.raises(ValueError, match="seed"):
        derive_seed(2**128)
