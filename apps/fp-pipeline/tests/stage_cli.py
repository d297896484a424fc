"""``run_fp(*args)``: the `fp` CLI in-process for the stage tests (this folder is on the pytest pythonpath)."""

from __future__ import annotations

from typer.testing import CliRunner

__all__ = ["run_fp"]


def run_fp(*args: str, no_progress: bool = True) -> str:
    """Run ``fp <args>`` in-process (with ``--no-progress`` added when ``no_progress`` and absent), assert it
    exits 0 (showing its output and exception otherwise) and return its output."""
    from fp_pipeline.cli import app

    argv = [*args, "--no-progress"] if no_progress and "--no-progress" not in args else [*args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, f"fp {' '.join(argv)} failed:\n{result.output}\n{result.exception!r}"
    return result.output
