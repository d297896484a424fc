"""Homotopy schedules: sums, shapes, exact endpoints, monotonicity, sigmoid midpoint, spec validation."""

from __future__ import annotations

import math
import sys
import types

import pytest

from fp_parsing.schedules import (
    DEFAULT_END,
    DEFAULT_START,
    ScheduleError,
    build_schedule,
    schedule_table,
)

END = [0.4, 0.3, 0.3]
SPECS = {
    "constant": {"kind": "constant"},
    "linear": {"kind": "linear", "start": [1, 0, 0], "end": END},
    "sigmoid": {"kind": "sigmoid", "start": [1, 0, 0], "end": END, "steepness": 8},
    "piecewise": {"kind": "piecewise", "start": [1, 0, 0], "end": END},
    "custom_points": {"kind": "custom", "points": [[0, [1, 0, 0]], [2, [0.6, 0.4, 0.0]], [5, END]]},
}
FINE_GRID = [
    i / 8 for i in range(0, 8 * 12)
]  # fractional epochs 0 .. 11.875 (past the end of a 10-epoch run)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_weights_sum_to_one_and_lie_in_unit_interval(name: str) -> None:
    schedule = build_schedule(SPECS[name], epochs=10)
    for t in FINE_GRID:
        weights = schedule(t)
        assert len(weights) == 3 and all(isinstance(w, float) for w in weights)
        assert sum(weights) == pytest.approx(1.0, abs=1e-12)
        assert all(0.0 <= w <= 1.0 for w in weights)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_table_has_one_row_per_epoch(name: str) -> None:
    schedule = build_schedule(SPECS[name], epochs=7)
    table = schedule_table(schedule, 7)
    assert set(table) == {"epoch", "alpha", "beta", "gamma"}
    assert table["epoch"] == list(range(7)) and all(isinstance(e, int) for e in table["epoch"])
    for key in ("alpha", "beta", "gamma"):
        assert len(table[key]) == 7
    for e in range(7):
        assert (table["alpha"][e], table["beta"][e], table["gamma"][e]) == schedule(e)


def test_constant_default_is_the_single_objective_baseline() -> None:
    schedule = build_schedule(None, epochs=5)
    assert all(schedule(t) == (1.0, 0.0, 0.0) for t in FINE_GRID)
    assert build_schedule({"kind": "constant", "weights": [0.5, 0.25, 0.25]}, 3)(2.5) == (0.5, 0.25, 0.25)


@pytest.mark.parametrize("kind", ["linear", "sigmoid", "piecewise"])
def test_start_and_end_are_exact_and_each_weight_is_monotone(kind: str) -> None:
    schedule = build_schedule({"kind": kind, "start": [0.9, 0.1, 0.0], "end": [0.2, 0.5, 0.3]}, epochs=10)
    assert schedule(0) == (0.9, 0.1, 0.0)
    assert schedule(9) == (0.2, 0.5, 0.3)  # default transition [0, epochs - 1]
    assert schedule(11.5) == (0.2, 0.5, 0.3)  # held after the transition
    values = [schedule(t) for t in FINE_GRID]
    for i, direction in ((0, -1), (1, 1), (2, 1)):  # alpha falls, beta and gamma rise
        series = [direction * v[i] for v in values]
        assert all(b >= a - 1e-12 for a, b in zip(series, series[1:], strict=False)), (kind, i)


def test_defaults_are_documented_values() -> None:
    schedule = build_schedule({"kind": "linear"}, epochs=4)
    assert schedule(0) == DEFAULT_START and schedule(3) == DEFAULT_END
    assert schedule.spec == {
        "kind": "linear",
        "start": [1.0, 0.0, 0.0],
        "end": [0.4, 0.3, 0.3],
        "transition": [0.0, 3.0],
    }
    one_epoch = build_schedule({"kind": "linear"}, epochs=1)
    assert one_epoch(0) == DEFAULT_START and one_epoch(0.5) == pytest.approx((0.7, 0.15, 0.15))


