import numpy as np
import pytest

from fp_recognition.data import encode_jpeg


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
