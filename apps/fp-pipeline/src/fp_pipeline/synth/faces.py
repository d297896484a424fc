"""Face geometry: the shapes of one image, in painter's order (back to front), in canonical units.

The face sits at :data:`~fp_pipeline.synth.geometry.CANONICAL_CENTRE` before the pose moves it. ``l_*`` parts
are drawn on the image's left (smaller x), ``r_*`` on its right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fp_pipeline.synth.geometry import CANONICAL_CENTRE, Pose, Shape, ellipse, superellipse, wobble
from fp_pipeline.synth.paints import Paint
from fp_pipeline.synth.population import Identity, ImageSpec

__all__ = ["FaceDrawing", "draw_face", "face_outline"]

SIDES = (-1, 1)  # -1: the image's left (l_* parts), +1: its right (r_* parts)


@dataclass(frozen=True)
class FaceDrawing:
    """The shapes of one image plus the landmarks the shading needs (canonical units, before the pose)."""

    shapes: tuple[Shape, ...]
    outline: np.ndarray  # [N, 2] the face (skin) outline, for the skin mask under the inner features
    pose: Pose
    centre: tuple[float, float]
    half_size: tuple[float, float]  # face half-width, half-height
    irises: tuple[tuple[float, float, float], ...]  # (x, y, radius) of each drawn iris
    hair_top: float  # y of the top of the head (hair or scalp)


def face_outline(
    cx: float, cy: float, half_width: float, half_height: float, jaw: float, n: int = 72
) -> np.ndarray:
    """``[n, 2]`` outline: an ellipse above the centre, narrowing towards the chin below (``jaw`` = chin
    width relative to an ellipse)."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    sin, cos = np.sin(t), np.cos(t)
    narrowing = np.where(sin > 0, 1.0 - (1.0 - jaw) * sin**2, 1.0)
    return np.stack([cx + half_width * cos * narrowing, cy + half_height * sin], axis=1)


