"""Plan one synthetic study: its spine, its series (sizes, contrasts, slice geometry, instance
numbers) and where each graded label's coordinate lies. Rendering is separate (render.py),
so one plan renders with any narrowing vector.

Slice geometry (dicom.SliceGeometry) is planned in the spine frame and written in the
patient frame (``Spine.to_patient``); both describe the same planes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from lsdc import schema
from lsdc.dicom import SliceGeometry
from lsdc.params import Synth
from lsdc.synth import anatomy, layout, render
from lsdc.synth.anatomy import Spine
from lsdc.synth.render import SeriesStyle

log = logging.getLogger(__name__)

SAG_T1, SAG_T2, AX_T2 = (schema.DESCRIPTION_OF_PLANE[p] for p in ("sag_t1", "sag_t2", "ax_t2"))
MISSING_SAG_T1, MISSING_SAG_T2 = "no_sag_t1", "no_sag_t2"
MIN_SIDE = 64  # smallest image side in pixels after image_scale
EDGE_CASES = ("faint_l5s1", "sacral_disc", "l1l2_top")  # rare studies, see layout.EDGE_STUDY_SHARE
AXIAL_FOV_MM = (160.0, 260.0)  # axial field of view across the columns
TOP_MARGIN_MM = 12.0  # the L1/L2 canal point lies at least this far below the top row (unless l1l2_top)


@dataclass(frozen=True, eq=False)
class SeriesPlan:
    series_id: int
    series_number: int
    description: str
    style: SeriesStyle
    slices: tuple[SliceGeometry, ...]  # spine frame, in instance order
    instance_numbers: tuple[int, ...]
    slice_thickness: float | None
    spacing: float
    mirrored: str | None = None  # "row" / "col": that direction flipped from the usual (pixels mirrored with it)
    localisers: tuple[int, ...] = ()  # indices into slices of slices of another orientation
    tagless: frozenset[int] = frozenset()  # instance numbers whose files lack SliceThickness / SpacingBetweenSlices
    order: str = "spatial"  # instance numbering: spatial, reversed, blocks_reversed, interleaved, round_robin

    @property
    def plane(self) -> str:
        return schema.PLANE_OF_DESCRIPTION[self.description]


@dataclass(frozen=True, eq=False)
class StudyPlan:
    study_id: int
    spine: Spine
    series: tuple[SeriesPlan, ...]
    edge: str | None = None  # one of EDGE_CASES or None

    def of_plane(self, plane: str) -> list[SeriesPlan]:
        return [s for s in self.series if s.plane == plane]


@dataclass(frozen=True)
class Coordinate:
    series_id: int
    instance_number: int
    condition: str
    level: str
    x: float
    y: float


def _shape(rng: np.random.Generator, plane: str, scale: float) -> tuple[int, int]:
    table = layout.IMAGE_SHAPES[plane]
    counts = np.array([c for *_, c in table], dtype=np.float64)
    rows, cols, _ = table[rng.choice(len(table), p=counts / counts.sum())]
    side = lambda n: max(MIN_SIDE, 2 * int(round(n * scale / 2)))  # noqa: E731
    return side(rows), side(cols)


def _instance_numbers(rng: np.random.Generator, n: int, order: np.ndarray) -> tuple[int, ...]:
    """Instance numbers for slices in `order` (slice index of instance 1, 2, ...)."""
    start = 1
    if rng.random() < layout.ODD_INSTANCE_OFFSET_SHARE:
        start = 1000 * int(rng.integers(1, 6)) + 31
    numbers = np.empty(n, dtype=np.int64)
    numbers[order] = np.arange(start, start + n)
    return tuple(int(i) for i in numbers)


def _thickness(rng: np.random.Generator, spacing: float, stress: bool) -> float | None:
    if rng.random() < layout.TAGLESS_SERIES_SHARE[stress]:  # some real files leave SliceThickness out
        return None
    return round(float(spacing * rng.uniform(0.8, 1.0)), 2)


def _tagless(rng: np.random.Generator, numbers: tuple[int, ...], stress: bool) -> frozenset[int]:
    """Instance numbers of the files of a series that lack the optional spacing tags."""
    if rng.random() >= layout.TAGLESS_FILES_SHARE[stress]:
        return frozenset()
    k = int(rng.integers(1, max(2, len(numbers) // 3) + 1))
    return frozenset(int(n) for n in rng.choice(numbers, size=min(k, len(numbers)), replace=False))


def _fov(rng: np.random.Generator, synth: Synth) -> float:
    """Sagittal field of view (mm): centre-weighted over synth.fov_mm, uniform when stress."""
    lo, hi = synth.fov_mm
    return float(lo + (hi - lo) * (rng.random() if synth.stress else rng.beta(2.0, 2.0)))


def _mirror(rng: np.random.Generator, synth: Synth, axes: tuple[str, ...]) -> str | None:
    if rng.random() >= layout.MIRRORED_SHARE[synth.stress]:
        return None
    return str(axes[int(rng.integers(len(axes)))])


def plan_sagittal(rng: np.random.Generator, spine: Spine, synth: Synth, description: str,
                  series_id: int, series_number: int, edge: str | None = None) -> SeriesPlan:
    plane = schema.PLANE_OF_DESCRIPTION[description]
    n = int(rng.integers(synth.sag_slices[0], synth.sag_slices[1] + 1))
    lateral = (float(spine.canal_b.max()) + anatomy.FORAMEN_LATERAL + 4.0
               + float(np.abs(spine.lateral_x).max()) + 25.0 * float(np.abs(np.sin(spine.twist)).max()))
    spacing = max(float(rng.uniform(3.3, 4.5)), 2 * lateral / max(n - 1, 1))
    rows, cols = _shape(rng, plane, synth.image_scale)
    pixel = _fov(rng, synth) / rows
    tilt = anatomy.rotation_xyz(*np.deg2rad(rng.uniform(-1, 1, 3) * (5.0, 3.0, 3.0)))
    mirrored = _mirror(rng, synth, ("row",))
    row_dir = spine.vectors_to_spine(tilt @ np.array([0.0, -1.0 if mirrored else 1.0, 0.0]))
    col_dir = spine.vectors_to_spine(tilt @ np.array([0.0, 0.0, -1.0]))
    normal = np.cross(row_dir, col_dir)
    # top row between the T11/T12 and the T12/L1 disc: levels must be counted from L5/S1
    u_top = float(rng.uniform(spine.disc_u[2] + 8, spine.disc_u[1] + 10))
    centre = spine.point(u_top) + col_dir * (rows - 1) / 2 * pixel
    ap_target = spine.point(spine.disc_u[5], float(rng.uniform(5, 35)))
    centre += row_dir * ((ap_target - centre) @ row_dir)
    centre += normal * ((np.array([rng.uniform(-3, 3), 0, 0]) - centre) @ normal)
    half_height = (rows - 1) / 2 * pixel
    top_point = spine.canal_point(0)
    if edge == "l1l2_top":  # L1/L2 just below the top edge
        centre += col_dir * ((top_point - centre) @ col_dir + half_height - float(rng.uniform(2.0, 6.0)))
    else:
        # keep the sacrum and every graded structure inside the image, L1/L2 first
        overshoot = (spine.point(-25.0) - centre) @ col_dir - half_height * 0.97
        if overshoot > 0:
            centre += col_dir * overshoot
        short = TOP_MARGIN_MM - ((top_point - centre) @ col_dir + half_height)
        if short > 0:
            centre -= col_dir * short
    corner = centre - row_dir * (cols - 1) / 2 * pixel - col_dir * half_height
    offsets = (np.arange(n) - (n - 1) / 2) * spacing
    slices = [SliceGeometry(corner + o * normal, row_dir, col_dir, pixel, pixel, rows, cols) for o in offsets]
    x_patient = np.array([spine.to_patient(s.ipp)[0] for s in slices])
    order = np.argsort(x_patient if rng.random() < 0.85 else -x_patient)  # usually right to left
    contrast = "t1" if plane == "sag_t1" else ("stir" if rng.random() < 0.3 else "t2")
    return _finish(rng, synth, series_id, series_number, description, contrast, spine, [slices[i] for i in order],
                   spacing, mirrored=mirrored)


def _finish(rng: np.random.Generator, synth: Synth, series_id: int, series_number: int, description: str,
            contrast: str, spine: Spine, ordered: list[SliceGeometry], spacing: float,
            numbering: np.ndarray | None = None, **extra) -> SeriesPlan:
    """A series whose instance numbers follow the given slice order (numbering: slice index
    of instance 1, 2, ...; default the given order)."""
    numbering = np.arange(len(ordered)) if numbering is None else numbering
    numbers = _instance_numbers(rng, len(ordered), numbering)
    return SeriesPlan(
        series_id=series_id, series_number=series_number, description=description,
        style=render.draw_style(rng, contrast, spine.point(spine.disc_u[5])),
        slices=tuple(ordered), instance_numbers=numbers,
        slice_thickness=_thickness(rng, spacing, synth.stress), spacing=spacing,
        tagless=_tagless(rng, numbers, synth.stress), **extra,
    )


def _axial_frame(rng: np.random.Generator, spine: Spine, u: float) -> tuple[np.ndarray, np.ndarray]:
    """(R, C) of an axial plane across the spine at U, angled along the disc and tilted a
    little: at most layout.MAX_AXIAL_TILT_DEG from the patient's axial plane."""
    jitter = 4.0  # degrees, cranio-caudal tilt added below
    limit = np.deg2rad(layout.MAX_AXIAL_TILT_DEG - jitter)
    head = spine.vectors_to_spine(np.array([0.0, 0.0, 1.0]))  # patient +z in the spine frame
    base = float(np.arctan2(head[1], head[2]))
    angle = float(np.clip(spine.tangent_angle(u), base - limit, base + limit))
    tangent, posterior = np.array([0.0, np.sin(angle), np.cos(angle)]), np.array([0.0, np.cos(angle), -np.sin(angle)])
    row0 = np.array([1.0, 0.0, 0.0])
    tilt_c, tilt_r = np.deg2rad(rng.uniform(-1, 1, 2) * (3.0, jitter))
    # rotate about the posterior axis (left-right tilt), then about the left axis (cranio-caudal tilt)
    row = np.cos(tilt_c) * row0 + np.sin(tilt_c) * tangent
    normal = np.cross(row, posterior)
    col = np.cos(tilt_r) * posterior + np.sin(tilt_r) * normal
    return row / np.linalg.norm(row), col / np.linalg.norm(col)


