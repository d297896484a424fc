"""Test settings for fp-qdgs.

* ``NUMBA_DISABLE_JIT=1`` (unless already set): ribs' CMA-ES compiles two numba functions on first use, which
  takes longer (~10 s on a busy CPU) than the toy runs here; uncompiled they are fast enough for these sizes.
  numba reads it at import, so it only takes effect if ribs was not imported before this file.
* one torch thread per test: the toy generator's matmuls are tiny, and thread start-up on a shared CPU costs
  more than it saves.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
