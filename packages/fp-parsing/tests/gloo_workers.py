"""Run a worker script on several gloo processes on this machine (for the multi-process tests).

The workers are plain subprocesses running a script text (picklable under pytest's importlib mode, unlike a
function handed to ``mp.spawn``), with the environment ``torch.distributed`` and accelerate read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

__all__ = ["run_gloo_workers"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_gloo_workers(script: str, workdir: Path, world: int = 2, timeout: float = 300.0) -> None:
    """Write ``script`` to ``workdir/worker.py`` and run it on ``world`` processes (``argv[1] = workdir``);
    asserts every process exits 0."""
    path = workdir / "worker.py"
    path.write_text(script)
    env = dict(
        os.environ,
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        OMP_NUM_THREADS="1",
    )
    workers = [
        subprocess.Popen(
            [sys.executable, str(path), str(workdir)], env=dict(env, RANK=str(r), LOCAL_RANK=str(r))
        )
        for r in range(world)
    ]
    try:
        codes = [worker.wait(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert codes == [0] * world, f"worker exit codes {codes}"