def _axial_grid(rng, spine: Spine, u: float, row_dir, col_dir, rows, cols, pixel) -> np.ndarray:
    """Corner (IPP) of an axial image whose centre sits a little anterior of the canal at U."""
    v = spine.wall(u) + spine.profile(spine.canal_a, u) + rng.uniform(-30, -5)
    centre = spine.point(u, v, float(rng.uniform(-8, 8)))
    return centre - row_dir * (cols - 1) / 2 * pixel - col_dir * (rows - 1) / 2 * pixel


def _flip(geom: SliceGeometry, mirrored: str | None) -> SliceGeometry:
    """The same plane and pixels' patient positions, with the row (or column) direction
    reversed: a mirrored image whose IOP says so."""
    if mirrored == "row":
        ipp = geom.ipp + geom.row_dir * (geom.cols - 1) * geom.col_spacing
        return SliceGeometry(ipp, -geom.row_dir, geom.col_dir, geom.row_spacing, geom.col_spacing, geom.rows, geom.cols)
    if mirrored == "col":
        ipp = geom.ipp + geom.col_dir * (geom.rows - 1) * geom.row_spacing
        return SliceGeometry(ipp, geom.row_dir, -geom.col_dir, geom.row_spacing, geom.col_spacing, geom.rows, geom.cols)
    return geom


