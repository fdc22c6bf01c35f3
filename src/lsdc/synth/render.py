"""Render one MR slice of a synthetic spine: tissue map -> contrast -> bias, blur, Rician noise.

Each pixel is mapped through the slice geometry to spine-frame coordinates, straightened to
(U, V, W) (see anatomy.py) and painted with the tissue of the last shape containing it.
Shapes of the spine are evaluated only on the pixels of a slice near them.
Graded structures change with their own narrowing only:

- canal (disc k): disc bulge from the front and ligamentum flavum from the back close the
  dural sac at the disc level; the sac's AP diameter falls about linearly with narrowing.
- foramen (disc k, side): the foraminal fat around the exiting root shrinks, replaced by dark
  tissue, on that side's parasagittal planes.
- lateral recess (disc k, side): a dark mass (facet / ligament hypertrophy) grows into the
  lateral recess and the side of the sac at the disc level, on that side only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from lsdc.dicom import SliceGeometry
from lsdc.synth import anatomy
from lsdc.synth.anatomy import Spine

CONTRASTS: tuple[str, ...] = ("t1", "t2", "stir")
# Tissue signal as a fraction of the series maximum: (T1, T2, STIR).
TISSUES: dict[str, tuple[float, float, float]] = {
    "air": (0.0, 0.0, 0.0),
    "fat": (0.9, 0.7, 0.05),
    "muscle": (0.35, 0.3, 0.3),
    "visceral": (0.42, 0.45, 0.35),
    "marrow": (0.7, 0.5, 0.25),
    "bone": (0.45, 0.3, 0.18),  # posterior elements: thin cortex around marrow
    "cortex": (0.05, 0.05, 0.05),
    "ligament": (0.05, 0.05, 0.05),
    "annulus": (0.3, 0.2, 0.2),
    "nucleus": (0.35, 0.75, 0.8),
    "nucleus_degen": (0.3, 0.3, 0.3),
    "csf": (0.15, 0.9, 0.95),
    "joint": (0.15, 0.75, 0.8),
    "nerve": (0.3, 0.35, 0.35),
    "cord": (0.35, 0.4, 0.4),
    "vessel": (0.03, 0.03, 0.03),
}


@dataclass(frozen=True)
class SeriesStyle:
    """Per-series appearance: contrast, intensity scale and artefacts."""

    contrast: str  # one of CONTRASTS
    scale: float  # 12-bit value of intensity fraction 1.0
    tissue_gain: tuple[float, ...]  # per TISSUES entry multiplicative jitter
    bias: tuple[float, ...]  # (gx, gy, gz, quadratic) of the smooth bias field
    bias_centre: tuple[float, float, float]  # spine-frame centre of the bias field
    noise: float  # Rician noise sigma (fraction of the maximum)
    blur: float  # Gaussian blur sigma in pixels

    def lut(self) -> dict[str, float]:
        c = CONTRASTS.index(self.contrast)
        return {name: values[c] * g for (name, values), g in zip(TISSUES.items(), self.tissue_gain)}


def draw_style(rng: np.random.Generator, contrast: str, centre: np.ndarray) -> SeriesStyle:
    return SeriesStyle(
        contrast=contrast,
        scale=float(rng.uniform(500, 3600)),
        tissue_gain=tuple(float(g) for g in rng.uniform(0.9, 1.1, len(TISSUES))),
        bias=tuple(float(b) for b in (*rng.uniform(-0.15, 0.15, 3), rng.uniform(-0.15, 0.05))),
        bias_centre=tuple(float(c) for c in centre + rng.normal(0, 20, 3)),
        noise=float(rng.uniform(0.012, 0.03)),
        blur=float(rng.uniform(0.45, 0.8)),
    )


def render_slice(spine: Spine, geom: SliceGeometry, style: SeriesStyle, rng: np.random.Generator) -> np.ndarray:
    """uint16 pixels (rows, cols) with values in 0..4095."""
    x, y, z = geom.pixel_grid()
    u, v, w = spine.straighten(x, y, z)
    img = tissue_map(spine, u, v, w, spine.torso_v(y, z), style.lut())
    gx, gy, gz, quad = style.bias
    cx, cy, cz = style.bias_centre
    dx, dy, dz = (x - cx) / 150.0, (y - cy) / 150.0, (z - cz) / 150.0
    img *= 1.0 + gx * dx + gy * dy + gz * dz + quad * (dx * dx + dy * dy + dz * dz)
    img = gaussian_filter(img, style.blur, mode="nearest")
    n1 = rng.standard_normal(img.shape, dtype=np.float32)
    n2 = rng.standard_normal(img.shape, dtype=np.float32)
    sigma = np.float32(style.noise)
    img = np.sqrt((img + sigma * n1) ** 2 + (sigma * n2) ** 2)
    return np.clip(np.rint(img * np.float32(style.scale)), 0, 4095).astype(np.uint16)


def tissue_map(spine: Spine, u, v, w, torso_v, lut: dict[str, float]) -> np.ndarray:
    """Float32 image of tissue signal fractions at straightened coordinates (U, V, W);
    torso_v places the (straight) body outline."""
    img = np.full(u.shape, lut["air"], dtype=np.float32)
    _paint_torso(spine, img, u, v, w, torso_v, lut)
    a_max, a_min = float(spine.body_a.max()) * 1.1, float(spine.body_a.min())
    ca_max, b_max = float(spine.canal_a.max()), float(spine.body_b.max()) * 1.1
    cb_max, aw = float(spine.canal_b.max()), np.abs(w)
    flat = img.reshape(-1)
    regions = (
        (_paint_bodies, (v > -a_max - 1) & (v < a_max + 1) & (aw < b_max + 1)),
        (_paint_canal, (v > a_min - 6) & (v < a_max + 2 * ca_max + 45) & (aw < cb_max + 13)),
        (_paint_transverse,
         (np.abs(v - a_min - ca_max) < 8) & (aw > cb_max) & (aw < cb_max + 4 + float(spine.transverse.max()))),
    )
    for paint, mask in regions:
        idx = np.flatnonzero(mask)
        if idx.size:
            part = flat[idx]
            paint(spine, part, _Local(spine, u.reshape(-1)[idx], v.reshape(-1)[idx], w.reshape(-1)[idx]), lut)
            flat[idx] = part
    return img


def _paint_torso(spine: Spine, img, u, v, w, torso_v, lut) -> None:
    """Body outline, subcutaneous fat, bowel, retroperitoneal fat, muscles, great vessels."""
    t = spine.torso
    np.copyto(img, lut["fat"], where=_ellipse(torso_v, t.centre_v, t.half_ap, w, 0.0, t.half_lr) <= 1)
    inner = _ellipse(torso_v, t.centre_v, t.half_ap - t.fat, w, 0.0, t.half_lr - t.fat) <= 1
    texture = sum(np.sin(k[0] * u + k[1] * v + k[2] * w + k[3]) for k in t.waves[:2].astype(np.float32))
    np.copyto(img, lut["visceral"] * (1.0 + 0.08 * texture), where=inner)
    a, b = float(spine.body_a[5]), float(spine.body_b[5])
    np.copyto(img, lut["fat"], where=inner & (_ellipse(v, -a + 2, a + 14, w, 0.0, b + 32) <= 1))
    np.copyto(img, lut["muscle"], where=inner & (_ellipse(v, 66.0, 48.0, w, 0.0, 72.0) <= 1))
    # psoas: from T12 down, growing towards L5
    top, bottom = float(spine.body_u[2]), float(spine.body_u[8])
    lvl = np.clip((top - u) / (top - float(spine.body_u[7])), 0.0, 1.0)
    aw = np.abs(w)
    psoas = (u < top) & (u > bottom) & (
        _ellipse(v, -0.1 * a, 5 + 11 * lvl, aw, b + 6 + 12 * lvl, 5 + 12 * lvl) <= 1)
    np.copyto(img, lut["muscle"], where=psoas)
    bif = float(spine.body_u[6])  # aortic bifurcation near L4
    aorta = (u > bif) & (_ellipse(v, -a - 13, 9.0, w, 10.0, 9.0) <= 1)
    ivc = (u > float(spine.body_u[7])) & (_ellipse(v, -a - 10, 7.0, w, -16.0, 11.0) <= 1)
    iliac = (u <= bif) & (u > -40) & (_ellipse(v, -a - 10, 6.0, aw, 18 + 0.45 * (bif - u), 6.0) <= 1)
    np.copyto(img, lut["vessel"], where=aorta | ivc | iliac)


def _ellipse(a, ca, ra, b, cb, rb):
    x, y = (a - ca) / ra, (b - cb) / rb
    return x * x + y * y


def _sq(x):
    return x * x


class _Local:
    """Per-pixel segment quantities of a crop: the disc segment k (between the body centres
    above and below disc k), t = U - disc centre, the vertebra vb of the body part, and the
    body / canal sizes at U, linear between body centres. All float32."""

    def __init__(self, spine: Spine, u, v, w):
        f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
        self.u, self.v, self.w = f32(u), f32(v), f32(w)
        body_u = f32(spine.body_u)
        above = np.zeros(self.u.shape, dtype=np.int8)
        for c in body_u:
            above += self.u < c
        self.k = k = np.clip(above - 1, 0, 7).astype(np.intp)
        seg = _segment_table(spine)[k]  # (..., n) rows gathered once
        self.t = self.u - seg[..., 0]
        self.half = seg[..., 1]
        frac = np.clip((self.u - seg[..., 2]) * seg[..., 3], 0, 1)
        self.wall = seg[..., 4] + frac * seg[..., 5]
        self.body_b = seg[..., 6] + frac * seg[..., 7]
        self.ca = seg[..., 8] + frac * seg[..., 9]
        self.cb = seg[..., 10] + frac * seg[..., 11]
        self.canal_n, self.h_up, self.h_lo = seg[..., 12], seg[..., 13], seg[..., 14]
        self.vb = k + (self.t <= 0)
        vert = _vertebra_table(spine)[self.vb]
        self.tau = self.u - vert[..., 0]
        self.hb, self.a_b, self.b_b, self.transverse = vert[..., 1], vert[..., 2], vert[..., 3], vert[..., 4]
        self.aw = np.abs(self.w)
        self.side = (self.w < 0).astype(np.intp)  # anatomy.LEFT = 0 is +W
        self.sa, self.sb = self.ca - anatomy.SAC_MARGIN_AP, self.cb - anatomy.SAC_MARGIN_LR


def _segment_table(spine: Spine) -> np.ndarray:
    """(8, 15) per disc segment k: disc centre, half height, lower body centre, 1 / distance
    between the body centres, then (value below, value above - below) of body half depth,
    body half width, canal half depth, canal half width; canal narrowing; body heights
    above and below."""
    lo, hi = np.arange(1, 9), np.arange(8)
    cols = [spine.disc_u, spine.disc_h / 2, spine.body_u[lo], 1.0 / (spine.body_u[hi] - spine.body_u[lo])]
    for values in (spine.body_a, spine.body_b, spine.canal_a, spine.canal_b):
        cols += [values[lo], values[hi] - values[lo]]
    cols += [spine.canal_n, spine.body_h[hi], spine.body_h[lo]]
    return np.stack(cols, axis=1).astype(np.float32)


def _vertebra_table(spine: Spine) -> np.ndarray:
    """(9, 5) per vertebra: body centre, height, half depth, half width, transverse process length."""
    cols = [spine.body_u, spine.body_h, spine.body_a, spine.body_b, spine.transverse]
    return np.stack(cols, axis=1).astype(np.float32)


def _paint_bodies(spine: Spine, img, p: _Local, lut) -> None:
    paint = lambda name, mask: np.copyto(img, lut[name], where=mask)  # noqa: E731
    v, w, t, half = p.v, p.w, p.t, p.half
    a_i, b_i = p.wall, p.body_b
    rn = _sq(_sq(v / (a_i * 1.03))) + _sq(_sq(w / (b_i * 1.03)))
    disc = (np.abs(t) <= half + 1.0) & (rn <= 1)
    paint("annulus", disc)
    nucleus = disc & ((_sq(t / (0.65 * half)) + _ellipse(v, -0.1 * a_i, 0.55 * a_i, w, 0.0, 0.62 * b_i)) <= 1)
    degen = spine.disc_degen.astype(np.float32)[p.k]
    np.copyto(img, lut["nucleus"] * (1 - degen) + lut["nucleus_degen"] * degen, where=nucleus)
    # vertebral bodies (superellipsoids: flat endplates, rounded corners) and the sacrum
    a_b, b_b = p.a_b, p.b_b
    sacrum = (p.vb == 8) & (p.tau < 0)
    sac_len = np.float32(90.0)
    tn = np.where(sacrum, p.tau / sac_len, 2 * p.tau / p.hb)
    a_b = np.where(sacrum, a_b * (1 - 0.45 * np.clip(-p.tau / sac_len, 0, 1)), a_b)
    r = _sq(_sq(v / a_b)) + _sq(_sq(w / b_b))
    tn2 = _sq(tn)
    f = tn2 * tn2 * tn2 + r * np.sqrt(r)
    paint("cortex", f <= 1)
    paint("marrow", f <= 0.75)
    if spine.sacral_disc is not None:  # a disc-like S1/S2 gap inside the sacrum
        u_d, h_d = spine.sacral_disc
        gap = sacrum & (np.abs(p.u - np.float32(u_d)) <= np.float32(h_d / 2)) & (r <= 0.85)
        paint("annulus", gap)
        paint("nucleus_degen", gap & (np.abs(p.u - np.float32(u_d)) <= np.float32(h_d / 4)) & (r <= 0.4))


def _paint_transverse(spine: Spine, img, p: _Local, lut) -> None:
    tp = p.transverse
    mask = (p.aw > p.cb + 2) & (p.aw < p.cb + 2 + tp)
    mask &= _ellipse(p.tau, 0.12 * p.hb, 0.13 * p.hb, p.v, p.wall + p.ca, 3.5) <= 1
    np.copyto(img, lut["bone"], where=mask)


def _paint_canal(spine: Spine, img, p: _Local, lut) -> None:
    """Posterior elements, canal, lateral recesses and foramina, with their narrowing."""
    paint = lambda name, mask: np.copyto(img, lut[name], where=mask)  # noqa: E731
    u, v, w, t, half, tau, hb, aw, wall = p.u, p.v, p.w, p.t, p.half, p.tau, p.hb, p.aw, p.wall
    ca, cb, sa, sb = p.ca, p.cb, p.sa, p.sb
    sacrum = (p.vb == 8) & (tau < 0)
    canal_c = wall + ca
    ring = (_ellipse(v, canal_c, ca + 5.5, w, 0.0, cb + 6.0) <= 1) & (v > canal_c)
    lamina_zone = (tau >= -0.55 * hb) & (tau <= 0.35 * hb) & ~sacrum
    paint("ligament", ring & ~lamina_zone)
    paint("bone", ring & (lamina_zone | sacrum))
    sp0 = wall + 2 * ca + 4.0
    tilt = tau + 0.18 * (v - sp0)
    paint("bone", (aw < 3.2) & (v > sp0 - 5) & (v < sp0 + 38) & (tilt >= -0.4 * hb) & (tilt <= 0.3 * hb) & ~sacrum)
    pedicle = (_ellipse(tau, 0.18 * hb, 0.2 * hb, aw, cb + 3.5, 3.8) <= 1) & (v > wall - 5) & (v < canal_c + 2)
    paint("bone", pedicle)
    h_up, h_lo = p.h_up, p.h_lo
    f_top, f_bot = half + 0.3 * h_up, -half - 0.35 * h_lo
    f_v, f_w = canal_c + 5.0, cb + 5.5
    facet = _sq((t - (f_top + f_bot) / 2) / ((f_top - f_bot) / 2)) + _ellipse(v, f_v, 6.5, aw, f_w, 5.5)
    paint("cortex", facet <= 1)
    paint("bone", facet <= 0.6)
    paint("joint", (facet <= 1) & (np.abs((v - f_v) + 0.8 * (aw - f_w)) < 0.7))

    # canal: epidural fat, dural sac (CSF, cord above the conus), lateral recesses
    paint("fat", _ellipse(v, canal_c, ca, w, 0.0, cb) <= 1)
    sac_c = wall + anatomy.SAC_GAP_ANTERIOR + sa
    paint("csf", (_ellipse(v, sac_c, sa, w, 0.0, sb) <= 1) & (u > spine.u_sac_end))
    taper = np.clip((u - spine.u_conus) / 12.0, 0.0, 1.0) + 1e-3
    paint("cord", (u > spine.u_conus) & (_ellipse(v, sac_c, 0.5 * sa * taper, w, 0.0, 0.45 * sb * taper) <= 1))
    lf_narrow = p.canal_n * np.clip((half + 4 - np.abs(t)) / 4, 0, 1)
    paint("ligament", _ellipse(v, wall + 2 * ca, 2.0 + lf_narrow * 2 * sa * 0.4, w, 0.0, cb * 0.85) <= 1)
    at_disc = np.abs(t) < half + 5
    recess_v, recess_w = wall + anatomy.RECESS_FORWARD, sb + anatomy.RECESS_LATERAL
    paint("fat", at_disc & ((_sq(t / (half + 4)) + _ellipse(v, recess_v, 3.2, aw, recess_w, 3.0)) <= 1))
    paint("nerve", at_disc & (_ellipse(v, wall + 3.0, 1.7, aw, sb + 0.3, 1.7) <= 1))

    # graded narrowing: canal (central bulge), lateral recess (posterolateral mass)
    depth = lf_narrow * 2 * sa * 0.6
    reach = depth * np.sqrt(np.clip(1 - _sq(w / sb), 0, 1))
    paint("annulus", (depth > 0.05) & (aw < sb) & (v >= wall - 1) & (v - (wall + anatomy.SAC_GAP_ANTERIOR) <= reach))
    ns = spine.recess_n.astype(np.float32)[p.side, p.k] + np.float32(1e-3)
    mass = (_sq(t / (half + 3)) + _ellipse(v, wall + 9.5, 9.0 * ns, aw, sb + 4.0, 7.0 * ns)) <= 1
    paint("ligament", mass & (ns > 0.02) & (aw < cb + 0.5))

    # neural foramina: fat shrinking with narrowing around the exiting root
    roof, floor = half + 0.48 * h_up, -half - 0.12 * h_lo  # as Spine.foramen_span
    tc, th = (roof + floor) / 2, (roof - floor) / 2
    fv_c, fw_c = wall + anatomy.FORAMEN_FORWARD, cb + anatomy.FORAMEN_LATERAL
    lat = 1 - _sq((aw - fw_c) / anatomy.FORAMEN_HALF_WIDTH)
    fd = anatomy.FORAMEN_HALF_DEPTH
    inside = lat > 0
    paint("ligament", inside & (_ellipse(t, tc, th, v, fv_c, fd) <= lat))
    nf = spine.foramen_n.astype(np.float32)[p.side, p.k]
    paint("fat", inside & (_ellipse(t, tc, th * (1 - 0.45 * nf), v, fv_c, fd * (1 - 0.75 * nf)) <= lat))
    paint("nerve", inside & (_ellipse(t, tc + 0.45 * th, 2.6, v, fv_c - 0.5, 2.6) <= lat))
