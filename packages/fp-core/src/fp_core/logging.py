"""The ``log(metrics, step)`` protocol every library takes instead of a tracking client.

The app connects it to MLflow; a library calls it with plain floats. Libraries never import mlflow or dvc.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["LogFn", "null_log", "prefixed"]


@runtime_checkable
class LogFn(Protocol):
    """``log({"train/loss": 0.3, ...}, step)``: record scalar metrics at an integer step."""

    def __call__(self, metrics: Mapping[str, float], step: int) -> None: ...


def null_log(metrics: Mapping[str, float], step: int) -> None:
    """A :class:`LogFn` that records nothing."""


def prefixed(log: LogFn, prefix: str) -> LogFn:
    """A :class:`LogFn` that puts ``prefix`` before every metric name and passes the rest to ``log``."""

    def inner(metrics: Mapping[str, float], step: int) -> None:
        log({f"{prefix}{name}": value for name, value in metrics.items()}, step)

    return inner