def _localiser(rng: np.random.Generator, spine: Spine, slices: list[SliceGeometry], u: float) -> SliceGeometry:
    """A sagittal or coronal slice through the spine at U with the series' image size, placed
    so that its position along the series' mean normal differs from every other slice's."""
    rows, cols = slices[0].rows, slices[0].cols
    pixel = float(rng.uniform(260, 360)) / rows
    sagittal = rng.random() < 0.5
    row_dir = np.array([0.0, 1.0, 0.0]) if sagittal else np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, 0.0, -1.0])
    centre = spine.point(u, float(rng.uniform(-20, 20)))
    ipp = centre - row_dir * (cols - 1) / 2 * pixel - col_dir * (rows - 1) / 2 * pixel
    normals = np.array([np.cross(g.row_dir, g.col_dir) for g in slices])
    mean = (normals * np.where(normals @ normals[0] < 0, -1.0, 1.0)[:, None]).mean(axis=0)
    taken = np.array([g.ipp @ mean for g in slices])
    for _ in range(20):  # a duplicate position would read as a broken series, not a localiser
        if np.min(np.abs(taken - ipp @ mean)) > 0.5:
            break
        ipp = ipp + col_dir * 1.5
    return SliceGeometry(ipp, row_dir, col_dir, pixel, pixel, rows, cols)


