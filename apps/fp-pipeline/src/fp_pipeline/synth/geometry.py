"""2-D shape primitives for the face drawings, in canonical image-side units (x right, y down, [0, 1])."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CANONICAL_CENTRE", "Pose", "Shape", "ellipse", "superellipse", "wobble"]

#: The point the pose rotates and scales about.
CANONICAL_CENTRE = (0.5, 0.5)


@dataclass(frozen=True)
class Shape:
    """One filled polygon (``width == 0``) or thick polyline (``width > 0``) of one paint.

    ``points`` is ``[N, 2]`` (x, y) in canonical units; ``closed`` closes a polyline into a ring.
    """

    paint: int
    points: np.ndarray
    width: float = 0.0
    closed: bool = False


@dataclass(frozen=True)
class Pose:
    """In-plane rotation (degrees), zoom and shift (image-side units) about :data:`CANONICAL_CENTRE`."""

    rotation_deg: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)

    def _matrix(self) -> np.ndarray:
        angle = math.radians(self.rotation_deg)
        c, s = math.cos(angle), math.sin(angle)
        return self.scale * np.array([[c, -s], [s, c]])

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Canonical ``[..., 2]`` points -> posed ``[..., 2]`` points (same units)."""
        offsets = np.asarray(points, dtype=float) - np.asarray(CANONICAL_CENTRE)
        return _affine(offsets, self._matrix()) + np.asarray(CANONICAL_CENTRE) + np.asarray(self.shift)

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Posed ``[..., 2]`` points -> canonical ones (the inverse of :meth:`apply`)."""
        offsets = np.asarray(points, dtype=float) - np.asarray(CANONICAL_CENTRE) - np.asarray(self.shift)
        (a, b), (c, d) = self._matrix()
        inverse = np.array([[d, -b], [-c, a]]) / (a * d - b * c)
        return _affine(offsets, inverse) + np.asarray(CANONICAL_CENTRE)


def _affine(offsets: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``offsets @ matrix.T`` written out (a 2x2 product; no BLAS call, no thread start-up per image)."""
    x, y = offsets[..., 0], offsets[..., 1]
    return np.stack([matrix[0, 0] * x + matrix[0, 1] * y, matrix[1, 0] * x + matrix[1, 1] * y], axis=-1)


def ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 48, start: float = 0.0, stop: float = 2 * math.pi
) -> np.ndarray:
    """``[n, 2]`` points on an ellipse from angle ``start`` to ``stop`` (radians; y grows downwards)."""
    closed = math.isclose(stop - start, 2 * math.pi)
    t = np.linspace(start, stop, n, endpoint=not closed)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def superellipse(cx: float, cy: float, rx: float, ry: float, exponent: float, n: int = 48) -> np.ndarray:
    """``[n, 2]`` points of ``|x/rx|^e + |y/ry|^e = 1`` (e = 2: ellipse; larger: a rounded rectangle)."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    cos, sin = np.cos(t), np.sin(t)
    x = rx * np.sign(cos) * np.abs(cos) ** (2.0 / exponent)
    y = ry * np.sign(sin) * np.abs(sin) ** (2.0 / exponent)
    return np.stack([cx + x, cy + y], axis=1)


def wobble(
    points: np.ndarray, centre: tuple[float, float], amplitude: float, cycles: float, phase: float
) -> np.ndarray:
    """Move each point radially from ``centre`` by ``amplitude * sin(cycles * angle + phase)`` (wavy hair)."""
    offsets = np.asarray(points, dtype=float) - np.asarray(centre)
    radius = np.hypot(offsets[:, 0], offsets[:, 1])
    angle = np.arctan2(offsets[:, 1], offsets[:, 0])
    radius = radius + amplitude * np.sin(cycles * angle + phase)
    return np.stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)], axis=1)