def test_linear_values_by_hand() -> None:
    schedule = build_schedule(
        {"kind": "linear", "start": [1, 0, 0], "end": [0, 0.5, 0.5], "transition": [2, 6]}, 10
    )
    assert schedule(1.9) == (1.0, 0.0, 0.0)
    assert schedule(3) == pytest.approx((0.75, 0.125, 0.125), abs=1e-15)
    assert schedule(5) == pytest.approx((0.25, 0.375, 0.375), abs=1e-15)
    assert schedule(6) == (0.0, 0.5, 0.5)


@pytest.mark.parametrize("steepness", [0.5, 4.0, 10.0, 40.0])
def test_sigmoid_midpoint_is_exact_and_steepness_sharpens(steepness: float) -> None:
    spec = {
        "kind": "sigmoid",
        "start": [1, 0, 0],
        "end": [0, 0.5, 0.5],
        "transition": [2, 8],
        "steepness": steepness,
    }
    schedule = build_schedule(spec, 10)
    assert schedule(5) == pytest.approx((0.5, 0.25, 0.25), abs=1e-12)
    assert schedule(2) == (1.0, 0.0, 0.0) and schedule(8) == (0.0, 0.5, 0.5)
    # progress at a quarter of the transition, by hand: (s(k(u - 1/2)) - s(-k/2)) / (s(k/2) - s(-k/2))
    s = _sigmoid
    progress = (s(steepness * -0.25) - s(-steepness / 2)) / (s(steepness / 2) - s(-steepness / 2))
    assert schedule(3.5)[0] == pytest.approx(1 - progress, abs=1e-12)
    # and a steeper sigmoid moves less in the first quarter than a shallower one
    shallow = build_schedule({**spec, "steepness": steepness / 2}, 10)
    assert schedule(3.5)[0] >= shallow(3.5)[0]


def test_piecewise_holds_stages_between_breakpoints() -> None:
    schedule = build_schedule({"kind": "piecewise", "start": [1, 0, 0], "end": [0.4, 0.3, 0.3]}, epochs=7)
    assert schedule.spec["breakpoints"] == [2.0, 4.0]  # the transition [0, 6] in three equal stages
    assert [schedule(t) for t in (0, 1.99)] == [(1.0, 0.0, 0.0)] * 2
    assert schedule(2) == pytest.approx((0.7, 0.15, 0.15)) and schedule(3.99) == schedule(2)
    assert schedule(4) == (0.4, 0.3, 0.3) and schedule(6) == (0.4, 0.3, 0.3)
    explicit = build_schedule(
        {"kind": "piecewise", "stages": [[0, [1, 0, 0]], [2, [0.5, 0.5, 0]], [4, [0.4, 0.3, 0.3]]]}, epochs=6
    )
    assert [explicit(t) for t in (0, 1.9, 2, 3.9, 4, 5)] == [
        (1.0, 0.0, 0.0),
        (1.0, 0.0, 0.0),
        (0.5, 0.5, 0.0),
        (0.5, 0.5, 0.0),
        (0.4, 0.3, 0.3),
        (0.4, 0.3, 0.3),
    ]
    custom_breaks = build_schedule(
        {"kind": "piecewise", "start": [1, 0, 0], "end": [0, 0, 1], "breakpoints": [1, 2, 3]}, epochs=5
    )
    assert [custom_breaks(t)[2] for t in (0, 1, 2, 3, 4)] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])


def test_custom_points_interpolate_and_hold() -> None:
    schedule = build_schedule(SPECS["custom_points"], epochs=8)
    assert schedule(0) == (1.0, 0.0, 0.0)
    assert schedule(1) == pytest.approx((0.8, 0.2, 0.0))
    assert schedule(3.5) == pytest.approx((0.5, 0.35, 0.15))
    assert schedule(7) == (0.4, 0.3, 0.3)


