"""EpochPermutation: the order is randperm under (seed, *stream, epoch) and nothing else."""

from __future__ import annotations

import pytest
import torch

from fp_core.sampling import EpochPermutation
from fp_core.seeds import torch_generator


def test_order_is_randperm_of_seed_stream_and_epoch() -> None:
    sampler = EpochPermutation(12, 7, "clip", "order")
    sampler.set_epoch(3)
    expected = torch.randperm(12, generator=torch_generator(7, "clip", "order", 3)).tolist()
    assert list(sampler) == expected
    assert list(sampler) == expected  # iterating again gives the same epoch's order
    assert sorted(sampler) == list(range(12)) and len(sampler) == 12


def test_default_stream_is_order_and_streams_epochs_differ() -> None:
    default, named = EpochPermutation(50, 1), EpochPermutation(50, 1, "order")
    assert list(default) == list(named)
    other = EpochPermutation(50, 1, "vae", "order")
    assert list(other) != list(named)
    named.set_epoch(1)
    assert list(named) != list(default)


def test_repeats_concatenate_shuffles_whose_first_is_the_single_one() -> None:
    one, three = EpochPermutation(6, 2, "x"), EpochPermutation(6, 2, "x", repeats=3)
    one.set_epoch(4)
    three.set_epoch(4)
    order = list(three)
    assert len(three) == 18 and len(order) == 18
    assert order[:6] == list(one)
    assert order[6:12] == torch.randperm(6, generator=torch_generator(2, "x", 4, 1)).tolist()
    assert all(sorted(order[k : k + 6]) == list(range(6)) for k in (0, 6, 12))
    with pytest.raises(ValueError, match="repeats"):
        EpochPermutation(6, 2, repeats=0)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_length_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="num_items"):
        EpochPermutation(bad, 0)  # type: ignore[arg-type]
