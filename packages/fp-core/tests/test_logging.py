"""The ``log(metrics, step)`` protocol: ``null_log`` and ``prefixed`` are log functions."""

from __future__ import annotations

from collections.abc import Mapping

from fp_core.logging import LogFn, null_log, prefixed


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, float], int]] = []

    def __call__(self, metrics: Mapping[str, float], step: int) -> None:
        self.calls.append((dict(metrics), step))


def test_null_log_and_prefixed_satisfy_the_protocol() -> None:
    assert isinstance(null_log, LogFn)
    assert isinstance(prefixed(null_log, "x/"), LogFn)
    assert isinstance(Recorder(), LogFn)
    assert not isinstance(3, LogFn)
    assert null_log({"loss": 1.0}, 0) is None


def test_prefixed_puts_the_prefix_before_every_name() -> None:
    recorder = Recorder()
    log = prefixed(recorder, "train/")
    log({"loss": 0.5, "acc": 0.75}, 3)
    log({}, 4)
    assert recorder.calls == [({"train/loss": 0.5, "train/acc": 0.75}, 3), ({}, 4)]


def test_prefixes_nest() -> None:
    recorder = Recorder()
    prefixed(prefixed(recorder, "b/"), "a/")({"m": 1.0}, 0)
    assert recorder.calls == [({"b/a/m": 1.0}, 0)]
