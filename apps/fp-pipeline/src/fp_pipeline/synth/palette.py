"""Base colours: the continuous skin-tone ramp."""

from __future__ import annotations

import numpy as np

__all__ = ["SKIN_RAMP", "skin_rgb"]

#: ``(tone, rgb)`` anchors of the skin ramp, from the lightest (0) to the darkest (1) skin; linear between.
SKIN_RAMP: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.0, (0.98, 0.86, 0.77)),
    (0.2, (0.94, 0.76, 0.64)),
    (0.4, (0.82, 0.62, 0.48)),
    (0.6, (0.64, 0.45, 0.32)),
    (0.8, (0.45, 0.3, 0.2)),
    (1.0, (0.28, 0.18, 0.12)),
)


def skin_rgb(tone: float) -> tuple[float, float, float]:
    """RGB in [0, 1] of a skin tone in [0, 1] (0 the lightest)."""
    if not 0.0 <= tone <= 1.0:
        raise ValueError(f"skin tone must lie in [0, 1], got {tone}")
    anchors = np.array([t for t, _ in SKIN_RAMP])
    colours = np.array([c for _, c in SKIN_RAMP])
    rgb = [float(np.interp(tone, anchors, colours[:, k])) for k in range(3)]
    return (rgb[0], rgb[1], rgb[2])
