"""A schematic 3-D lumbar spine for one synthetic study, in millimetres.

Two frames. The patient frame is DICOM LPS (+x patient left, +y posterior, +z head); all
DICOM geometry is written in it. The spine frame is a rigid copy of it
(``patient = rotation @ spine + offset``) in which the centre line of the vertebral bodies
lies in the plane x = 0: a circular arc (the lordosis) up to the top of L1, then a
straight line. Every structure is placed in the straightened coordinates of that line:

- ``U``: arc length along the centre line, 0 at the upper endplate of S1, + towards the head
- ``V``: distance from the centre line towards posterior
- ``W``: distance towards patient left (= spine-frame x)

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
    radius: float  # lordosis arc radius
    u_apex: float  # U of the arc's most anterior point
    u_straight: float  # above this U the centre line is straight
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
    canal_n: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(8))
    foramen_n: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((2, 8)))
    recess_n: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((2, 8)))

    # ---- frames ---------------------------------------------------------------------
    @property
    def _phi0(self) -> float:
        return -self.u_apex / self.radius

    @property
    def _arc_centre(self) -> tuple[float, float]:
        return self.radius * np.cos(self._phi0), -self.radius * np.sin(self._phi0)

    def _straight_start(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point, tangent and posterior direction (y, z) where the straight part starts."""
        phi = self._phi0 + self.u_straight / self.radius
        oy, oz = self._arc_centre
        point = np.array([oy - self.radius * np.cos(phi), oz + self.radius * np.sin(phi)])
        return point, np.array([np.sin(phi), np.cos(phi)]), np.array([np.cos(phi), -np.sin(phi)])

    def straighten(self, x, y, z):
        """Spine-frame coordinates (arrays) -> (U, V, W), same dtype as the input."""
        oy, oz = (float(c) for c in self._arc_centre)
        radius, phi0 = float(self.radius), float(self._phi0)
        dy, dz = y - oy, z - oz
        u = radius * (np.arctan2(dz, -dy) - phi0)
        v = radius - np.hypot(dy, dz)
        start, tangent, posterior = (tuple(float(c) for c in a) for a in self._straight_start())
        above = u > self.u_straight
        if np.any(above):
            sy, sz = y - start[0], z - start[1]
            u = np.where(above, float(self.u_straight) + sy * tangent[0] + sz * tangent[1], u)
            v = np.where(above, sy * posterior[0] + sz * posterior[1], v)
        return u, v, x

    def point(self, u: float, v: float = 0.0, w: float = 0.0) -> np.ndarray:
        """(U, V, W) -> spine-frame xyz."""
        if u > self.u_straight:
            start, tangent, posterior = self._straight_start()
            yz = start + (u - self.u_straight) * tangent + v * posterior
            return np.array([w, yz[0], yz[1]])
        oy, oz = self._arc_centre
        phi = self._phi0 + u / self.radius
        r = self.radius - v
        return np.array([w, oy - r * np.cos(phi), oz + r * np.sin(phi)])

    def directions(self, u: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit (superior tangent, posterior) directions of the centre line at U (spine frame)."""
        if u > self.u_straight:
            _, tangent, posterior = self._straight_start()
        else:
            phi = self._phi0 + u / self.radius
            tangent, posterior = np.array([np.sin(phi), np.cos(phi)]), np.array([np.cos(phi), -np.sin(phi)])
        return np.array([0.0, *tangent]), np.array([0.0, *posterior])

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


def build_spine(rng: np.random.Generator) -> Spine:
    """A random healthy spine (narrowing 0 everywhere); sizes vary per study."""
    scale = rng.uniform(0.92, 1.08)
    jitter = lambda n: rng.uniform(0.95, 1.05, n)  # noqa: E731
    body_h = _BODY_H * scale * jitter(9)
    disc_h = _DISC_H * scale * jitter(8)
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
    radius = rng.uniform(230.0, 330.0)
    u_apex = rng.uniform(60.0, 100.0)
    u_straight = body_u[3] + body_h[3] / 2  # top of L1
    # tilt the whole spine about x so that the lumbar segment stands roughly upright
    phi_mid = (disc_u[5] - u_apex) / radius
    tilt = rotation_xyz(-phi_mid + np.deg2rad(rng.uniform(-6, 6)), 0.0, 0.0)
    rotation = _small_rotation(rng, (0.0, 3.0, 4.0)) @ tilt
    offset = np.array([rng.uniform(-15, 15), rng.uniform(-40, 20), rng.uniform(-420, -150)])
    degen = np.clip(rng.beta(2, 4, 8) + np.linspace(-0.2, 0.2, 8), 0, 1)
    waves = np.column_stack([rng.normal(0, 0.08, (3, 3)), rng.uniform(0, 2 * np.pi, 3)])
    back, half_ap = float(rng.uniform(95, 120)), float(rng.uniform(105, 135))
    torso = Torso(
        centre_v=back - half_ap, half_ap=half_ap, half_lr=float(rng.uniform(140, 175)),
        fat=float(rng.uniform(10, 30)), waves=waves,
    )
    return Spine(
        rotation=rotation, offset=offset, radius=float(radius), u_apex=float(u_apex), u_straight=float(u_straight),
        body_u=body_u, body_h=body_h, body_a=_BODY_A * width * jitter(9), body_b=_BODY_B * width * jitter(9),
        canal_a=_CANAL_A * canal, canal_b=_CANAL_B * canal, transverse=_TRANSVERSE * scale,
        disc_u=disc_u, disc_h=disc_h, disc_degen=degen,
        u_conus=float(disc_u[3] + rng.uniform(-8, 15)), u_sac_end=float(body_u[8] - rng.uniform(20, 35)),
        torso=torso,
    )
