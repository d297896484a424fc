import numpy as np
import pytest
import torch

from fp_recognition.data import encode_jpeg, rfw_image_path, rfw_pairs_path


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test: the CPUs are shared, and oversubscription costs more than it gives."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_jpegs():
    """``make_jpegs(n, size=16, seed=0) -> list[bytes]``: smooth random colour images as JPEG."""

    def make(n: int, size: int = 16, seed: int = 0) -> list[bytes]:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            base = rng.integers(0, 256, size=(1, 1, 3))
            ramp = np.linspace(0, 60, size)[None, :, None]
            img = np.clip(base + ramp + rng.integers(0, 20, size=(size, size, 3)), 0, 255).astype(np.uint8)
            out.append(encode_jpeg(img))
        return out

    return make


@pytest.fixture
def write_rfw_group(make_jpegs):
    """``write_rfw_group(root, group, {name: [idx, ...]}, pairs_lines)``: an RFW group on disk."""

    def write(root, group, names, pairs_lines):
        jpegs = iter(make_jpegs(sum(len(v) for v in names.values())))
        for name, indices in names.items():
            for idx in indices:
                path = rfw_image_path(root, group, name, idx)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(next(jpegs))
        pairs = rfw_pairs_path(root, group)
        pairs.parent.mkdir(parents=True, exist_ok=True)
        pairs.write_text("".join(line + "\n" for line in pairs_lines))

    return write
