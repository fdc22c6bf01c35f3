"""A schematic 3-D lumbar spine for one synthetic study, in millimetres.

Two frames. The patient frame is DICOM LPS (+x patient left, +y posterior, +z head); all
DICOM geometry is written in it. The spine frame is a rigid copy of it
(``patient = rotation @ spine + offset``) in which the centre line of the vertebral bodies
is a chain of circular arcs (one per segment between graded discs, so the lordosis can
bend more at some levels than others) in the plane x = 0, shifted sideways by a mild
scoliosis, with the cross-section rotated about it (axial rotation). Every structure is
placed in the straightened coordinates of that line:

- ``U``: arc length along the centre line, 0 at the upper endplate of S1, + towards the head
- ``V``: distance from the centre line towards posterior (rotated with the vertebra)
- ``W``: distance towards patient left (rotated with the vertebra)

Vertebrae T10..S1 and the discs between them are stored top-down; the five graded discs
L1/L2..L5/S1 are ``GRADED_DISCS``. Narrowing (0 healthy .. 1 maximal) per graded label
moves only that label's structure (see render.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lsdc import schema

VERTEBRAE: tuple[str, ...] = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")
DISCS: tuple[str, ...] = tuple(f"{a}/{b}" for a, b in zip(VERTEBRAE[:-1], VERTEBRAE[1:]))
GRADED_DISCS: tuple[int, ...] = tuple(DISCS.index(lv) for lv in schema.LEVELS)
LEFT, RIGHT = 0, 1  # side index; left is +W (+x)
SIDE_SIGN = (1.0, -1.0)

# Typical sizes (mm), top-down, scaled per study: body height, disc height, body half
# depth (AP) and half width, bony canal half depth / half width, transverse process length.
_BODY_H = np.array([22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 27.0, 26.0, 28.0])
_DISC_H = np.array([6.5, 7.0, 8.0, 9.0, 10.0, 10.5, 11.0, 11.0])
_BODY_A = np.array([13.0, 13.5, 14.5, 15.0, 15.5, 16.0, 16.5, 17.0, 17.0])
_BODY_B = np.array([16.0, 17.0, 18.0, 19.5, 20.5, 21.5, 22.5, 24.0, 24.0])
_CANAL_A = np.array([7.0, 7.0, 7.5, 8.0, 8.0, 8.5, 8.5, 8.5, 8.0])
_CANAL_B = np.array([8.5, 9.0, 9.5, 10.5, 11.0, 11.5, 12.0, 12.5, 13.0])
_TRANSVERSE = np.array([0.0, 0.0, 6.0, 18.0, 22.0, 28.0, 24.0, 20.0, 0.0])

SAC_GAP_ANTERIOR = 1.5  # mm between the posterior body wall and the dural sac
SAC_MARGIN_AP, SAC_MARGIN_LR = 2.0, 2.5  # bony canal minus dural sac half axes
FORAMEN_LATERAL = 5.5  # foramen centre lateral to the bony canal edge (mm)
FORAMEN_HALF_DEPTH = 5.0  # AP half size of the foraminal fat (mm)
FORAMEN_HALF_WIDTH = 6.0  # left-right half extent of the foramen (mm)
FORAMEN_FORWARD = 4.5  # foramen centre posterior to the body wall (mm)
RECESS_FORWARD = 3.5  # lateral recess centre posterior to the body wall (mm)
RECESS_LATERAL = 1.2  # lateral recess centre lateral to the dural sac edge (mm)


@dataclass(frozen=True)
class Torso:
    """Body outline: an elliptic cylinder along the mid-lumbar axis of the spine."""

    centre_v: float  # posterior offset of the outline's centre from the mid-lumbar body centre
    half_ap: float
    half_lr: float
    fat: float  # subcutaneous fat thickness
    waves: np.ndarray  # (3, 4): wave vector (U, V, W) and phase of the bowel texture


@dataclass(frozen=True, eq=False)
class Spine:
    rotation: np.ndarray  # (3, 3) spine frame -> patient frame
    offset: np.ndarray  # (3,) patient position of the spine-frame origin
    # centre line in the spine frame's (y, z) plane: pieces of constant curvature (+ = lordotic,
    # centre of curvature posterior), piece i between piece_u[i] and piece_u[i + 1] (the first and
    # last pieces extend without end); piece_yz / piece_angle: point and tangent angle (from +z
    # towards +y) of the centre line at piece_u[i] (for piece 0 at piece_u[1])
    piece_u: np.ndarray  # (n + 1,) ascending, piece_u[0] = -inf, piece_u[n] = +inf
    piece_kappa: np.ndarray  # (n,) 1/mm
    piece_yz: np.ndarray  # (n, 2)
    piece_angle: np.ndarray  # (n,)
    # scoliosis and axial rotation: lateral shift (mm, spine-frame x) of the centre line and
    # rotation (radians, about the centre line) of the cross-section, linear between lateral_u
    lateral_u: np.ndarray
    lateral_x: np.ndarray
    twist: np.ndarray
    # spondylolisthesis: AP shift (mm, + posterior) of the centre line, linear between slip_u
    slip_u: np.ndarray
    slip_v: np.ndarray
    body_u: np.ndarray  # (9,) body centres, top-down
    body_h: np.ndarray
    body_a: np.ndarray
    body_b: np.ndarray
    canal_a: np.ndarray  # bony canal half depth / half width at each vertebra
    canal_b: np.ndarray
    transverse: np.ndarray
    disc_u: np.ndarray  # (8,) disc centres, top-down
    disc_h: np.ndarray
    disc_degen: np.ndarray  # (8,) nucleus degeneration 0..1 (nuisance, unrelated to labels)
    u_conus: float  # the cord ends here
    u_sac_end: float  # the dural sac (CSF) ends here
    torso: Torso
    sacral_disc: tuple[float, float] | None = None  # (U, height) of a disc-like S1/S2 structure, if any
    canal_n: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(8))
    foramen_n: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((2, 8)))
    recess_n: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((2, 8)))

    # ---- frames ---------------------------------------------------------------------
    def _piece(self, u) -> np.ndarray:
        return np.clip(np.searchsorted(self.piece_u, u, side="right") - 1, 0, len(self.piece_kappa) - 1)

    def _centre_line(self, u: float) -> tuple[np.ndarray, float]:
        """(y, z) and tangent angle of the centre line at U."""
        i = int(self._piece(u))
        ref = self.piece_u[1] if i == 0 else self.piece_u[i]
        k, a0 = float(self.piece_kappa[i]), float(self.piece_angle[i])
        a = a0 + k * (u - ref)
        yz = self.piece_yz[i] + (_posterior(a0) - _posterior(a)) / k
        return yz, a

    def _piece_table(self) -> np.ndarray:
        """(n, 6) per piece: reference U, sign of the curvature, radius, tangent
        angle at the reference, centre of curvature (y, z)."""
        k, a0 = self.piece_kappa, self.piece_angle
        ref = np.concatenate([[self.piece_u[1]], self.piece_u[1:-1]])
        s, radius = np.sign(k), 1.0 / np.abs(k)
        cy = self.piece_yz[:, 0] + s * radius * np.cos(a0)
        cz = self.piece_yz[:, 1] - s * radius * np.sin(a0)
        return np.column_stack([ref, s, radius, a0, cy, cz])

    def straighten(self, x, y, z):
        """Spine-frame coordinates (arrays) -> (U, V, W), computed in the input's float dtype
        (float32 for rendering: fast, about 1e-3 mm)."""
        dtype = np.result_type(x, y, z, np.float32)
        f = dtype.type
        x, y, z = (np.asarray(c, dtype=dtype) for c in (x, y, z))
        # piece: walk from the junction where the spine is upright (the middle) up or down
        # through the normal lines at the junctions, as long as the point lies beyond them;
        # robust while each half turns less than about 90 degrees
        n = len(self.piece_kappa)
        beyond = []  # beyond[j - 1]: on the head side of the normal line at the start of piece j
        for j in range(1, n):
            (py, pz), a = self.piece_yz[j], float(self.piece_angle[j])
            beyond.append((y - f(py)) * f(np.sin(a)) + (z - f(pz)) * f(np.cos(a)) >= 0)
        mid = int(np.argmin(np.abs(self.piece_angle[1:]))) + 1
        up, down = beyond[mid - 1].copy(), ~beyond[mid - 1]
        piece = np.where(up, mid, mid - 1).astype(np.intp)
        for j in range(mid + 1, n):
            up &= beyond[j - 1]
            piece += up
        for j in range(mid - 1, 0, -1):
            down &= ~beyond[j - 1]
            piece -= down
        ref, s, radius, a0, cy, cz = np.moveaxis(self._piece_table().astype(dtype)[piece], -1, 0)
        dy, dz = y - cy, z - cz
        rel = np.arctan2(s * dz, -s * dy) - a0
        rel -= f(2 * np.pi) * np.round(rel * f(1 / (2 * np.pi)))
        u = ref + rel * s * radius
        v0 = s * (radius - np.hypot(dy, dz))
        if np.any(self.slip_v):
            v0 -= np.interp(u, self.slip_u, self.slip_v).astype(dtype)
        w0 = x - np.interp(u, self.lateral_u, self.lateral_x).astype(dtype)
        if np.any(self.twist):
            psi = np.interp(u, self.lateral_u, self.twist).astype(dtype)
            c, sn = np.cos(psi), np.sin(psi)
            v0, w0 = c * v0 + sn * w0, c * w0 - sn * v0
        return u, v0, w0

    def point(self, u: float, v: float = 0.0, w: float = 0.0) -> np.ndarray:
        """(U, V, W) -> spine-frame xyz."""
        yz, a = self._centre_line(u)
        psi = float(np.interp(u, self.lateral_u, self.twist))
        v0 = np.cos(psi) * v - np.sin(psi) * w
        w0 = np.sin(psi) * v + np.cos(psi) * w
        yz = yz + (v0 + float(np.interp(u, self.slip_u, self.slip_v))) * _posterior(a)
        return np.array([w0 + float(np.interp(u, self.lateral_u, self.lateral_x)), yz[0], yz[1]])

    def directions(self, u: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit (superior tangent, posterior) directions of the centre line at U (spine frame),
        in the sagittal plane of the spine frame (scoliosis and rotation left out)."""
        _, a = self._centre_line(u)
        return np.array([0.0, np.sin(a), np.cos(a)]), np.array([0.0, *_posterior(a)])

    def tangent_angle(self, u: float) -> float:
        """Angle (radians) of the centre line's tangent at U from spine-frame +z towards +y."""
        return float(self._centre_line(u)[1])

    def torso_v(self, y, z):
        """Posterior distance along the mid-lumbar axis (straight, unlike V) of spine-frame (y, z)."""
        u = self.disc_u[5]
        _, posterior = self.directions(u)
        centre = self.point(u)
        return (y - float(centre[1])) * float(posterior[1]) + (z - float(centre[2])) * float(posterior[2])

    def to_patient(self, points: np.ndarray) -> np.ndarray:
        """Spine-frame points (..., 3) -> patient frame."""
        return np.asarray(points) @ self.rotation.T + self.offset

    def to_spine(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points) - self.offset) @ self.rotation

    def vectors_to_patient(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors) @ self.rotation.T

    def vectors_to_spine(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors) @ self.rotation

    # ---- smooth profiles along the spine ------------------------------------------------
    def profile(self, values: np.ndarray, u):
        """Linear interpolation of a per-vertebra quantity at U (constant beyond the ends)."""
        return np.interp(u, self.body_u[::-1], values[::-1])

    def wall(self, u):
        """V of the posterior wall of the vertebral bodies at U."""
        return self.profile(self.body_a, u)

    def sac_axes(self, u):
        """Half axes (AP, LR) of the dural sac at U."""
        return self.profile(self.canal_a, u) - SAC_MARGIN_AP, self.profile(self.canal_b, u) - SAC_MARGIN_LR

    # ---- graded structures ------------------------------------------------------------
    def foramen_span(self, disc: int) -> tuple[float, float]:
        """(centre, half height) in t = U - disc_u of the foramen of a disc: from the top of
        the lower pedicle to the bottom of the upper one."""
        half = self.disc_h[disc] / 2
        roof = half + 0.48 * self.body_h[disc]
        floor = -half - 0.12 * self.body_h[disc + 1]
        return (roof + floor) / 2, (roof - floor) / 2

    def canal_point(self, level: int) -> np.ndarray:
        """Centre of the dural sac at a graded disc (spine frame)."""
        u = self.disc_u[GRADED_DISCS[level]]
        sa, _ = self.sac_axes(u)
        return self.point(u, self.wall(u) + SAC_GAP_ANTERIOR + sa, 0.0)

    def foramen_point(self, level: int, side: int) -> np.ndarray:
        disc = GRADED_DISCS[level]
        tc, _ = self.foramen_span(disc)
        u = self.disc_u[disc] + tc
        w = SIDE_SIGN[side] * (self.profile(self.canal_b, u) + FORAMEN_LATERAL)
        return self.point(u, self.wall(u) + FORAMEN_FORWARD, w)

    def recess_point(self, level: int, side: int) -> np.ndarray:
        u = self.disc_u[GRADED_DISCS[level]]
        _, sb = self.sac_axes(u)
        return self.point(u, self.wall(u) + RECESS_FORWARD, SIDE_SIGN[side] * (sb + RECESS_LATERAL))

    def with_narrowing(self, narrowing: np.ndarray) -> Spine:
        """A copy whose graded structures show a (25,) narrowing vector (LABEL_COLUMNS order)."""
        narrowing = np.clip(np.asarray(narrowing, dtype=np.float64), 0.0, 1.0)
        if narrowing.shape != (len(schema.LABELS),):
            raise ValueError(f"narrowing must have shape ({len(schema.LABELS)},), got {narrowing.shape}")
        canal, foramen, recess = np.zeros(8), np.zeros((2, 8)), np.zeros((2, 8))
        for value, label in zip(narrowing, schema.LABELS):
            disc = GRADED_DISCS[schema.LEVELS.index(label.level)]
            side = LEFT if label.side == "left" else RIGHT
            if label.family == "spinal":
                canal[disc] = value
            elif label.family == "foraminal":
                foramen[side, disc] = value
            else:
                recess[side, disc] = value
        return dataclasses.replace(self, canal_n=canal, foramen_n=foramen, recess_n=recess)


