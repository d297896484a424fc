from __future__ import annotations

import pytest

from fp_qdgs import QDGSSampler, SamplerConfig
from fp_qdgs.toy import LinearSigmoidGenerator, SphereScorer


def _config(**kw):
    base = {"measure_dims": (4, 4), "measure_ranges": ((-1, 1), (-1, 1))}
    return SamplerConfig(**{**base, **kw})


def test_reversed_or_empty_range_is_an_error():
    with pytest.raises(ValueError, match=r"measure_ranges\[1\] = \(2.0, -2.0\) is reversed"):
        _config(measure_ranges=((-1, 1), (2, -2)))
    with pytest.raises(ValueError, match="reversed or empty"):
        _config(measure_ranges=((0, 0), (-1, 1)))


def test_dims_and_ranges_must_pair_up():
    with pytest.raises(ValueError, match="measure_dims has 3 entries but measure_ranges has 2"):
        _config(measure_dims=(4, 4, 4))


def test_archive_dims_must_match_k():
    config = _config(measure_dims=(4, 4, 4), measure_ranges=((-1, 1),) * 3)
    with pytest.raises(ValueError, match="k=2 measures but the archive config has 3 dimensions"):
        QDGSSampler(LinearSigmoidGenerator(), SphereScorer(), config)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("selection_rule", "best", "selection_rule"),
        ("restart_rule", "never", "restart_rule"),
        ("restart_rule", 0, "restart_rule"),
        ("learning_rate", 0.0, "learning_rate"),
        ("threshold_min", float("-inf"), "threshold_min"),
        ("batch_size", 0, "batch_size"),
        ("sigma0", -1.0, "sigma0"),
    ],
)
def test_bad_settings(field, value, match):
    with pytest.raises(ValueError, match=match):
        _config(**{field: value})


def test_round_trip_and_counts():
    config = _config(num_emitters=2, batch_size=5, restart_rule=7)
    assert SamplerConfig.from_dict(config.to_dict()) == config
    assert config.evaluations_per_iteration == 12
    assert config.num_cells == 16