def _rotated(points: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    return Pose(rotation_deg=degrees, shift=(centre[0] - 0.5, centre[1] - 0.5)).apply(
        np.asarray(points) - np.asarray(centre) + 0.5
    )


class _Builder:
    """Collects shapes in drawing order."""

    def __init__(self) -> None:
        self.shapes: list[Shape] = []

    def fill(self, paint: Paint, points: np.ndarray | list) -> None:
        self.shapes.append(Shape(int(paint), np.asarray(points, dtype=float)))

    def line(self, paint: Paint, points: np.ndarray | list, width: float, closed: bool = False) -> None:
        self.shapes.append(Shape(int(paint), np.asarray(points, dtype=float), width=width, closed=closed))


def draw_face(identity: Identity, spec: ImageSpec, rng: np.random.Generator) -> FaceDrawing:
    """All shapes of image ``spec`` of ``identity``; ``rng`` only varies small details (hair waves, gaze)."""
    cx, cy = CANONICAL_CENTRE
    w, h = identity.face_half_width, identity.face_half_height
    yaw_shift = spec.yaw * 2.0 * w  # inner features move sideways by this much
    eye_y = cy - 0.18 * h
    smile = spec.expression == "smile"
    eye_half_height = identity.eye_half_width * identity.eye_aspect * (0.85 if smile else 1.0)
    ears = _ear_layout(identity, cx, w, eye_y, yaw_shift)
    out = _Builder()

    hair = _HairLayout(identity, spec, rng, cx, cy, w, h, eye_y, eye_half_height)
    if hair.back is not None:
        out.fill(Paint.HAIR_BACK, hair.back)
    _draw_neck_and_clothes(out, identity, spec, cx, cy, w, h)
    for side, (ex, ey, rx, ry, _) in zip(SIDES, ears):
        if rx > 0:
            out.fill(Paint.EAR_L if side < 0 else Paint.EAR_R, ellipse(ex, ey, rx, ry, 32))

    outline = face_outline(cx, cy, w, h, identity.jaw)
    out.fill(Paint.FACE, outline)
    if identity.double_chin:
        _draw_double_chin(out, cx, cy, w, h, identity.jaw)
    mouth = _MouthLayout(identity, spec, cx + yaw_shift, cy + 0.56 * h)
    _draw_facial_hair(out, identity, cx, cy, w, h, mouth)
    _draw_skin_marks(out, identity, spec, cx, cy, w, h, eye_y, eye_half_height, yaw_shift)
    if identity.wrinkles:
        _draw_wrinkles(out, identity, cx, cy, w, h, eye_y, yaw_shift)
    _draw_nose(out, identity, cx + 1.3 * yaw_shift, eye_y)
    irises = _draw_eyes(out, identity, spec, rng, cx + yaw_shift, eye_y, w, eye_half_height)
    mouth.draw(out)
    if spec.earrings != "none":
        _draw_earrings(out, spec, ears)
    if spec.glasses != "none":
        _draw_glasses(out, identity, spec, cx, eye_y, w, eye_half_height, yaw_shift, ears)
    _draw_brows(out, identity, cx + yaw_shift, eye_y, w, eye_half_height)
    for polygon in hair.front:
        out.fill(Paint.HAIR_FRONT, polygon)
    if spec.hat != "none":
        _draw_hat(out, spec, hair, cx, cy, w, h, yaw_shift)
    return FaceDrawing(
        shapes=tuple(out.shapes),
        outline=outline,
        pose=Pose(spec.rotation_deg, spec.scale, spec.shift),
        centre=(cx, cy),
        half_size=(w, h),
        irises=tuple(irises),
        hair_top=hair.top,
    )


def _ear_layout(identity: Identity, cx: float, w: float, eye_y: float, yaw_shift: float) -> list[tuple]:
    """Per side ``(x, y, rx, ry, hidden_share)``: the ear on the side the face turns to slides behind it."""
    ry = identity.ear_half_height
    rx = 0.53 * ry
    ears = []
    for side in SIDES:
        towards = side * yaw_shift > 0  # features move towards this side: its ear goes behind the head
        move = -side * 1.6 * abs(yaw_shift) if towards else side * 0.3 * abs(yaw_shift)
        hidden_share = 1.6 * abs(yaw_shift) / rx if towards else 0.0
        ears.append((cx + side * (w + 0.006) + move, eye_y + 0.035, rx, ry, hidden_share))
    return ears


def _draw_neck_and_clothes(
    out: _Builder, identity: Identity, spec: ImageSpec, cx: float, cy: float, w: float, h: float
) -> None:
    nw = identity.neck_half_width
    top = cy + 0.3 * h
    out.fill(
        Paint.NECK,
        [(cx - nw, top), (cx + nw, top), (cx + nw + 0.012, cy + h + 0.08), (cx + nw + 0.05, 1.25),
         (cx - nw - 0.05, 1.25), (cx - nw - 0.012, cy + h + 0.08)],
    )  # fmt: skip
    ys = cy + h + 0.1  # shoulder line
    left = [
        (cx - 2.6 * w, 1.3),
        (cx - 2.5 * w, ys + 0.1),
        (cx - 1.9 * w, ys + 0.025),
        (cx - 1.1 * w, ys - 0.002),
    ]
    if spec.collar == "v":
        collar = [(cx - nw - 0.012, ys - 0.018), (cx, ys + 0.1), (cx + nw + 0.012, ys - 0.018)]
    elif spec.collar == "high":
        collar = [(cx - nw - 0.006, ys - 0.07), (cx, ys - 0.055), (cx + nw + 0.006, ys - 0.07)]
    else:
        xs = np.linspace(-1.0, 1.0, 11)
        collar = [(cx + x * (nw + 0.012), ys - 0.012 + 0.045 * (1 - x * x)) for x in xs]
    right = [(2 * cx - x, y) for x, y in reversed(left)]
    out.fill(Paint.CLOTH, left + collar + right)
    if spec.necktie:
        out.fill(Paint.SHIRT, [(cx - nw - 0.008, ys - 0.035), (cx + nw + 0.008, ys - 0.035), (cx, ys + 0.1)])
        out.fill(
            Paint.TIE,
            [
                (cx - 0.014, ys - 0.032),
                (cx + 0.014, ys - 0.032),
                (cx + 0.01, ys - 0.004),
                (cx - 0.01, ys - 0.004),
            ],
        )
        out.fill(
            Paint.TIE,
            [
                (cx - 0.01, ys - 0.006),
                (cx + 0.01, ys - 0.006),
                (cx + 0.024, ys + 0.13),
                (cx, ys + 0.16),
                (cx - 0.024, ys + 0.13),
            ],
        )
    if spec.necklace:
        bottom = ys + (0.05 if spec.collar == "v" else -0.045 if spec.collar == "high" else 0.012)
        top = ys - (0.085 if spec.collar == "high" else 0.07)
        xs = np.linspace(-1.0, 1.0, 15)
        chain = [(cx + 0.95 * nw * x, top + (bottom - top) * (1 - x * x) ** 0.7) for x in xs]
        out.line(Paint.NECKLACE, chain, width=0.012)
        out.fill(Paint.NECKLACE, ellipse(cx, bottom + 0.012, 0.014, 0.016, 20))


def _draw_double_chin(out: _Builder, cx: float, cy: float, w: float, h: float, jaw: float) -> None:
    lower = face_outline(cx, cy, w, h, jaw, n=72)[9:28]  # the chin arc, about 45..135 degrees
    outer = np.stack([lower[:, 0], cy + (lower[:, 1] - cy) * 1.075], axis=1)
    out.fill(Paint.FACE, np.concatenate([outer, lower[::-1]]))
    crease = lower[3:-3] + np.array([0.0, 0.005])
    out.line(Paint.CHIN_FOLD, crease, width=0.007)


def _lower_face(cx: float, cy: float, w: float, h: float, jaw: float, cut: float, grow: float) -> np.ndarray:
    """The face region below ``y = cy + cut * h`` (``grow`` pushes it beyond the outline: beard volume)."""
    outline = face_outline(cx, cy, w, h, jaw, n=144)
    below = outline[outline[:, 1] > cy + cut * h]
    if grow:
        offsets = below - np.array([cx, cy])
        below = below + grow * offsets / np.linalg.norm(offsets, axis=1, keepdims=True)
    below = below[np.argsort(-below[:, 0])]  # right to left along the jaw
    return np.concatenate([below, [[below[-1, 0], cy + cut * h], [below[0, 0], cy + cut * h]]])


def _draw_facial_hair(
    out: _Builder, identity: Identity, cx: float, cy: float, w: float, h: float, mouth: _MouthLayout
) -> None:
    if identity.beard == "none":
        return
    if identity.beard == "stubble":
        out.fill(Paint.STUBBLE, _lower_face(cx, cy, w, h, identity.jaw, 0.26, 0.0))
        return
    if identity.beard == "full":
        out.fill(Paint.BEARD, _lower_face(cx, cy, w, h, identity.jaw, 0.16, 0.012))
    if identity.beard == "goatee":
        lip_bottom = float(mouth.lower_bottom.max())
        chin = cy + h
        out.fill(
            Paint.BEARD,
            ellipse(
                mouth.x, (lip_bottom + chin) / 2 + 0.004, mouth.half_width * 0.55, (chin - lip_bottom) / 2, 32
            ),
        )
    out.fill(Paint.BEARD, mouth.mustache())


def _draw_skin_marks(
    out: _Builder, identity: Identity, spec: ImageSpec, cx: float, cy: float, w: float, h: float,
    eye_y: float, eye_half_height: float, yaw_shift: float,
) -> None:  # fmt: skip
    for side in SIDES:
        x = cx + side * identity.eye_spacing * w + yaw_shift
        if spec.high_cheekbones:
            centre = (cx + side * 0.55 * w + 0.8 * yaw_shift, cy + 0.03 * h)
            out.fill(Paint.CHEEKBONE, _rotated(ellipse(*centre, 0.055, 0.019, 28), centre, -side * 22))
        if spec.rosy_cheeks:
            out.fill(
                Paint.CHEEK, ellipse(cx + side * 0.5 * w + 0.8 * yaw_shift, cy + 0.25 * h, 0.048, 0.034, 28)
            )
        ew = identity.eye_half_width
        if identity.bags_under_eyes:
            s = np.linspace(-0.85, 0.85, 13)
            upper = eye_y + eye_half_height * 0.8 * (1 - s * s) ** 0.9 + 0.003
            lower = upper + 0.013 * (1 - (s / 0.85) ** 2) ** 0.7
            out.fill(
                Paint.EYE_BAG,
                np.concatenate([np.stack([x + s * ew, upper], 1), np.stack([x + s * ew, lower], 1)[::-1]]),
            )
        if spec.heavy_makeup:
            out.fill(
                Paint.EYESHADOW,
                ellipse(x, eye_y - eye_half_height * 0.5, ew * 1.12, eye_half_height + 0.011, 28),
            )


def _draw_wrinkles(
    out: _Builder,
    identity: Identity,
    cx: float,
    cy: float,
    w: float,
    h: float,
    eye_y: float,
    yaw_shift: float,
) -> None:
    """Two forehead lines and the nasolabial folds of an older face (skin paint, so the masks are unchanged)."""
    s = np.linspace(-1.0, 1.0, 15)
    for k, rise in enumerate((0.3, 0.4)):
        half = (0.55 - 0.07 * k) * w
        ys = eye_y - rise * h - 0.012 * (1 - s * s)
        out.line(Paint.WRINKLE, np.stack([cx + 0.7 * yaw_shift + s * half, ys], 1), width=0.012)
    nose_y = eye_y + 0.012 + identity.nose_length
    mouth_y = cy + 0.56 * h
    t = np.linspace(0.0, 1.0, 9)
    for side in SIDES:
        x0 = cx + 1.3 * yaw_shift + side * identity.nose_half_width * 1.35
        x1 = cx + yaw_shift + side * identity.mouth_half_width * 1.2
        xs = x0 + (x1 - x0) * t + side * 0.018 * np.sin(math.pi * t)
        ys = nose_y - 0.01 + (mouth_y + 0.012 - nose_y) * t
        out.line(Paint.WRINKLE, np.stack([xs, ys], 1), width=0.011)


def _draw_nose(out: _Builder, identity: Identity, x: float, eye_y: float) -> None:
    nw, length = identity.nose_half_width, identity.nose_length
    top = eye_y + 0.012
    tip = top + length
    bridge = 0.35 * nw
    if identity.pointy_nose:
        nw *= 0.88
        left = [
            (-bridge, top),
            (-1.1 * bridge, top + 0.45 * length),
            (-0.7 * nw, top + 0.75 * length),
            (-nw, tip - 0.018),
        ]
        bottom = [(-0.75 * nw, tip - 0.008), (0.0, tip + 0.007), (0.75 * nw, tip - 0.008)]
    else:
        left = [
            (-bridge, top),
            (-1.1 * bridge, top + 0.42 * length),
            (-0.72 * nw, top + 0.7 * length),
            (-nw, tip - 0.02),
        ]
        arc = ellipse(0.0, tip - 0.012, 0.95 * nw, 0.012, 13, start=math.pi, stop=0.0)
        bottom = [tuple(p) for p in arc]
    right = [(-px, py) for px, py in reversed(left)]
    out.fill(Paint.NOSE, [(x + px, py) for px, py in left + bottom + right])


def _eye_lids(
    ex: float, ey: float, ew: float, eh: float, side: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``xs``, upper-lid y and lower-lid y at 17 points across one eye (outer corner slightly higher)."""
    s = np.linspace(-1.0, 1.0, 17)
    tilt = -0.004 * side * s
    upper = ey - eh * (1 - s * s) ** 0.7 + tilt
    lower = ey + eh * 0.8 * (1 - s * s) ** 0.9 + tilt
    return ex + s * ew, upper, lower


def _draw_eyes(
    out: _Builder, identity: Identity, spec: ImageSpec, rng: np.random.Generator, x0: float, eye_y: float,
    w: float, eh: float,
) -> list[tuple[float, float, float]]:  # fmt: skip
    ew = identity.eye_half_width
    gaze = float(rng.uniform(-0.25, 0.25))
    irises = []
    for side in SIDES:
        ex = x0 + side * identity.eye_spacing * w
        xs, upper, lower = _eye_lids(ex, eye_y, ew, eh, side)
        out.fill(
            Paint.EYE_L if side < 0 else Paint.EYE_R,
            np.concatenate([np.stack([xs, upper], 1), np.stack([xs, lower], 1)[::-1][1:-1]]),
        )
        radius = min(1.15 * eh, 0.5 * ew)
        ix, iy = ex + gaze * ew, eye_y + 0.1 * eh
        circle = ellipse(ix, iy, radius, radius, 28)
        px = np.clip(circle[:, 0], xs[0] + 0.05 * ew, xs[-1] - 0.05 * ew)
        py = np.clip(circle[:, 1], np.interp(px, xs, upper), np.interp(px, xs, lower))
        out.fill(Paint.IRIS_L if side < 0 else Paint.IRIS_R, np.stack([px, py], 1))
        irises.append((ix, iy, radius))
    return irises


def _draw_brows(out: _Builder, identity: Identity, x0: float, eye_y: float, w: float, eh: float) -> None:
    ew = identity.eye_half_width
    t = np.linspace(0.0, 1.0, 12)
    for side in SIDES:
        ex = x0 + side * identity.eye_spacing * w
        inner, outer = ex - side * 1.0 * ew, ex + side * 1.3 * ew
        xs = inner + (outer - inner) * t
        centre = eye_y - eh - 0.024 - identity.brow_arch * np.sin(math.pi * t**0.85) + 0.006 * t * t
        half = identity.brow_thickness * (1.0 - 0.5 * t) / 2
        polygon = np.concatenate([np.stack([xs, centre - half], 1), np.stack([xs, centre + half], 1)[::-1]])
        out.fill(Paint.BROW_L if side < 0 else Paint.BROW_R, polygon)


def _draw_earrings(out: _Builder, spec: ImageSpec, ears: list[tuple]) -> None:
    for ex, ey, _, ry, hidden_share in ears:
        if hidden_share > 0.6:
            continue  # that ear is behind the head
        lobe = ey + 0.85 * ry
        if spec.earrings == "stud":
            out.fill(Paint.EARRING, ellipse(ex, lobe, 0.014, 0.014, 20))
        elif spec.earrings == "hoop":
            out.line(Paint.EARRING, ellipse(ex, lobe + 0.02, 0.021, 0.023, 24), width=0.009, closed=True)
        else:
            out.fill(Paint.EARRING, ellipse(ex, lobe + 0.02, 0.012, 0.022, 20))


def _draw_glasses(
    out: _Builder, identity: Identity, spec: ImageSpec, cx: float, eye_y: float, w: float, eh: float,
    yaw_shift: float, ears: list[tuple],
) -> None:  # fmt: skip
    ew = identity.eye_half_width
    lw, lh = ew * 1.35 + 0.008, max(0.032, eh + 0.016)
    frame = 0.012
    lenses = []
    for side in SIDES:
        ex = cx + yaw_shift + side * identity.eye_spacing * w
        if spec.glasses_shape == "round":
            radius = 0.95 * max(lw, lh)
            lens = superellipse(ex, eye_y + 0.003, radius, radius, 2.0)
            half_width = radius
        elif spec.glasses_shape == "oval":
            lens, half_width = superellipse(ex, eye_y + 0.003, lw, lh, 2.0), lw
        else:
            lens, half_width = superellipse(ex, eye_y + 0.003, lw, 0.92 * lh, 4.0), lw
        lenses.append((ex, lens, half_width))
    if spec.glasses == "sun":
        for _, lens, _ in lenses:
            out.fill(Paint.GLASS_LENS, lens)
    for _, lens, _ in lenses:
        out.line(Paint.GLASS_FRAME, lens, width=frame, closed=True)
    (lx, _, lhw), (rx, _, rhw) = lenses
    out.line(
        Paint.GLASS_FRAME,
        [(lx + lhw, eye_y - 0.004), (cx + yaw_shift, eye_y - 0.012), (rx - rhw, eye_y - 0.004)],
        width=frame,
    )
    for side, (ex, _, half_width), ear in zip(SIDES, lenses, ears):
        out.line(
            Paint.GLASS_FRAME,
            [(ex + side * half_width, eye_y - 0.004), (ear[0] - side * 0.3 * ear[2], eye_y + 0.025)],
            width=frame * 0.85,
        )


class _MouthLayout:
    """Lip and mouth curves across the mouth (``s`` from -1 to 1 at 21 points)."""

    def __init__(self, identity: Identity, spec: ImageSpec, x: float, y: float) -> None:
        self.x, self.y = x, y
        self.half_width = identity.mouth_half_width * (1.1 if spec.expression == "smile" else 1.0)
        self.gap = spec.mouth_gap
        self.smile = spec.expression == "smile"
        s = np.linspace(-1.0, 1.0, 21)
        self.xs = x + s * self.half_width
        base = y - spec.smile_curve * s * s
        opening = self.gap / 2 * np.sqrt(1 - s * s)
        upper_thickness = identity.lip_thickness * 0.85
        lower_thickness = identity.lip_thickness * 1.15
        bow = 1.0 - 0.3 * np.exp(-((s / 0.15) ** 2))
        self.upper_top = base - opening - upper_thickness * np.sqrt(1 - s * s) * bow
        self.upper_bottom = base - opening
        self.lower_top = base + opening
        self.lower_bottom = base + opening + lower_thickness * np.sqrt(1 - s * s)

    def _band(self, top: np.ndarray, bottom: np.ndarray, xs: np.ndarray | None = None) -> np.ndarray:
        xs = self.xs if xs is None else xs
        return np.concatenate([np.stack([xs, top], 1), np.stack([xs, bottom], 1)[::-1][1:-1]])

    def draw(self, out: _Builder) -> None:
        if self.gap > 0:
            out.fill(Paint.MOUTH, self._band(self.upper_bottom, self.lower_top))
            if self.smile:
                xs = np.linspace(self.xs[0], self.xs[-1], 21)[3:-3]
                top = np.interp(xs, self.xs, self.upper_bottom)
                bottom = top + 0.55 * (np.interp(xs, self.xs, self.lower_top) - top)
                out.fill(
                    Paint.TEETH, np.concatenate([np.stack([xs, top], 1), np.stack([xs, bottom], 1)[::-1]])
                )
        out.fill(Paint.LIP_U, self._band(self.upper_top, self.upper_bottom))
        out.fill(Paint.LIP_L, self._band(self.lower_top, self.lower_bottom))

    def mustache(self) -> np.ndarray:
        s = np.linspace(-1.15, 1.15, 17)
        top_at_centre = float(self.upper_top[10])
        centre = top_at_centre - 0.009 + 0.014 * s * s
        half = 0.0085 * (1 - 0.45 * s * s)
        xs = self.x + s * self.half_width * 1.05
        return np.concatenate([np.stack([xs, centre - half], 1), np.stack([xs, centre + half], 1)[::-1]])


class _HairLayout:
    """Polygons of the hair behind the head (``back``) and in front of the face (``front``)."""

    def __init__(
        self, identity: Identity, spec: ImageSpec, rng: np.random.Generator, cx: float, cy: float, w: float,
        h: float, eye_y: float, eye_half_height: float,
    ) -> None:  # fmt: skip
        volume = (
            0.004 + (0.008 if identity.wavy else 0.0) + (0.006 if identity.hair_length == "long" else 0.0)
        )
        self.cap_centre = (cx, cy - 0.06)
        self.cap_axes = (w * 1.13 + volume, h * 1.06 + volume)
        self.back: np.ndarray | None = None
        self.front: list[np.ndarray] = []
        self.top = cy - h
        if not identity.has_hair:
            return
        phase = float(rng.uniform(0, 2 * math.pi))
        if identity.bald:
            for side in SIDES:
                self.front.append(np.array([
                    (cx + side * 0.9 * w, eye_y - 0.075), (cx + side * 1.1 * w, eye_y - 0.06),
                    (cx + side * 1.12 * w, eye_y), (cx + side * 0.98 * w, eye_y - 0.005),
                ]))  # fmt: skip
            return
        a, b = self.cap_axes
        yc = self.cap_centre[1]
        self.top = yc - b
        arc = ellipse(cx, yc, a, b, 41, start=math.pi, stop=2 * math.pi)
        if identity.wavy:
            arc = wobble(arc, self.cap_centre, 0.007, 14.0, phase)
        side_bottom = eye_y - 0.005
        brow_top = eye_y - eye_half_height - 0.024 - identity.brow_arch - identity.brow_thickness / 2
        hairline = self._hairline(identity, rng, cx, cy, w, h, brow_top)
        inner = [(cx + 0.95 * w, side_bottom), *hairline, (cx - 0.95 * w, side_bottom)]
        cap = np.concatenate([arc, [(cx + 0.99 * a, side_bottom)], inner, [(cx - 0.99 * a, side_bottom)]])
        self.front.append(cap)
        if identity.hair_length in ("medium", "long"):
            long = identity.hair_length == "long"
            end = cy + h + 0.17 if long else cy + 0.62 * h
            back_arc = ellipse(cx, yc, a + 0.015, b + 0.01, 41, start=math.pi, stop=2 * math.pi)
            spread = 0.03 + (0.02 if long else 0.0)
            right = [(cx + a + 0.02, cy + 0.3 * h), (cx + a + spread, end), (cx + 0.5 * a, end + 0.02)]
            left = [(2 * cx - x, y) for x, y in reversed(right)]
            self.back = np.concatenate([back_arc, right, left])
            for side in SIDES:
                self.front.append(self._lock(identity, spec, side, cx, cy, w, h, a, eye_y, end, phase))
        if identity.sideburns:
            for side in SIDES:
                self.front.append(np.array([
                    (cx + side * 0.84 * w, side_bottom - 0.01), (cx + side * 0.98 * w, side_bottom - 0.01),
                    (cx + side * 0.96 * w, eye_y + 0.075), (cx + side * 0.87 * w, eye_y + 0.07),
                ]))  # fmt: skip

    @staticmethod
    def _hairline(
        identity: Identity,
        rng: np.random.Generator,
        cx: float,
        cy: float,
        w: float,
        h: float,
        brow_top: float,
    ) -> list:
        """Inner edge of the hair across the forehead, from the right temple to the left one."""
        if identity.bangs:
            xs = np.linspace(0.9, -0.9, 13)
            jag = np.where(np.arange(13) % 2 == 0, 0.0, 0.007) + rng.uniform(-0.002, 0.002, 13)
            fringe = brow_top - 0.007 - 0.045 * xs * xs + jag
            return (
                [(cx + 0.9 * w, cy - 0.4 * h)]
                + [(cx + x * w, y) for x, y in zip(xs, fringe)]
                + [(cx - 0.9 * w, cy - 0.4 * h)]
            )
        if identity.receding:
            right = [(0.87, -0.45), (0.62, -0.93), (0.3, -0.8), (0.0, -0.77)]
        else:
            right = [(0.86, -0.5), (0.6, -0.68), (0.3, -0.73), (0.0, -0.74)]
        left = [(-x, y) for x, y in reversed(right[:-1])]
        return [(cx + x * w, cy + y * h) for x, y in right + left]

    @staticmethod
    def _lock(
        identity: Identity, spec: ImageSpec, side: int, cx: float, cy: float, w: float, h: float, a: float,
        eye_y: float, end: float, phase: float,
    ) -> np.ndarray:  # fmt: skip
        """A lock of medium or long hair down one side of the face (behind the ear when tucked)."""
        long = identity.hair_length == "long"
        extra = 0.012 if long else 0.0
        outer = np.array(
            [(a + 0.005, cy - 0.45 * h), (a + 0.012 + extra, eye_y + 0.05), (a + 0.02 + 1.5 * extra, end)]
        )
        if spec.hair_tucked:
            inner = [(w + 0.045, eye_y + 0.01), (w + 0.045, cy + 0.45 * h), (w + 0.035, end)]
        elif long:
            nw = identity.neck_half_width
            inner = [(0.86 * w, cy - 0.45 * h), (0.9 * w, eye_y + 0.02), (0.88 * w, cy + 0.3 * h), (0.72 * w, cy + 0.62 * h),
                     (nw + 0.015, cy + h + 0.02), (nw + 0.03, end)]  # fmt: skip
        else:
            inner = [
                (0.86 * w, cy - 0.45 * h),
                (0.9 * w, eye_y + 0.02),
                (0.88 * w, cy + 0.3 * h),
                (0.84 * w, end),
            ]
        if identity.wavy:
            ys = np.linspace(outer[0, 1], outer[-1, 1], 14)
            xs = np.interp(ys, outer[:, 1], outer[:, 0]) + 0.006 * np.sin(2 * math.pi * 9 * ys + phase)
            outer = np.stack([xs, ys], 1)
        inner_arr = np.asarray(inner)[::-1]
        bottom_mid = ((outer[-1, 0] + inner_arr[0, 0]) / 2, end + 0.012)
        points = np.concatenate([outer, [bottom_mid], inner_arr])
        return np.stack([cx + side * points[:, 0], points[:, 1]], 1)


def _draw_hat(
    out: _Builder,
    spec: ImageSpec,
    hair: _HairLayout,
    cx: float,
    cy: float,
    w: float,
    h: float,
    yaw_shift: float,
) -> None:
    a, b = hair.cap_axes
    yc = hair.cap_centre[1]
    if spec.hat == "brim":
        brim_y = cy - 0.66 * h
        crown_height = 0.11
        out.fill(Paint.HAT, superellipse(cx, brim_y - 0.8 * crown_height, 0.92 * a, crown_height, 3.5))
        out.fill(
            Paint.HAT_BAND,
            [
                (cx - 0.9 * a, brim_y - 0.035),
                (cx + 0.9 * a, brim_y - 0.035),
                (cx + 0.9 * a, brim_y),
                (cx - 0.9 * a, brim_y),
            ],
        )
        out.fill(Paint.HAT, ellipse(cx, brim_y, 1.65 * w, 0.03, 40))
        return
    a, b = a + 0.012, b + 0.018
    bottom = cy - (0.64 if spec.hat == "cap" else 0.6) * h
    start = math.asin(max(-1.0, (bottom - yc) / b))  # negative: above the cap centre
    arc = ellipse(cx, yc, a, b, 41, start=math.pi - start, stop=2 * math.pi + start)
    half = arc[-1, 0] - cx
    xs = np.linspace(1.0, -1.0, 9)
    edge = [(cx + x * half, bottom + 0.01 * (1 - x * x)) for x in xs]
    out.fill(Paint.HAT, np.concatenate([arc, edge]))
    if spec.hat == "beanie":
        out.fill(
            Paint.HAT_BAND,
            np.concatenate([[(cx - half - 0.006, bottom - 0.04), (cx + half + 0.006, bottom - 0.04)], edge]),
        )
    else:
        out.fill(Paint.HAT_BAND, ellipse(cx + 0.6 * yaw_shift, bottom + 0.004, w * 1.0, 0.026, 36))