def _axial_numbering(rng: np.random.Generator, synth: Synth, blocks: list[int]) -> tuple[str, np.ndarray]:
    """(kind, slice index of instance 1, 2, ...) for slices stored head to feet, block by block."""
    n = len(blocks)
    order = np.arange(n)
    shares = layout.AXIAL_ORDER_STRESS if synth.stress else layout.AXIAL_ORDER_SHARES
    kind = int(rng.choice(3, p=np.asarray(shares) / np.sum(shares)))
    if kind == 0:
        return "spatial", order
    if kind == 1:
        return "reversed", order[::-1]
    block_ids = np.array(blocks)
    several = len(set(blocks)) > 1
    choice = int(rng.integers(3)) if several else 1
    if choice == 0:  # blocks head to feet, each block feet to head
        return "blocks_reversed", np.concatenate([np.flatnonzero(block_ids == b)[::-1] for b in sorted(set(blocks))])
    if choice == 1:  # interleaved acquisition: every other slice, then the ones between
        return "interleaved", np.concatenate([order[::2], order[1::2]])
    # one slice of each block in turn
    members = [list(np.flatnonzero(block_ids == b)) for b in sorted(set(blocks))]
    out = [m[i] for i in range(max(len(m) for m in members)) for m in members if i < len(m)]
    return "round_robin", np.array(out)


