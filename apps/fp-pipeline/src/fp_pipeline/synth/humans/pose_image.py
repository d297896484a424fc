"""OpenPose-style condition image: each person's 18-joint skeleton in the standard colours, on black."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw

from fp_pipeline.synth.humans.skeleton import LIMBS, Skeleton

__all__ = ["OPENPOSE_COLOURS", "draw_pose_image"]

#: The 18 OpenPose colours (joint ``k`` and limb ``k`` use colour ``k``), RGB 0..255.
OPENPOSE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def draw_pose_image(skeletons: Sequence[Skeleton], size: int) -> Image.Image:
    """``size x size`` RGB image: limbs (dimmed to 60 %) then joints, scaled to each person's head size."""
    image = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for skeleton in skeletons:
        points = [(float(x) * size - 0.5, float(y) * size - 0.5) for x, y in skeleton.joints]
        width = max(1, round(0.18 * skeleton.unit * size))
        for k, (a, b) in enumerate(LIMBS):
            colour = tuple(int(0.6 * c) for c in OPENPOSE_COLOURS[k])
            draw.line((points[a], points[b]), fill=colour, width=width)
        radius = max(1.0, 0.12 * skeleton.unit * size)
        for k, (x, y) in enumerate(points):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=OPENPOSE_COLOURS[k])
    return image
