"""Shared helpers of the workspace-level tests.

``NUMBA_DISABLE_JIT=1`` (unless set) as in ``packages/fp-qdgs/tests/conftest.py``, and here because this folder
is collected first: a test here that imports fp_qdgs imports ribs and numba, and numba must see the setting
before that import (numba re-reads its config when it compiles, so setting it later mixes the two modes and
fails with ``'function' object has no attribute 'get_call_template'``).
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _run_benchmark(script: str, *args: str) -> dict:
    """Run ``benchmarks/<script>`` with ``args`` from the repository root; its one JSON line, parsed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


@pytest.fixture(scope="session")
def run_benchmark() -> Callable[..., dict]:
    """``run_benchmark("qdgs_step.py", "--reps", "1")``: the benchmark's JSON report (exit 0, one line)."""
    return _run_benchmark