def _posterior(angle) -> np.ndarray:
    """(y, z) posterior unit normal of a centre-line tangent at the given angle."""
    return np.array([np.cos(angle), -np.sin(angle)])


def _small_rotation(rng: np.random.Generator, max_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation about x, then y, then z by uniform angles within +-max_deg."""
    ax, ay, az = np.deg2rad(rng.uniform(-1, 1, 3) * np.asarray(max_deg))
    return rotation_xyz(ax, ay, az)


def rotation_xyz(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


# Lumbar shape (see targets.SPINE_SHAPE for the real figures it is drawn to match).
# Share of the lordosis per segment between neighbouring graded discs, bottom-up
# (L5/S1-L4/L5, L4/L5-L3/L4, L3/L4-L2/L3, L2/L3-L1/L2): it grows caudally.
LORDOSIS_WEIGHTS = np.array([0.30, 0.28, 0.24, 0.18])
MAX_CURVATURE = 1 / 75.0  # 1/mm: tightest bend of any piece (keeps the straightening unambiguous near the spine)
SIZE_SIGMA = 0.105  # log-sd of a study's vertebra + disc size
BEND_STRESS_DEG = (0.0, 62.0)  # stress profile: bend drawn uniformly over this range (about real p0.5..p99.5)
SPINE_VARIANTS = ("faint_l5s1", "sacral_disc")
# Spondylolisthesis: share of studies (default, stress), and per slipped disc (L3/L4, L4/L5, L5/S1)
# its share; the vertebra above moves anterior (3-10 mm, at L5/S1 3-16 mm) or, in a fifth, posterior (2-5 mm).
SLIP_SHARE = (0.12, 0.3)
SLIP_LEVELS = ((5, 6, 7), (0.15, 0.6, 0.25))


def draw_bend(rng: np.random.Generator, stress: bool = False) -> float:
    """Bend (degrees) between the L1/L2->L2/L3 and L4/L5->L5/S1 directions the shape aims at."""
    if stress:
        return float(rng.uniform(*BEND_STRESS_DEG))
    return float(np.clip(rng.gamma(5.3, 5.9), 0.0, 80.0))


def _segment_angles(rng: np.random.Generator, bend_deg: float) -> np.ndarray:
    """Angles (radians) of the four graded segments, bottom-up, whose chord bend is about bend_deg."""
    w = rng.dirichlet(LORDOSIS_WEIGHTS * 8.0)
    effective = 0.5 * w[0] + w[1] + w[2] + 0.5 * w[3]  # chord directions sit at the segment middles
    angles = np.deg2rad(bend_deg) * w / effective
    return angles + np.deg2rad(rng.normal(0.0, 3.5, 4))


def build_spine(rng: np.random.Generator, stress: bool = False, variant: str | None = None) -> Spine:
    """A random healthy spine (narrowing 0 everywhere); size, lordosis, scoliosis and rotation
    vary per study. stress: bend and scoliosis drawn over the hard end. variant: one of
    SPINE_VARIANTS (a barely visible L5/S1 disc, a disc-like S1/S2 structure) or None."""
    if variant is not None and variant not in SPINE_VARIANTS:
        raise ValueError(f"unknown spine variant {variant!r}; known: {SPINE_VARIANTS}")
    scale = float(np.exp(np.clip(rng.normal(0.0, SIZE_SIGMA), -2.6 * SIZE_SIGMA, 2.6 * SIZE_SIGMA)))
    jitter = lambda n: rng.uniform(0.92, 1.08, n)  # noqa: E731
    body_h = _BODY_H * scale * jitter(9)
    disc_h = _DISC_H * scale * jitter(8)
    degen = np.clip(rng.beta(2, 4, 8) + np.linspace(-0.2, 0.2, 8), 0, 1)
    if variant == "faint_l5s1":  # collapsed, dark lowest disc
        disc_h[7] *= rng.uniform(0.25, 0.4)
        degen[7] = 1.0
    # stack bottom-up from the S1 upper endplate (U = 0)
    body_u = np.empty(9)
    disc_u = np.empty(8)
    body_u[8] = -body_h[8] / 2
    top = 0.0
    for d in range(7, -1, -1):
        disc_u[d] = top + disc_h[d] / 2
        top += disc_h[d]
        body_u[d] = top + body_h[d] / 2
        top += body_h[d]
    width = rng.uniform(0.93, 1.07)
    canal = rng.uniform(0.92, 1.08)

    # centre line, bottom-up: knots at S1/S2, the graded discs and T12/L1; a curvature per piece
    knots = np.concatenate([[body_u[8] - 0.5 * body_h[8]], disc_u[[7, 6, 5, 4, 3, 2]]])
    seg = _segment_angles(rng, draw_bend(rng, stress))
    kappa = np.empty(len(knots) + 1)
    kappa[0] = -rng.uniform(0.002, 0.005)  # lower sacrum: kyphotic, curving forward
    kappa[2:6] = seg / np.diff(knots[1:6])  # the four graded segments
    kappa[6] = (0.5 * seg[3] + np.deg2rad(rng.normal(0, 2.0))) / (knots[6] - knots[5])  # L1 segment
    kappa[7] = rng.uniform(-0.003, 0.0)  # thoracolumbar junction: straight to slightly kyphotic
    kappa[1] = kappa[2] * rng.uniform(0.0, 0.6)  # S1: the lumbosacral curve fades into the sacrum
    sign = np.where(kappa < 0, -1.0, 1.0)
    kappa = sign * np.clip(np.abs(kappa), 1e-4, MAX_CURVATURE)
    piece_u = np.concatenate([[-np.inf], knots, [np.inf]])
    # tangent angle at each knot, zero at L3/L4 (knots[3]): the lumbar spine stands upright
    angle = np.concatenate([[0.0], np.cumsum(kappa[1:-1] * np.diff(knots))])
    angle -= angle[3]
    yz = np.zeros((len(knots), 2))
    for j in range(len(knots) - 1):
        yz[j + 1] = yz[j] + (_posterior(angle[j]) - _posterior(angle[j + 1])) / kappa[j + 1]
    yz -= yz[1] - np.array([0.0, disc_h[7] / 2])  # U = 0 near the spine-frame origin
    piece_yz = np.vstack([yz[0], yz])  # piece 0 is referenced at its top end, the first knot
    piece_angle = np.concatenate([[angle[0]], angle])

    # scoliosis (lateral C-curve of the lumbar spine) with axial rotation towards its convexity
    lo, hi = disc_u[7] - 30.0, disc_u[1]
    lateral_u = np.linspace(lo, hi, 13)
    bump = np.sin(np.pi * (lateral_u - lo) / (hi - lo))
    amplitude = float(np.clip(rng.normal(0.0, 6.0 if stress else 3.0), -14.0, 14.0))
    twist = np.deg2rad(np.clip(0.5 * amplitude + rng.normal(0.0, 2.5 if stress else 1.5), -9.0, 9.0))

    slip_u, slip_v = np.array([0.0, 1.0]), np.zeros(2)
    if rng.random() < SLIP_SHARE[stress]:
        d = int(rng.choice(SLIP_LEVELS[0], p=SLIP_LEVELS[1]))
        worst = 16.0 if d == 7 else 10.0  # isthmic slips at L5/S1 go further
        step = -rng.uniform(3.0, worst) if rng.random() < 0.8 else rng.uniform(2.0, 5.0)
        slip_u = np.array([disc_u[d] - disc_h[d] / 2, disc_u[d] + disc_h[d] / 2])
        slip_v = np.array([0.0, step * scale])

    tilt = rotation_xyz(np.deg2rad(rng.uniform(-6, 6)), 0.0, 0.0)
    rotation = _small_rotation(rng, (0.0, 3.0, 4.0)) @ tilt
    offset = np.array([rng.uniform(-15, 15), rng.uniform(-40, 20), rng.uniform(-420, -150)])
    waves = np.column_stack([rng.normal(0, 0.08, (3, 3)), rng.uniform(0, 2 * np.pi, 3)])
    back, half_ap = float(rng.uniform(95, 120)), float(rng.uniform(105, 135))
    torso = Torso(
        centre_v=back - half_ap, half_ap=half_ap, half_lr=float(rng.uniform(140, 175)),
        fat=float(rng.uniform(10, 30)), waves=waves,
    )
    sacral_disc = None
    if variant == "sacral_disc":  # transitional anatomy: a disc-like S1/S2 gap in the sacrum
        sacral_disc = (float(-body_h[8] * rng.uniform(0.95, 1.15)), float(rng.uniform(3.0, 6.0) * scale))
    return Spine(
        rotation=rotation, offset=offset, piece_u=piece_u, piece_kappa=kappa, piece_yz=piece_yz,
        piece_angle=piece_angle, lateral_u=lateral_u, lateral_x=amplitude * bump, twist=twist * bump,
        slip_u=slip_u, slip_v=slip_v,
        body_u=body_u, body_h=body_h, body_a=_BODY_A * width * jitter(9), body_b=_BODY_B * width * jitter(9),
        canal_a=_CANAL_A * canal, canal_b=_CANAL_B * canal, transverse=_TRANSVERSE * scale,
        disc_u=disc_u, disc_h=disc_h, disc_degen=degen,
        u_conus=float(disc_u[3] + rng.uniform(-8, 15)), u_sac_end=float(body_u[8] - rng.uniform(20, 35)),
        torso=torso, sacral_disc=sacral_disc,
    )
