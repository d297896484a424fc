"""Which exceptions are the user's to fix (shown as one ``fp: error: ...`` line) and which are bugs.

A *user error* is a problem with the data, the params file, the weights or another input, that the person
running ``fp`` fixes by changing one of them. Such errors are:

- :class:`FpError` (and subclasses): what the app's own stages raise;
- ``FileNotFoundError`` and ``NotADirectoryError`` (an expected input is not there; covers
  ``fp_core.weights.WeightsNotFoundError`` and ``fp_parsing.model.EncoderWeightsUnavailable``);
- every exception class defined in one of the project's packages (a module named ``fp_*``), such as
  ``fp_pipeline.config.ParamsError``, ``fp_parsing.train.ConfigError``,
  ``fp_parsing.data.DataFormatError``, ``fp_parsing.schedules.ScheduleError`` or
  ``fp_pipeline.synth.config.SynthConfigError``. Libraries signal a user error by raising a class of their
  own (usually a ``ValueError`` subclass); builtin exceptions such as a bare ``ValueError``,
  ``TypeError`` or ``KeyError`` are treated as bugs and keep their traceback.
"""

from __future__ import annotations

import os

__all__ = ["DEBUG_ENV", "USER_ERROR_TYPES", "FpError", "debug_requested", "is_user_error", "one_line"]

#: ``FP_DEBUG=1`` shows the full traceback of user errors too (like ``fp --debug``)
DEBUG_ENV = "FP_DEBUG"


class FpError(Exception):
    """A problem the user fixes in the data, params or environment; ``fp`` prints it as one line."""


#: builtin exception types that are user errors (besides the project's own classes)
USER_ERROR_TYPES: tuple[type[BaseException], ...] = (FpError, FileNotFoundError, NotADirectoryError)

_PROJECT_PREFIX = "fp_"


def _defined_in_project(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return module.split(".", 1)[0].startswith(_PROJECT_PREFIX)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is one the user fixes (see the module docstring), not a bug."""
    if not isinstance(error, Exception):
        return False  # KeyboardInterrupt, SystemExit
    if isinstance(error, USER_ERROR_TYPES):
        return True
    return any(_defined_in_project(cls) for cls in type(error).__mro__ if issubclass(cls, Exception))


def one_line(error: BaseException) -> str:
    """The error's message on one line (line breaks become ``"; "``), or its type name when it has none."""
    parts = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(parts) or type(error).__name__


def debug_requested() -> bool:
    """Whether ``$FP_DEBUG`` asks for full tracebacks (``1``, ``true``, ``yes`` or ``on``)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