def plan_axial(rng: np.random.Generator, spine: Spine, synth: Synth, levels: list[int], series_id: int,
               series_number: int, stack_share: float | None = None) -> SeriesPlan:
    """Axial T2 across the graded discs `levels` (top-down): separately angled blocks of
    synth.axial_per_level slices per disc, or (stack_share, default layout.STACK_SHARE) one
    straight stack over all; sometimes mirrored, numbered out of order or holding a localiser."""
    stack_share = layout.STACK_SHARE[synth.stress] if stack_share is None else stack_share
    rows, cols = _shape(rng, "ax_t2", synth.image_scale)
    pixel = float(rng.uniform(*AXIAL_FOV_MM)) / cols
    mirrored = _mirror(rng, synth, ("row", "row", "col"))
    disc_u = [float(spine.disc_u[anatomy.GRADED_DISCS[lv]]) for lv in levels]
    slices: list[SliceGeometry] = []
    blocks: list[int] = []
    if len(levels) > 1 and rng.random() < stack_share:
        spacing = float(rng.uniform(4.0, 5.5))
        mid = (disc_u[0] + disc_u[-1]) / 2
        row_dir, col_dir = _axial_frame(rng, spine, mid)
        normal = np.cross(row_dir, col_dir)
        corner = _axial_grid(rng, spine, mid, row_dir, col_dir, rows, cols, pixel)
        top = (spine.point(disc_u[0]) - corner) @ normal + 6.0
        bottom = (spine.point(disc_u[-1]) - corner) @ normal - 6.0
        n = int(np.ceil((top - bottom) / spacing)) + 1
        for o in top - spacing * np.arange(n):
            slices.append(SliceGeometry(corner + o * normal, row_dir, col_dir, pixel, pixel, rows, cols))
        blocks = [0] * n
    else:
        spacing = float(rng.uniform(3.0, 4.5))
        mixed = rng.random() < layout.MIXED_SHAPE_AXIAL_SHARE * 3
        for b, u in enumerate(disc_u):
            r, c, px = rows, cols, pixel
            if mixed and b == len(disc_u) - 1:
                r, c = _shape(rng, "ax_t2", synth.image_scale)
                px = pixel * cols / c
            row_dir, col_dir = _axial_frame(rng, spine, u)
            normal = np.cross(row_dir, col_dir)
            corner = _axial_grid(rng, spine, u, row_dir, col_dir, r, c, px)
            corner += normal * (((spine.point(u) - corner) @ normal) + rng.uniform(-1.0, 1.0))
            n = int(rng.integers(synth.axial_per_level[0], synth.axial_per_level[1] + 1))
            for o in ((n - 1) / 2 - np.arange(n)) * spacing:  # head first
                slices.append(SliceGeometry(corner + o * normal, row_dir, col_dir, px, px, r, c))
                blocks.append(b)
    slices = [_flip(g, mirrored) for g in slices]
    order, numbering = _axial_numbering(rng, synth, blocks)
    localisers: tuple[int, ...] = ()
    if rng.random() < layout.LOCALISER_SHARE[synth.stress]:
        loc = _localiser(rng, spine, slices, (disc_u[0] + disc_u[-1]) / 2)
        first = rng.random() < 0.6
        slices = [loc, *slices] if first else [*slices, loc]
        numbering = numbering + 1 if first else numbering
        numbering = np.concatenate([[0], numbering]) if first else np.concatenate([numbering, [len(slices) - 1]])
        localisers = (0,) if first else (len(slices) - 1,)
    return _finish(rng, synth, series_id, series_number, AX_T2, "t2", spine, slices, spacing, numbering,
                   mirrored=mirrored, localisers=localisers, order=order)


def _composition(rng: np.random.Generator, missing: str | None) -> tuple[int, int, int]:
    """(axial, sag T1, sag T2) series counts: the real mix, sagittal series present unless forced."""
    table = [row for row in layout.SERIES_COMPOSITION if row[1] > 0 and row[2] > 0]
    counts = np.array([row[3] for row in table], dtype=np.float64)
    n_ax, n_t1, n_t2, _ = table[rng.choice(len(table), p=counts / counts.sum())]
    if missing == MISSING_SAG_T1:
        n_t1 = 0
    elif missing == MISSING_SAG_T2:
        n_t2 = 0
    return n_ax, n_t1, n_t2