def test_custom_function_by_import_path(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fp_test_schedule_module")

    def halfway(t: float, epochs: int) -> tuple[float, float, float]:
        p = min(t / (epochs - 1), 1.0)
        return (1 - p / 2, p / 2, 0.0)

    module.halfway = halfway  # type: ignore[attr-defined]
    module.broken = lambda t, epochs: (0.5, 0.5, 0.5)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fp_test_schedule_module", module)
    schedule = build_schedule({"kind": "custom", "function": "fp_test_schedule_module:halfway"}, epochs=5)
    assert schedule(2) == pytest.approx((0.75, 0.25, 0.0)) and schedule(4) == (0.5, 0.5, 0.0)
    with pytest.raises(ScheduleError, match="must sum to 1"):
        build_schedule({"kind": "custom", "function": "fp_test_schedule_module:broken"}, epochs=5)
    with pytest.raises(ScheduleError, match="no callable 'absent'"):
        build_schedule({"kind": "custom", "function": "fp_test_schedule_module:absent"}, epochs=5)
    with pytest.raises(ScheduleError, match="cannot import module"):
        build_schedule({"kind": "custom", "function": "no_such_module_xyz:f"}, epochs=5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "cosine"}, r"unknown schedule kind 'cosine'"),
        ({"kind": "linear", "steepness": 3}, r"unknown key\(s\) \['steepness'\] for a 'linear' schedule"),
        ({"kind": "sigmoid", "strat": [1, 0, 0]}, r"unknown key\(s\) \['strat'\]"),
        ({"kind": "linear", "end": [0.5, 0.3, 0.3]}, r"end must sum to 1"),
        ({"kind": "linear", "start": [1.2, -0.2, 0]}, r"start must be finite and non-negative"),
        ({"kind": "linear", "start": [1, 0]}, r"start must be three weights"),
        ({"kind": "constant", "weights": "abc"}, r"weights must be three weights"),
        ({"kind": "linear", "transition": [5, 2]}, r"transition must satisfy 0 <= t0 < t1"),
        ({"kind": "sigmoid", "steepness": 0}, r"steepness must be > 0"),
        ({"kind": "piecewise", "num_stages": 1}, r"num_stages must be an integer >= 2"),
        ({"kind": "piecewise", "breakpoints": [3, 2]}, r"strictly increasing"),
        ({"kind": "piecewise", "stages": [[1, [1, 0, 0]]]}, r"stages must start at epoch 0"),
        ({"kind": "piecewise", "stages": [[0, [1, 0, 0]]], "end": [0, 0, 1]}, r"remove \['end'\]"),
        ({"kind": "custom"}, r"exactly one of 'points' or 'function'"),
        ({"kind": "custom", "points": [[0, [1, 0, 0]], [0, [0, 1, 0]]]}, r"strictly increasing"),
        ({"kind": "custom", "function": "no_colon"}, r"'module:function'"),
    ],
)
def test_bad_specs_are_named(spec: dict, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        build_schedule(spec, epochs=10)


def test_bad_epochs() -> None:
    with pytest.raises(ScheduleError, match="epochs must be a positive integer"):
        build_schedule({"kind": "linear"}, epochs=0)
    schedule = build_schedule({"kind": "linear"}, epochs=3)
    with pytest.raises(ValueError, match="epoch must be a finite number >= 0"):
        schedule(-1)
    with pytest.raises(ValueError, match="epoch must be a finite number >= 0"):
        schedule(float("nan"))


def test_weight_sum_tolerance_is_one_in_a_million() -> None:
    assert build_schedule({"kind": "constant", "weights": [0.5, 0.25, 0.2500005]}, 1)(0)[2] == 0.2500005
    with pytest.raises(ScheduleError, match="must sum to 1"):
        build_schedule({"kind": "constant", "weights": [0.5, 0.25, 0.25002]}, 1)
