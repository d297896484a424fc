"""Shared helpers of the workspace-level tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

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
