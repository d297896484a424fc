"""Homotopy schedules: the weights ``(alpha, beta, gamma)`` of Dice, robustness and fairness over training.

``build_schedule(spec, epochs)`` turns a params dict into a :class:`Schedule`; ``schedule(t)`` gives the
weights at (fractional) epoch ``t`` with ``alpha + beta + gamma = 1`` and every weight in [0, 1]. Training
starts accuracy-first and shifts towards robustness and fairness. The formulas are in ``docs/parsing.md``;
in short, with ``w0 = start``, ``w1 = end`` and the transition ``[t0, t1]``:

* ``constant``: ``w(t) = weights`` (default ``[1, 0, 0]``: the single-objective baseline).
* ``linear``:   ``w(t) = w0 + (w1 - w0) * p(t)``, ``p(t) = clip((t - t0) / (t1 - t0), 0, 1)``.
* ``sigmoid``:  the same with ``p(t) = (s(u) - s(0)) / (s(1) - s(0))``, ``s(u) = 1 / (1 + exp(-k (u - 1/2)))``,
  ``u = clip((t - t0) / (t1 - t0), 0, 1)``: exactly ``w0`` at ``t0``, ``w1`` at ``t1``, the midpoint at
  ``(t0 + t1) / 2``, and steeper with ``k`` (``steepness``).
* ``piecewise``: held stages. ``stages: [[epoch, [a, b, c]], ...]`` explicitly, or ``num_stages`` ``n``
  (default 3) stages stepping evenly from ``w0`` to ``w1`` (stage ``i`` holds ``w0 + (w1 - w0) i / (n - 1)``),
  starting at ``breakpoints`` (default: the transition split into ``n`` equal parts, stage ``i`` from
  ``t0 + (t1 - t0) i / n``; the last stage, ``w1``, lasts through ``t1``).
* ``custom``: ``points: [[epoch, [a, b, c]], ...]`` linearly interpolated (held before the first and after
  the last point), or ``function: "module:function"`` called as ``function(t, epochs) -> (a, b, c)``.

Weight triples in a spec must be non-negative and sum to 1 within 1e-6: they are checked, never silently
normalised (a triple that does not sum to 1 is more likely a typo than an intention).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "SCHEDULE_KINDS",
    "Schedule",
    "ScheduleError",
    "Weights",
    "build_schedule",
    "schedule_csv",
    "schedule_table",
]

Weights = tuple[float, float, float]
SCHEDULE_KINDS = ("constant", "linear", "sigmoid", "piecewise", "custom")
DEFAULT_START: Weights = (1.0, 0.0, 0.0)
DEFAULT_END: Weights = (0.4, 0.3, 0.3)
DEFAULT_STEEPNESS = 10.0
DEFAULT_NUM_STAGES = 3
_SUM_TOLERANCE = 1e-6
_ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "constant": frozenset({"kind", "weights"}),
    "linear": frozenset({"kind", "start", "end", "transition"}),
    "sigmoid": frozenset({"kind", "start", "end", "transition", "steepness"}),
    "piecewise": frozenset({"kind", "start", "end", "transition", "breakpoints", "num_stages", "stages"}),
    "custom": frozenset({"kind", "points", "function"}),
}


class ScheduleError(ValueError):
    """A schedule spec is invalid (the message names the offending key or value)."""


def _weights(value: Any, where: str) -> Weights:
    """Check a weight triple: three finite numbers >= 0 summing to 1 within 1e-6."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 3:
        raise ScheduleError(f"{where} must be three weights [alpha, beta, gamma], got {value!r}")
    try:
        triple = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ScheduleError(f"{where} must hold numbers, got {value!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in triple):
        raise ScheduleError(f"{where} must be finite and non-negative, got {list(triple)}")
    if abs(sum(triple) - 1.0) > _SUM_TOLERANCE:
        raise ScheduleError(
            f"{where} must sum to 1 (within {_SUM_TOLERANCE}), got {list(triple)} (sum {sum(triple)})"
        )
    return triple  # type: ignore[return-value]


def _renormalised(a: float, b: float, c: float) -> Weights:
    """Clip float noise below 0 and rescale so that the sum is 1 up to rounding."""
    a, b, c = max(a, 0.0), max(b, 0.0), max(c, 0.0)
    total = a + b + c
    return (a / total, b / total, c / total)


def _mix(w0: Weights, w1: Weights, p: float) -> Weights:
    if p <= 0.0:
        return w0
    if p >= 1.0:
        return w1
    return _renormalised(*(x + (y - x) * p for x, y in zip(w0, w1, strict=True)))


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScheduleError(f"{where} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ScheduleError(f"{where} must be finite, got {value!r}")
    return number


def _default_transition(epochs: int) -> tuple[float, float]:
    """The whole run: ``[0, epochs - 1]`` so that the last epoch trains at ``end`` (``[0, 1]`` for one epoch)."""
    return 0.0, float(max(epochs - 1, 1))


def _transition(spec: Mapping[str, Any], epochs: int) -> tuple[float, float]:
    if "transition" not in spec:
        return _default_transition(epochs)
    value = spec["transition"]
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ScheduleError(f"transition must be two epochs [t0, t1], got {value!r}")
    t0, t1 = _number(value[0], "transition[0]"), _number(value[1], "transition[1]")
    if t0 < 0 or t1 <= t0:
        raise ScheduleError(f"transition must satisfy 0 <= t0 < t1, got {[t0, t1]}")
    return t0, t1


def _points(value: Any, key: str) -> list[tuple[float, Weights]]:
    """``[[epoch, [a, b, c]], ...]`` with strictly increasing epochs >= 0."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ScheduleError(f"{key} must be a non-empty list of [epoch, [alpha, beta, gamma]], got {value!r}")
    points: list[tuple[float, Weights]] = []
    for i, item in enumerate(value):
        if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
            raise ScheduleError(f"{key}[{i}] must be [epoch, [alpha, beta, gamma]], got {item!r}")
        epoch = _number(item[0], f"{key}[{i}][0] (epoch)")
        if epoch < 0 or (points and epoch <= points[-1][0]):
            raise ScheduleError(
                f"{key}: epochs must be >= 0 and strictly increasing, got {epoch} at index {i}"
            )
        points.append((epoch, _weights(item[1], f"{key}[{i}][1]")))
    return points


class Schedule:
    """Weights ``(alpha, beta, gamma)`` of (Dice, robustness, fairness) as a function of the epoch.

    ``schedule(t)`` for a fractional epoch ``t >= 0`` (``epoch + step / steps_per_epoch``) returns three
    floats in [0, 1] that sum to 1. ``spec`` is the resolved spec (defaults filled in, JSON-ready).
    """

    def __init__(
        self, kind: str, epochs: int, spec: dict[str, Any], weights_at: Callable[[float], Weights]
    ) -> None:
        self.kind = kind
        self.epochs = epochs
        self.spec = spec
        self._weights_at = weights_at

    def __call__(self, epoch: float) -> Weights:
        t = float(epoch)
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"schedule epoch must be a finite number >= 0, got {epoch!r}")
        return self._weights_at(t)

    def __repr__(self) -> str:
        return f"Schedule({self.spec!r}, epochs={self.epochs})"


def _interpolated(points: list[tuple[float, Weights]]) -> Callable[[float], Weights]:
    def weights_at(t: float) -> Weights:
        if t <= points[0][0]:
            return points[0][1]
        for (e0, w0), (e1, w1) in zip(points, points[1:], strict=False):
            if t < e1:
                return _mix(w0, w1, (t - e0) / (e1 - e0))
        return points[-1][1]

    return weights_at


def _held(stages: list[tuple[float, Weights]]) -> Callable[[float], Weights]:
    def weights_at(t: float) -> Weights:
        current = stages[0][1]
        for epoch, weights in stages:
            if t >= epoch:
                current = weights
        return current

    return weights_at


def _ramp(
    start: Weights, end: Weights, t0: float, t1: float, progress: Callable[[float], float]
) -> Callable[[float], Weights]:
    def weights_at(t: float) -> Weights:
        u = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
        return _mix(start, end, progress(u))

    return weights_at


def _sigmoid_progress(steepness: float) -> Callable[[float], float]:
    def sigma(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x))

    low, high = sigma(-steepness / 2), sigma(steepness / 2)

    def progress(u: float) -> float:
        if u <= 0.0:
            return 0.0
        if u >= 1.0:
            return 1.0
        return (sigma(steepness * (u - 0.5)) - low) / (high - low)

    return progress


def _import_function(path: Any) -> Callable[[float, int], Sequence[float]]:
    if not isinstance(path, str) or path.count(":") != 1:
        raise ScheduleError(f"function must be an import path 'module:function', got {path!r}")
    module_name, attribute = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ScheduleError(f"function {path!r}: cannot import module {module_name!r} ({error})") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ScheduleError(f"function {path!r}: {module_name} has no callable {attribute!r}")
    return function


def build_schedule(spec: Mapping[str, Any] | None, epochs: int) -> Schedule:
    """A :class:`Schedule` from a params dict (``kind`` defaults to ``"constant"``).

    Keys per kind: ``constant``: weights; ``linear``: start, end, transition; ``sigmoid``: start, end,
    transition, steepness (> 0, default 10); ``piecewise``: start, end, transition, breakpoints, num_stages,
    or stages; ``custom``: points or function. Defaults: start ``[1, 0, 0]``, end ``[0.4, 0.3, 0.3]``,
    transition ``[0, epochs - 1]`` (``[0, 1]`` when ``epochs == 1``). Raises :class:`ScheduleError` naming
    an unknown kind or key, or a bad value.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ScheduleError(f"epochs must be a positive integer, got {epochs!r}")
    spec = dict(spec or {})
    kind = spec.get("kind", "constant")
    if kind not in SCHEDULE_KINDS:
        raise ScheduleError(f"unknown schedule kind {kind!r}; expected one of {list(SCHEDULE_KINDS)}")
    unknown = sorted(set(spec) - _ALLOWED_KEYS[kind])
    if unknown:
        raise ScheduleError(
            f"unknown key(s) {unknown} for a {kind!r} schedule; allowed: {sorted(_ALLOWED_KEYS[kind])}"
        )

    if kind == "constant":
        weights = _weights(spec.get("weights", DEFAULT_START), "weights")
        return Schedule(kind, epochs, {"kind": kind, "weights": list(weights)}, lambda t: weights)

    if kind == "custom":
        if ("points" in spec) == ("function" in spec):
            raise ScheduleError("a 'custom' schedule needs exactly one of 'points' or 'function'")
        if "points" in spec:
            points = _points(spec["points"], "points")
            resolved = {"kind": kind, "points": [[e, list(w)] for e, w in points]}
            return Schedule(kind, epochs, resolved, _interpolated(points))
        function = _import_function(spec["function"])
        name = spec["function"]

        def call_function(t: float) -> Weights:
            return _renormalised(*_weights(function(t, epochs), f"{name}({t}, {epochs})"))

        call_function(0.0)  # fail at build time on a function that returns nonsense
        return Schedule(kind, epochs, {"kind": kind, "function": name}, call_function)

    if kind == "piecewise" and "stages" in spec:
        clash = sorted({"start", "end", "transition", "breakpoints", "num_stages"} & set(spec))
        if clash:
            raise ScheduleError(f"'stages' gives the whole piecewise schedule; remove {clash}")
        stages = _points(spec["stages"], "stages")
        if stages[0][0] != 0:
            raise ScheduleError(f"stages must start at epoch 0, got {stages[0][0]}")
        resolved = {"kind": kind, "stages": [[e, list(w)] for e, w in stages]}
        return Schedule(kind, epochs, resolved, _held(stages))

    start = _weights(spec.get("start", DEFAULT_START), "start")
    end = _weights(spec.get("end", DEFAULT_END), "end")
    t0, t1 = _transition(spec, epochs)
    resolved = {"kind": kind, "start": list(start), "end": list(end), "transition": [t0, t1]}

    if kind == "linear":
        return Schedule(kind, epochs, resolved, _ramp(start, end, t0, t1, lambda u: u))

    if kind == "sigmoid":
        steepness = _number(spec.get("steepness", DEFAULT_STEEPNESS), "steepness")
        if steepness <= 0:
            raise ScheduleError(f"steepness must be > 0, got {steepness}")
        resolved["steepness"] = steepness
        return Schedule(kind, epochs, resolved, _ramp(start, end, t0, t1, _sigmoid_progress(steepness)))

    # piecewise from start / end: num_stages held stages, the i-th at weights start + (end - start) * i / (n - 1)
    if "breakpoints" in spec:
        raw = spec["breakpoints"]
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence) or not raw:
            raise ScheduleError(f"breakpoints must be a non-empty list of epochs, got {raw!r}")
        breakpoints = [_number(b, f"breakpoints[{i}]") for i, b in enumerate(raw)]
        if breakpoints[0] <= 0 or any(b1 <= b0 for b0, b1 in zip(breakpoints, breakpoints[1:], strict=False)):
            raise ScheduleError(f"breakpoints must be > 0 and strictly increasing, got {breakpoints}")
        if "num_stages" in spec and spec["num_stages"] != len(breakpoints) + 1:
            raise ScheduleError(
                f"num_stages={spec['num_stages']} disagrees with {len(breakpoints)} breakpoints "
                f"(which make {len(breakpoints) + 1} stages)"
            )
        if "transition" in spec:
            raise ScheduleError(
                "give either 'breakpoints' or 'transition' for a piecewise schedule, not both"
            )
        num_stages = len(breakpoints) + 1
        del resolved["transition"]
    else:
        num_stages = spec.get("num_stages", DEFAULT_NUM_STAGES)
        if isinstance(num_stages, bool) or not isinstance(num_stages, int) or num_stages < 2:
            raise ScheduleError(f"num_stages must be an integer >= 2, got {num_stages!r}")
        breakpoints = [t0 + (t1 - t0) * i / num_stages for i in range(1, num_stages)]
    resolved["num_stages"] = num_stages
    resolved["breakpoints"] = breakpoints
    stage_starts = [0.0, *breakpoints]
    stages = [(epoch, _mix(start, end, i / (num_stages - 1))) for i, epoch in enumerate(stage_starts)]
    return Schedule(kind, epochs, resolved, _held(stages))


def schedule_table(schedule: Schedule, epochs: int | None = None) -> dict[str, list[float]]:
    """One row per epoch ``0 .. epochs - 1``: ``{"epoch": [0, 1, ...] (ints), "alpha", "beta", "gamma"}``."""
    epochs = schedule.epochs if epochs is None else epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    table: dict[str, list[float]] = {
        "epoch": [e for e in range(epochs)],
        "alpha": [],
        "beta": [],
        "gamma": [],
    }
    for epoch in range(epochs):
        alpha, beta, gamma = schedule(epoch)
        table["alpha"].append(alpha)
        table["beta"].append(beta)
        table["gamma"].append(gamma)
    return table


def schedule_csv(table: dict[str, list[float]]) -> str:
    """A :func:`schedule_table` as CSV text (``epoch,alpha,beta,gamma`` header, one row per epoch)."""
    rows = ["epoch,alpha,beta,gamma"] + [
        f"{e},{a:.6f},{b:.6f},{g:.6f}"
        for e, a, b, g in zip(table["epoch"], table["alpha"], table["beta"], table["gamma"], strict=True)
    ]
    return "\n".join(rows) + "\n"