def plan_study(seed_material: list[int], study_id: int, series_ids: list[int], synth: Synth,
               missing: str | None = None, axial_levels: list[int] | None = None) -> StudyPlan:
    """The full plan of a study from its seed material (no narrowing: see Spine.with_narrowing)."""
    rng = np.random.default_rng(seed_material)
    edge = None
    draw = rng.random()
    share = layout.EDGE_STUDY_SHARE[synth.stress]
    if draw < share * len(EDGE_CASES):
        edge = EDGE_CASES[int(draw / share)]
    spine = anatomy.build_spine(rng, stress=synth.stress, variant=edge if edge in anatomy.SPINE_VARIANTS else None)
    n_ax, n_t1, n_t2 = _composition(rng, missing)
    levels = list(range(len(schema.LEVELS))) if axial_levels is None else list(axial_levels)
    if not levels:
        raise ValueError(f"study {study_id}: no axial levels to cover")
    if len(series_ids) < n_ax + n_t1 + n_t2:
        raise ValueError(f"study {study_id}: {len(series_ids)} series ids for {n_ax + n_t1 + n_t2} series")
    ids = iter(series_ids)
    series: list[SeriesPlan] = []
    for description, count in ((SAG_T1, n_t1), (SAG_T2, n_t2)):
        for _ in range(count):
            series.append(plan_sagittal(rng, spine, synth, description, next(ids), len(series) + 1, edge))
    series.append(plan_axial(rng, spine, synth, levels, next(ids), len(series) + 1))
    for _ in range(n_ax - 1):  # extra axial series: a re-scan of a few neighbouring levels
        size = int(rng.integers(1, min(3, len(levels)) + 1))
        first = int(rng.integers(0, len(levels) - size + 1))
        series.append(plan_axial(rng, spine, synth, levels[first:first + size], next(ids), len(series) + 1,
                                 stack_share=0.0))
    return StudyPlan(study_id=study_id, spine=spine, series=tuple(series), edge=edge)


def _nearest(series: list[SeriesPlan], point: np.ndarray) -> tuple[SeriesPlan, int, float, float, float]:
    """(series, slice index, column, row, |distance|) of the slice plane nearest a point."""
    best = None
    for s in series:
        for i, g in enumerate(s.slices):
            if i in s.localisers:  # never annotated
                continue
            col, row, dist = (float(v) for v in g.to_pixel(point))
            if best is None or abs(dist) < best[4]:
                best = (s, i, col, row, abs(dist))
    return best


def coordinates(plan: StudyPlan, has_coord: np.ndarray, misplaced: np.ndarray,
                rng: np.random.Generator) -> list[Coordinate]:
    """Coordinate rows of a study: canal on the mid-sagittal T2/STIR slice, foramina on the
    parasagittal T1 slice of that side, subarticular zones on the nearest axial slice."""
    spine = plan.spine
    out: list[Coordinate] = []
    sag_t2 = plan.of_plane("sag_t2")[:1] or plan.of_plane("sag_t1")[:1]
    sag_t1 = plan.of_plane("sag_t1")[:1] or plan.of_plane("sag_t2")[:1]
    axial = plan.of_plane("ax_t2")
    for j, label in enumerate(schema.LABELS):
        if not has_coord[j]:
            continue
        level = schema.LEVELS.index(label.level)
        side = anatomy.LEFT if label.side == "left" else anatomy.RIGHT
        if label.family == "spinal":
            candidates, point = sag_t2, spine.canal_point(level)
        elif label.family == "foraminal":
            candidates, point = sag_t1, spine.foramen_point(level, side)
        else:
            candidates, point = axial, spine.recess_point(level, side)
        series, i, col, row, dist = _nearest(candidates, point)
        g = series.slices[i]
        limit = spine.disc_h[anatomy.GRADED_DISCS[level]] / 2 + 4 if label.family == "subarticular" else 12.0
        inside = 0 <= col <= g.cols - 1 and 0 <= row <= g.rows - 1
        if dist > limit or not inside:
            log.debug("study %s: no slice shows %s (distance %.1f mm, inside %s)",
                      plan.study_id, label.column, dist, inside)
            continue
        if misplaced[j]:
            col, row = 5.0 + rng.uniform(0, 3), 5.0 + rng.uniform(0, 3)
        out.append(Coordinate(series.series_id, series.instance_numbers[i], label.condition, label.level,
                              float(col), float(row)))
    return out
