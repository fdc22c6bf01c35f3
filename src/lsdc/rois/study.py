"""One study end to end: decode its series once, detect, choose slices, impute, crop.

`extract_study(task, root, detectors, params)` returns the study's crops and index rows
for every slot of `slots.study_slots` in that order, whatever the study lacks: a plane
without a (readable) series or an axial level no axial slice covers gives rows with
source 'missing' and zero crops; a structure the detectors missed is imputed.
Selection reads pixels, DICOM geometry and detections only (no labels, no coordinates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lsdc import dicom, schema
from lsdc.detect import anatomy
from lsdc.params import Params
from lsdc.rois import DETECTED, IMPUTED, MISSING, consensus, count_check, geometry, impute, select
from lsdc.rois.crop import crop_physical
from lsdc.rois.detectors import Detectors, empty_points
from lsdc.rois.series import OFF_PLANE, Series, load_series
from lsdc.rois.slots import SIDES, study_slots

log = logging.getLogger(__name__)

# one row per detector box as the pipeline named it (patient mm; status 'ok' or 'ambiguous')
NAMED_COLUMNS = ("study_id", "plane", "series_id", "instance_number", "level", "side", "px", "py", "pz",
                 "conf", "status")
ROW_FIELDS = ("study_id", "split", "plane", "series_id", "instance_number", "slice_offset", "level",
              "side", "cx", "cy", "px", "py", "pz", "confidence", "source", "geometry_ok")
Key = tuple[str, str, "str | None"]  # (plane, level, side)
# _follow_canal: slices added per side beyond the canal window, and what the window's outermost
# slice must hold for the next one to be looked at (the canal still runs through it)
FOLLOW_SLICES, FOLLOW_MIN_BOXES, FOLLOW_CONF = 2, 3, 0.5


@dataclass(frozen=True)
class SeriesRef:
    series_id: int
    plane: str
    files: tuple[str, ...]  # paths relative to the data root


@dataclass(frozen=True)
class StudyImages:
    """The input of ROI extraction for one study: its id, split and series files per plane."""

    study_id: int
    split: str
    series: tuple[SeriesRef, ...] = ()


@dataclass
class Loc:
    """Where a structure's crop is centred: slice `index` of the plane's series `series`."""

    series: int
    index: int
    x: float
    y: float
    conf: float = np.nan
    source: str = DETECTED


@dataclass
class ExtractedRois:
    """The output of ROI extraction for one study: its crops and their ROI-index rows."""

    study_id: int
    split: str
    crops: np.ndarray  # uint8 (rows, S, S)
    rows: list[tuple]  # ROW_FIELDS
    unreadable: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # files not read: file, kind, reason
    no_geometry: int = 0  # crops on a slice without geometry (px, py, pz NaN)
    warnings: list[str] = field(default_factory=list)  # geometry decisions: frames of reference, levels
    named: pd.DataFrame | None = None  # every detector box with the level and side the pipeline gave it (NAMED_COLUMNS)


# ----------------------------------------------------------------------------- loading

def load_planes(task: StudyImages, root: str) -> tuple[dict[str, list[Series]], list[dict]]:
    """Decoded series per plane: the sagittal series with most files (next one if it is
    unreadable), every axial series. Returns (series per plane, files skipped: one dict
    each with the file relative to ``root``, its problem kind and the reason)."""
    loaded: dict[str, list[Series]] = {p: [] for p in schema.PLANES}
    skipped: list[dict] = []
    for plane in schema.PLANES:
        refs = sorted((r for r in task.series if r.plane == plane), key=lambda r: (-len(r.files), r.series_id))
        for ref in refs:
            s = load_series(root, ref.series_id, plane, ref.files, skipped)
            if s is None:
                continue
            loaded[plane].append(s)
            if plane != "ax_t2":
                break
    return loaded, skipped


# ----------------------------------------------------------------------------- helpers

def _hit(det: pd.DataFrame | None, index: int, level: str | None = None, side: str | None = None,
         image_col: str = "image") -> pd.Series | None:
    """Most confident detection on one slice (of a level / side)."""
    if det is None or not len(det):
        return None
    keep = det[image_col].to_numpy() == index
    if level is not None:
        keep &= det["level"].to_numpy(object) == level
    if side is not None:
        keep &= det["side"].to_numpy(object) == side
    hits = np.flatnonzero(keep)
    if not len(hits):
        return None
    return det.iloc[int(hits[np.argmax(det["conf"].to_numpy(float)[hits])])]


def _xyz(loaded: dict[str, list[Series]], key: Key, locs: dict[Key, Loc]) -> np.ndarray | None:
    loc = locs.get(key)
    if loc is None:
        return None
    s = loaded[key[0]][loc.series]
    p = geometry.to_patient(s.geoms[loc.index], loc.x, loc.y)
    return p if np.all(np.isfinite(p)) else None


def _place(s: Series, index: int, point: np.ndarray | None) -> tuple[float, float] | None:
    x, y, _ = geometry.project(s.geoms[index], point)
    return (x, y) if np.isfinite(x) and np.isfinite(y) else None


def _detect(detectors: Detectors, s: Series | None, plane: str, sides=None,
            only: list[int] | None = None) -> pd.DataFrame:
    """Detections on the slices `only` (default: every slice), numbered as in the series."""
    if s is None:
        return empty_points()
    idx = list(range(len(s))) if only is None else list(only)
    if not idx:
        return empty_points()
    det = detectors.points(plane, [s.images[i] for i in idx], [s.spacings[i] for i in idx],
                           sides=[sides[i] for i in idx] if sides is not None else None)
    if only is not None and len(det):
        det = det.assign(image=[idx[int(i)] for i in det["image"]])
    return det


def _lateral_window(s: Series, centre_x: float, lo_mm: float, hi_mm: float) -> list[int] | None:
    """Slices whose patient-x distance from centre_x lies in [lo_mm, hi_mm]: the only ones
    the detector needs to see (the canal near the middle, the foramina to the sides).
    None (every slice) when geometry is missing or the window would be empty."""
    xs = np.array([geometry.lateral_x(g) for g in s.geoms])
    if not np.isfinite(centre_x) or not np.isfinite(xs).all():
        return None
    dist = np.abs(xs - centre_x)
    keep = [i for i in range(len(s)) if lo_mm <= dist[i] <= hi_mm]
    return keep or None


def _follow_canal(detectors: Detectors, s: Series, det: pd.DataFrame, window: list[int]) -> pd.DataFrame:
    """The canal window widened where the canal runs out of it: scoliosis carries the canal
    across slices, so a reader may mark the upper levels on a slice just outside a window
    centred on the series. While the outermost slice on a side holds at least FOLLOW_MIN_BOXES
    confident boxes, the next slice outward is detected too (up to FOLLOW_SLICES per side)."""
    inside = set(window)
    parts = [det]
    for step in (-1, 1):
        edge = min(inside) if step < 0 else max(inside)
        for _ in range(FOLLOW_SLICES):
            nxt = edge + step
            rows = pd.concat([d for d in parts if len(d)])
            on_edge = rows["image"].to_numpy().astype(int) == edge
            strong = int((on_edge & (rows["conf"].to_numpy(float) >= FOLLOW_CONF)).sum())
            if not 0 <= nxt < len(s) or nxt in inside or strong < FOLLOW_MIN_BOXES:
                break
            parts.append(_detect(detectors, s, "sag_t2", only=[nxt]))
            inside.add(nxt)
            edge = nxt
    parts = [d for d in parts if len(d)]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else det


# ----------------------------------------------------------------------------- sagittal

@dataclass
class _Group:
    """One sagittal plane/side: its series, detections, target slice per level, allowed slices."""

    plane: str
    side: str | None
    series: Series
    det: pd.DataFrame
    targets: dict[str, int]
    allowed: list[int]

    def key(self, level: str) -> Key:
        return (self.plane, level, self.side)


def _sagittal(loaded, detectors, p: Params, policy: str, locs: dict[Key, Loc],
              warnings: list[str] | None = None) -> list[_Group]:
    """Sagittal crops. Levels: each series is named as a whole (its slices' boxes pooled in
    patient coordinates, lsdc.rois.consensus); sag_t1 foramina are named from the sag_t2
    levels when both series share a frame of reference. When sag_t2's count stays in doubt,
    sag_t1 is named by its own chains, trusted only with both sides anchored and in
    agreement, and then names sag_t2 too. When neither is anchored, the three chains vote
    (_vote). A level still guessed gives an 'imputed' crop."""
    warnings = [] if warnings is None else warnings
    groups: list[_Group] = []
    t2 = loaded["sag_t2"][0] if loaded["sag_t2"] else None
    t1 = loaded["sag_t1"][0] if loaded["sag_t1"] else None
    t2_index = None
    ref_t2: dict[str, np.ndarray] = {}
    if t2 is not None:
        xs = np.array([geometry.lateral_x(g) for g in t2.geoms])
        centre = float(np.median(xs)) if np.isfinite(xs).all() else float("nan")
        window = _lateral_window(t2, centre, 0.0, p.rois.canal_window_mm) if policy == "anatomy" else None
        det = _detect(detectors, t2, "sag_t2", only=window)
        if window is not None and len(det):
            det = _follow_canal(detectors, t2, det, window)
        raw_t2 = det
        if policy == "anatomy":
            det, ref_t2, _, guess_t2 = _series_consensus(det, t2, p, "the sag_t2 series' disc chain", warnings)
        t2_index = select.midline_index(det, len(t2)) if policy == "anatomy" else select.central_index(len(t2))
        targets = (select.canal_slices(det, t2, t2_index) if policy == "anatomy"
                   else {lv: t2_index for lv in schema.LEVELS})
        groups.append(_Group("sag_t2", None, t2, det, targets, list(range(len(t2)))))
    if t1 is not None:
        mid = select.midline_x(t2, t2_index, t1)
        sides = select.slice_sides(t1, mid)
        if policy == "anatomy":
            lo, hi = p.rois.foramen_window_mm
            det = raw_t1 = _detect(detectors, t1, "sag_t1", sides=sides, only=_lateral_window(t1, mid, lo, hi))
            shared = t2 is not None and geometry.same_frame(t1.frame_of_reference, t2.frame_of_reference)
            if len(ref_t2) >= 2 and shared:
                det = select.relabel_by_reference(det, t1, ref_t2, "the sag_t2 levels", only_doubtful=False)
            else:
                if t2 is not None and len(ref_t2) >= 2:
                    warnings.append(f"sag_t1 series {t1.series_id} and sag_t2 series {t2.series_id} have "
                                    "different FrameOfReferenceUIDs: sag_t1 levels not taken from sag_t2")
                det, ref_t1, t1_ok, guess_t1 = _series_consensus(det, t1, p, "the sag_t1 series' foramen chains",
                                                                 warnings, per_side=sides)
                if not t1_ok and len(det):  # one side's count is not trusted alone when the other is in doubt
                    det = det.assign(status=anatomy.AMBIGUOUS)
                if t2 is not None and shared and t1_ok and len(ref_t1) >= 2:  # sag_t2 in doubt: named from sag_t1
                    det2 = consensus.rename(raw_t2, select.patient_points(t2, raw_t2),
                                            consensus.SeriesLevels(ref_t1, anatomy.OK), "the sag_t1 foramen chains")
                    groups[0].det, groups[0].targets = det2, select.canal_slices(det2, t2, t2_index)
                    warnings.append(f"series {t2.series_id} (sag_t2): levels taken from the sag_t1 foramen chains "
                                    f"of series {t1.series_id}, both sides anchored and in agreement")
                elif t2 is not None and shared and not t1_ok:  # nothing anchored: the guess most chains share
                    voted = _vote(guess_t2, guess_t1, raw_t2, raw_t1, t2, t1, p, warnings)
                    if voted is not None:
                        det, det2 = voted
                        groups[0].det, groups[0].targets = det2, select.canal_slices(det2, t2, t2_index)
            chosen = select.foramen_slices(det, t1, sides, mid)
            allowed = {sd: [i for i in range(len(t1)) if sides[i] == sd] for sd in SIDES}
        else:  # the notebook: central slice for both sides, sides mixed
            det = _detect(detectors, t1, "sag_t1")
            c = select.central_index(len(t1))
            chosen = {(lv, sd): c for lv in schema.LEVELS for sd in SIDES}
            allowed = {sd: list(range(len(t1))) for sd in SIDES}
        for sd in SIDES:
            groups.append(_Group("sag_t1", sd, t1, det, {lv: chosen[(lv, sd)] for lv in schema.LEVELS},
                                 allowed[sd] or list(range(len(t1)))))
    for g in groups:
        for lv in schema.LEVELS:
            hit = _hit(g.det, g.targets[lv], level=lv)
            if hit is not None:  # a level still guessed (not anchored) is never used as if known
                src = DETECTED if hit.get("status", "ok") == "ok" else IMPUTED
                locs[g.key(lv)] = Loc(0, g.targets[lv], float(hit["x"]), float(hit["y"]), float(hit["conf"]), src)
    _impute_sagittal(loaded, groups, p, locs)
    return groups


def _vote(guess_t2: dict[str, consensus.SeriesLevels], guess_t1: dict[str, consensus.SeriesLevels],
          raw_t2: pd.DataFrame, raw_t1: pd.DataFrame, t2: Series, t1: Series, p: Params,
          warnings: list[str]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Neither sagittal series anchored: both named by the guess most of the three chains
    (canal, left and right foramina) share (consensus.vote). The names stay in doubt (imputed
    crops) unless all three chains agree and none left a possibly faint L5/S1 below it.
    Returns (sag_t1 rows, sag_t2 rows), None when no chain has a guess."""
    chains = {"sag_t2": guess_t2.get("all")} | {f"sag_t1 {sd}": guess_t1.get(sd) for sd in SIDES}
    chains = {k: v for k, v in chains.items() if v is not None}
    spacing = p.detect.anatomy.disc_spacing_mm[0]
    refs = {k: v.reference for k, v in chains.items()}
    pick, agreeing = consensus.vote(refs, spacing)
    if not pick:
        return None
    faint = any(anatomy.FAINT_L5S1 in n for v in chains.values() for n in v.notes)
    confirmed = len(agreeing) == 3 and not faint and consensus.agree(list(refs.values()), spacing / 2)
    levels = consensus.SeriesLevels(chains[pick].reference, anatomy.OK if confirmed else anatomy.AMBIGUOUS,
                                    () if confirmed else (f"{len(agreeing)} of {len(chains)} chains agree"
                                                          + (", a faint L5/S1 possible" if faint else ""),))
    source = f"the {pick} chain, shared by {', '.join(agreeing)}"
    warnings.append(f"series {t2.series_id} (sag_t2) and {t1.series_id} (sag_t1): no chain anchored; levels from "
                    f"{source}" + ("; all three agree: anchored" if confirmed else "; still in doubt, crops imputed"))
    det1 = consensus.rename(raw_t1, select.patient_points(t1, raw_t1), levels, source)
    det2 = consensus.rename(raw_t2, select.patient_points(t2, raw_t2), levels, source)
    return det1, det2


def _series_consensus(det: pd.DataFrame, s: Series, p: Params, source: str, warnings: list[str],
                      per_side: list[str] | None = None
                      ) -> tuple[pd.DataFrame, dict[str, np.ndarray], bool, dict[str, consensus.SeriesLevels]]:
    """Rows renamed by the disc chain of the whole series (lsdc.rois.consensus; per side of
    the midline for sag_t1 foramina), the reference of each level (the mean over the sides
    whose count is anchored; empty when none is: the crops are then imputed, never used as
    known), whether every side is anchored with the sides' levels in agreement, and each
    side's chain, anchored or not ('all' without sides)."""
    if not len(det):
        return det, {}, False, {}
    pts = select.patient_points(s, det)
    if not np.isfinite(pts).all(axis=1).any():  # no geometry: each slice's own count
        return det, select.level_reference(det, s), False, {}
    parts, refs, chains = [], [], {}
    side_of = np.array([per_side[int(i)] for i in det["image"]]) if per_side is not None else np.zeros(len(det))
    for side in np.unique(side_of):
        sel = side_of == side
        levels = consensus.series_levels(pts[sel], det["image"].to_numpy()[sel], det["conf"].to_numpy(float)[sel],
                                         p.detect.anatomy)
        if not levels.ok:
            warnings.append(f"series {s.series_id} ({s.plane}{'' if per_side is None else ', ' + str(side)}): "
                            f"level count in doubt ({'; '.join(levels.notes)}); its crops are imputed")
        parts.append(consensus.rename(det[sel], pts[sel], levels, source))
        refs.append(levels.reference if levels.ok else None)
        chains[str(side) if per_side is not None else "all"] = levels
    good = [r for r in refs if r]
    ref = {lv: np.mean([r[lv] for r in good if lv in r], axis=0) for lv in schema.LEVELS if any(lv in r for r in good)}
    agree = bool(good) and len(good) == len(refs) and consensus.agree(good, p.detect.anatomy.disc_spacing_mm[0] / 2)
    return (pd.concat(parts) if parts else det), ref, agree, chains


def _other_sources(g: _Group, level: str) -> list[list[Key]]:
    """Structures whose position stands in for a missed one, best first."""
    if g.plane == "sag_t2":
        return [[("sag_t1", level, "left"), ("sag_t1", level, "right")]]
    other = "right" if g.side == "left" else "left"
    return [[("sag_t1", level, other)], [("sag_t2", level, None)]]


def _mean_xyz(loaded, keys: list[Key], locs) -> np.ndarray | None:
    pts = [x for x in (_xyz(loaded, k, locs) for k in keys) if x is not None]
    return np.mean(pts, axis=0) if pts else None


def _impute_sagittal(loaded, groups: list[_Group], p: Params, locs: dict[Key, Loc]) -> None:
    k = p.rois.neighbour_slices
    for g in groups:  # a. the same level on neighbouring slices
        for lv in schema.LEVELS:
            t = g.targets[lv]
            if g.key(lv) in locs:
                continue
            row = impute.nearby_detection(g.det, t, g.allowed, k, level=lv)
            if row is not None:
                x, y = impute.move(g.series, int(row["image"]), float(row["x"]), float(row["y"]), t)
                locs[g.key(lv)] = Loc(0, t, x, y, source=IMPUTED)
    found = dict(locs)  # b and c build only on detections and neighbour-slice finds
    for g in groups:  # b. the other sagittal series / side, shifted by this study's offset between them
        for lv in schema.LEVELS:
            if g.key(lv) in locs:
                continue
            for keys in _other_sources(g, lv):
                src = _mean_xyz(loaded, keys, found)
                if src is None:
                    continue
                pairs = [(_xyz(loaded, g.key(o), found), _mean_xyz(loaded, [(kk[0], o, kk[2]) for kk in keys], found))
                         for o in schema.LEVELS if o != lv]
                shift = impute.mean_displacement(pairs)
                xy = _place(g.series, g.targets[lv], src + (shift if shift is not None else 0.0))
                if xy is not None:
                    locs[g.key(lv)] = Loc(0, g.targets[lv], *xy, source=IMPUTED)
                    break
    for g in groups:  # c. interpolation between found levels; d. geometric fallback
        known = {i: _xyz(loaded, g.key(o), locs) for i, o in enumerate(schema.LEVELS) if g.key(o) in locs}
        for i, lv in enumerate(schema.LEVELS):
            if g.key(lv) in locs:
                continue
            t = g.targets[lv]
            point = impute.interpolate_level(known, i, p.rois.level_spacing_mm)
            xy = _place(g.series, t, point)
            if xy is None:
                xy = impute.fallback_pixel(g.series, t, i, len(schema.LEVELS))
            locs[g.key(lv)] = Loc(0, t, *xy, source=IMPUTED)


# ----------------------------------------------------------------------------- axial

def _level_reference(loaded, locs, boxed_only: bool = False) -> tuple[dict[str, np.ndarray], set[str]]:
    """Each level's sagittal position (mm): the canal point, else the foramina's mean; and
    the levels whose position is a guess (an imputed sagittal crop). boxed_only: only places a
    detector box put there. A box whose name is in doubt counts (its place is seen, only its
    name is not sure); a place imputed without a box (no confidence) does not."""
    ref, guessed = {}, set()
    for lv in schema.LEVELS:
        for keys in ([("sag_t2", lv, None)], [("sag_t1", lv, sd) for sd in SIDES]):
            if boxed_only:
                keys = [k for k in keys if k in locs and np.isfinite(locs[k].conf)]
            point = _mean_xyz(loaded, keys, locs)
            if point is not None:
                ref[lv] = point
                if any(k in locs and locs[k].source != DETECTED for k in keys):
                    guessed.add(lv)
                break
    return ref, guessed


def _count_check(loaded, groups: list[_Group], locs: dict[Key, Loc], warnings: list[str],
                 spacing_mm: float) -> bool:
    """The sagittal names against the axial stack (lsdc.rois.count_check): an axial block
    of its own about one disc beyond the named L5/S1 or L1/L2 means the count may be off
    by one. Every sagittal name of the study is then in doubt: its boxes ambiguous, its
    crops (and so the axial ones) imputed. Where the blocks lie beyond one end only, the
    sagittal crops also move one level towards them (see _shift_levels): the named L5/S1
    with a block below it was L4/L5. Returns whether the count was in doubt."""
    ax = loaded["ax_t2"]
    ref, _ = _level_reference(loaded, locs, boxed_only=True)  # an imputed end proves nothing; a doubted box does
    if not ax or not ref:
        return False
    frame = _sagittal_frame(loaded)
    geoms = [s.geoms if geometry.same_frame(s.frame_of_reference, frame) else [] for s in ax]
    beyond = count_check.beyond_ends(ref, geoms, [s.blocks for s in ax])
    if not beyond:
        return False
    sides = {b.where for b in beyond}
    step = count_check.level_step(sides)
    b = beyond[0]
    s = ax[b.series]
    moved = (f"; the sagittal crops move one level {'up' if step < 0 else 'down'} (named {b.end} taken as "
             f"{schema.LEVELS[schema.LEVELS.index(b.end) + step]})" if step else "")
    warnings.append(f"ax_t2 series {s.series_id}: instance {s.instances[b.index]} lies in a block of its own "
                    f"about one disc {b.where}: the sagittal level count may be off by one; every level's "
                    f"crops are imputed{moved}")
    for g in groups:
        if len(g.det):
            g.det = g.det.assign(status=anatomy.AMBIGUOUS)
    for key, loc in locs.items():
        if key[0] != "ax_t2" and loc.source == DETECTED:
            loc.source = IMPUTED
    if step:
        _shift_levels(loaded, groups, locs, step, spacing_mm)
    return True


def _shift_levels(loaded, groups: list[_Group], locs: dict[Key, Loc], step: int, spacing_mm: float) -> None:
    """Every sagittal crop and box renamed `step` levels (-1: the named L5/S1 becomes L4/L5,
    the named L1/L2 falls off: its box keeps no lumbar level; +1 the other way); the level left
    empty at the other end is extrapolated from the two nearest renamed ones (patient mm), on
    that level's target slice."""
    n = len(schema.LEVELS)
    empty = n - 1 if step < 0 else 0
    for g in groups:
        if len(g.det):
            g.det = g.det.assign(level=g.det["level"].map(lambda lv: _moved_level(lv, step)))
        old = {lv: locs.pop(g.key(lv)) for lv in schema.LEVELS if g.key(lv) in locs}
        for lv, loc in old.items():
            if (moved := _moved_level(lv, step)) is not None:
                locs[g.key(moved)] = loc
        known = {i: _xyz(loaded, g.key(lv), locs) for i, lv in enumerate(schema.LEVELS) if g.key(lv) in locs}
        t = g.targets[schema.LEVELS[empty]]
        xy = _place(g.series, t, impute.interpolate_level(known, empty, spacing_mm))
        if xy is None:
            xy = impute.fallback_pixel(g.series, t, empty, n)
        locs[g.key(schema.LEVELS[empty])] = Loc(0, t, *xy, source=IMPUTED)


def _moved_level(level, step: int):
    """`level` moved `step` places along schema.LEVELS; None past either end; not a level: unchanged."""
    if level not in schema.LEVELS:
        return level
    i = schema.LEVELS.index(level) + step
    return schema.LEVELS[i] if 0 <= i < len(schema.LEVELS) else None


def _sagittal_frame(loaded) -> str | None:
    for plane in ("sag_t2", "sag_t1"):
        if loaded[plane] and loaded[plane][0].frame_of_reference:
            return loaded[plane][0].frame_of_reference
    return None


def _axial(loaded, detectors: Detectors, p: Params, policy: str, locs: dict[Key, Loc],
           warnings: list[str] | None = None) -> pd.DataFrame:
    """Axial crops: each level's sagittal point mapped onto the nearest axial slice of the
    series in the same frame of reference (others are not mapped, with a warning); the
    side of each box from the slice's orientation (a mirrored series swaps it). A level whose
    sagittal point was imputed gives imputed axial crops: its slice is a guess. Returns the
    detections (series, slice, side) named with the level whose slice they lie on."""
    warnings = [] if warnings is None else warnings
    ax = loaded["ax_t2"]
    if not ax:
        return pd.DataFrame()
    cfg, k = p.rois, p.rois.neighbour_slices
    ref, guessed = _level_reference(loaded, locs)
    if policy == "anatomy":
        frame = _sagittal_frame(loaded)
        mappable = []
        for s in ax:
            if geometry.same_frame(s.frame_of_reference, frame):
                mappable.append(s.geoms)
            else:
                mappable.append([])
                warnings.append(f"ax_t2 series {s.series_id}: FrameOfReferenceUID differs from the sagittal "
                                "series'; levels not mapped onto it")
                log.warning("ax_t2 series %s: FrameOfReferenceUID %s differs from the sagittal %s; not mapped",
                            s.series_id, s.frame_of_reference, frame)
        chosen = {}
        for lv, point in ref.items():
            m = geometry.map_point(point, mappable)
            if m is not None and m.distance <= cfg.axial_max_mm:
                chosen[lv] = (m.series, m.index)
    else:
        chosen = select.notebook_axial(ax)
    if not chosen:
        return pd.DataFrame()
    # the canal centre on each chosen slice: the level's sagittal point projected onto it
    canal: dict[str, tuple[float, float]] = {}
    for lv, (s, i) in chosen.items():
        xy = _place(ax[s], i, ref.get(lv))
        rows, cols = ax[s].images[i].shape
        canal[lv] = xy if xy is not None else ((cols - 1) / 2, (rows - 1) / 2)
    # the detector sees each level's chosen slice; its neighbours only where a side was
    # missed there (they serve the imputation from nearby detections, nothing else)
    first = {(s, i): canal[lv][0] for lv, (s, i) in chosen.items()}
    det = _detect_axial(detectors, ax, first)
    found = set(zip(det["series"], det["slice"], det["side"])) if len(det) else set()
    missed = [lv for lv, (s, i) in chosen.items() if any((s, i, sd) not in found for sd in SIDES)]
    slice_level = {si: lv for lv, si in chosen.items()}
    more: dict[tuple[int, int], float] = {}
    for lv in missed:
        s, i = chosen[lv]
        for o in range(-k, k + 1):
            j = geometry.neighbour(i, o, ax[s].blocks, ax[s].keys)
            if (s, j) not in first and (s, j) not in more:
                more[(s, j)] = canal[lv][0]
                slice_level[(s, j)] = lv
    if more:
        det = pd.concat([d for d in (det, _detect_axial(detectors, ax, more)) if len(d)] or [det],
                        ignore_index=True)
    for lv, (s, i) in chosen.items():
        own = det[det["series"] == s] if len(det) else det
        for sd in SIDES:
            hit = _hit(own, i, side=sd, image_col="slice")
            if hit is not None:
                locs[("ax_t2", lv, sd)] = Loc(s, i, float(hit["x"]), float(hit["y"]), float(hit["conf"]))
    det = _zone_slices(loaded, detectors, chosen, canal, det, slice_level, locs)
    _impute_axial(ax, chosen, canal, det, p, locs)
    for lv in guessed & set(chosen):  # a slice chosen from a guessed level is a guess too
        for sd in SIDES:
            if ("ax_t2", lv, sd) in locs:
                locs[("ax_t2", lv, sd)].source = IMPUTED
    if not len(det):
        return det
    level = [slice_level.get((int(a), int(b))) for a, b in zip(det["series"], det["slice"])]
    return det.assign(level=level, status=[anatomy.AMBIGUOUS if lv in guessed else anatomy.OK for lv in level])


def spine_direction(points: dict[str, np.ndarray], level: str) -> np.ndarray | None:
    """Unit direction of the spine at a level (patient mm): from the next level's point to the
    previous one's (one side where the level is an end of the points); None without two."""
    i = schema.LEVELS.index(level)
    near = [points.get(schema.LEVELS[j]) if 0 <= j < len(schema.LEVELS) else None for j in (i - 1, i + 1)]
    a = near[0] if near[0] is not None else points.get(level)
    b = near[1] if near[1] is not None else points.get(level)
    if a is None or b is None:
        return None
    d = np.asarray(a, float) - np.asarray(b, float)
    n = float(np.linalg.norm(d))
    return d / n if np.isfinite(n) and n > 0 else None


def zone_slice(series: Series, index: int, zone: np.ndarray, canal: np.ndarray,
               direction: np.ndarray) -> int:
    """The slice of `index`'s block nearest the subarticular zone's place in its disc's cross-
    section. A zone seen on an axial slice lies where the recess crosses that slice; the zone
    at the disc is that point moved along the spine (`direction`, unit) into the cross-section
    through the level's canal point (the plane at right angles to the spine there). With the
    slice tilted against the disc, that can be a neighbouring slice."""
    d = np.asarray(zone, float) - np.asarray(canal, float)
    at_disc = np.asarray(zone, float) - float(d @ direction) * direction
    block = [j for j in range(len(series)) if series.blocks[j] == series.blocks[index] and series.geoms[j] is not None]
    dist = [abs(float(series.geoms[j].to_pixel(at_disc)[2])) for j in block]
    return block[int(np.argmin(dist))] if block and np.all(np.isfinite(dist)) else index


def _zone_slices(loaded, detectors: Detectors, chosen, canal_px, det: pd.DataFrame, slice_level, locs) -> pd.DataFrame:
    """Each detected zone's crop moved to its own slice (zone_slice) where that differs from
    the level's chosen slice and the detector finds the zone of that side there too. Only
    from canal points (sag_t2): a foramen lies beside, not in, the disc's cross-section.
    Returns the detections with those of the slices it looked at added."""
    ax = loaded["ax_t2"]
    canals = {lv: pt for lv in schema.LEVELS if (pt := _xyz(loaded, ("sag_t2", lv, None), locs)) is not None}
    want: dict[tuple[str, str], tuple[int, int]] = {}
    for lv, (s, i) in chosen.items():
        direction = spine_direction(canals, lv)
        if lv not in canals or direction is None:
            continue
        for sd in SIDES:
            loc = locs.get(("ax_t2", lv, sd))
            if loc is None or loc.index != i or loc.source != DETECTED:
                continue
            zone = geometry.to_patient(ax[s].geoms[i], loc.x, loc.y)
            if np.all(np.isfinite(zone)):
                j = zone_slice(ax[s], i, zone, canals[lv], direction)
                if j != i:
                    want[(lv, sd)] = (s, j)
    seen = set(zip(det["series"], det["slice"])) if len(det) else set()
    new = {sj: canal_px[lv][0] for (lv, _), sj in want.items() if sj not in seen}
    if new:
        det = pd.concat([d for d in (det, _detect_axial(detectors, ax, new)) if len(d)] or [det], ignore_index=True)
    for (lv, sd), (s, j) in want.items():
        slice_level.setdefault((s, j), lv)
        own = det[det["series"] == s] if len(det) else det
        hit = _hit(own, j, side=sd, image_col="slice")
        if hit is not None:
            locs[("ax_t2", lv, sd)] = Loc(s, j, float(hit["x"]), float(hit["y"]), float(hit["conf"]))
    return det


def _detect_axial(detectors: Detectors, ax: list[Series], slices: dict[tuple[int, int], float]) -> pd.DataFrame:
    """Detections on the given (series, slice) -> canal column, sides by orientation."""
    keys = sorted(slices)
    det = detectors.points("ax_t2", [ax[s].images[j] for s, j in keys], [ax[s].spacings[j] for s, j in keys],
                           midlines=[slices[sj] for sj in keys])
    det = det.assign(series=[keys[int(i)][0] for i in det["image"]],
                     slice=[keys[int(i)][1] for i in det["image"]]) if len(det) else det.assign(series=[], slice=[])
    return _sides_by_orientation(det, ax)


def _sides_by_orientation(det: pd.DataFrame, ax: list[Series]) -> pd.DataFrame:
    """The detectors name sides as if the larger column were patient left; swap them on
    slices whose ImageOrientationPatient says otherwise (row direction towards -x)."""
    if not len(det):
        return det
    flip = np.array([dicom.larger_column_is_left(ax[int(s)].geoms[int(j)]) is False
                     for s, j in zip(det["series"], det["slice"])], dtype=bool)
    if flip.any():
        swapped = det["side"].map({"left": "right", "right": "left"})
        det = det.assign(side=np.where(flip, swapped, det["side"]))
    return det


def _offsets(p: Params, plane: str) -> list[int]:
    from lsdc.rois.slots import offsets

    return offsets(getattr(p.rois.slices, plane))


def _impute_axial(ax: list[Series], chosen, canal, det: pd.DataFrame, p: Params, locs) -> None:
    k = p.rois.neighbour_slices
    for lv, (s, i) in chosen.items():  # a. the same side on neighbouring slices of the block
        same_block = [j for j in range(len(ax[s])) if ax[s].blocks[j] == ax[s].blocks[i]]
        own = det[det["series"] == s].assign(image=lambda d: d["slice"]) if len(det) else None
        for sd in SIDES:
            if ("ax_t2", lv, sd) in locs:
                continue
            row = impute.nearby_detection(own, i, same_block, k, side=sd)
            if row is not None:
                x, y = impute.move(ax[s], int(row["image"]), float(row["x"]), float(row["y"]), i)
                locs[("ax_t2", lv, sd)] = Loc(s, i, x, y, source=IMPUTED)
    found = dict(locs)
    for lv, (s, i) in chosen.items():  # b. the other side mirrored about the canal centre
        for sd, other in (("left", "right"), ("right", "left")):
            key, okey = ("ax_t2", lv, sd), ("ax_t2", lv, other)
            if key not in locs and okey in found:
                o = found[okey]
                locs[key] = Loc(s, i, impute.mirror_x(o.x, canal[lv][0]), o.y, source=IMPUTED)
    for lv, (s, i) in chosen.items():  # c. this study's zone-to-canal offset; d. a fixed offset
        g = ax[s].geoms[i]
        canal_mm = geometry.to_patient(g, *canal[lv])
        for sd in SIDES:
            key = ("ax_t2", lv, sd)
            if key in locs:
                continue
            pairs = []
            for o, (so, io) in chosen.items():
                if ("ax_t2", o, sd) in found and o != lv:
                    f = found[("ax_t2", o, sd)]
                    pairs.append((geometry.to_patient(ax[so].geoms[io], f.x, f.y),
                                  geometry.to_patient(ax[so].geoms[io], *canal[o])))
            shift = impute.mean_displacement(pairs)
            if shift is None:
                shift = np.array([p.rois.zone_offset_mm if sd == "left" else -p.rois.zone_offset_mm, 0.0, 0.0])
            xy = _place(ax[s], i, canal_mm + shift)
            if xy is None:  # no geometry: a fixed pixel offset (patient left = image right)
                col_sp = ax[s].spacings[i][1]
                sign = 1 if sd == "left" else -1
                xy = (canal[lv][0] + sign * p.rois.zone_offset_mm / col_sp, canal[lv][1])
            locs[key] = Loc(s, i, *xy, source=IMPUTED)


# ----------------------------------------------------------------------------- crops

def crop_rows(task: StudyImages, loaded, locs: dict[Key, Loc], p: Params) -> tuple[np.ndarray, list[tuple]]:
    """Crops and index rows for every slot, in slot order."""
    slots = study_slots(p.rois)
    size = p.rois.roi_size
    crops = np.zeros((len(slots), size, size), dtype=np.uint8)
    rows: list[tuple] = []
    for r, slot in enumerate(slots):
        loc = locs.get((slot.plane, slot.level, slot.side))
        if loc is None:
            rows.append((task.study_id, task.split, slot.plane, None, None, slot.offset, slot.level, slot.side,
                         np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, MISSING, False))
            continue
        s = loaded[slot.plane][loc.series]
        j = geometry.neighbour(loc.index, slot.offset, s.blocks, s.keys)
        x, y = (loc.x, loc.y) if j == loc.index else impute.move(s, loc.index, loc.x, loc.y, j)
        crops[r] = crop_physical(s.images[j], s.spacings[j], x, y, getattr(p.rois.crop_mm, slot.plane), size)
        px, py, pz = geometry.to_patient(s.geoms[j], x, y)
        rows.append((task.study_id, task.split, slot.plane, s.series_id, s.instances[j], slot.offset, slot.level,
                     slot.side, float(x), float(y), float(px), float(py), float(pz), loc.conf, loc.source,
                     bool(np.isfinite([px, py, pz]).all())))
    return crops, rows


def named_points(study_id: int, loaded, groups: list[_Group], axial: pd.DataFrame) -> pd.DataFrame:
    """Every detector box of the study with the level and side the pipeline gave it, in
    patient mm (NAMED_COLUMNS): sagittal boxes as their series was named (sag_t1 once, not
    per side group), axial boxes on the slices the detector saw, named by that slice's level."""
    rows = []
    seen = set()
    for g in groups:
        if g.plane in seen or not len(g.det):
            continue
        seen.add(g.plane)
        for r in g.det.itertuples():
            i = int(r.image)
            px, py, pz = geometry.to_patient(g.series.geoms[i], float(r.x), float(r.y))
            rows.append((study_id, g.plane, g.series.series_id, g.series.instances[i], r.level,
                         r.side if g.plane == "sag_t1" else None, px, py, pz, float(r.conf), r.status))
    for r in axial.itertuples() if len(axial) else ():
        s = loaded["ax_t2"][int(r.series)]
        j = int(r.slice)
        px, py, pz = geometry.to_patient(s.geoms[j], float(r.x), float(r.y))
        rows.append((study_id, "ax_t2", s.series_id, s.instances[j], r.level, r.side, px, py, pz,
                     float(r.conf), r.status))
    return pd.DataFrame(rows, columns=list(NAMED_COLUMNS))


def extract_study(task: StudyImages, root: str, detectors: Detectors, p: Params,
                  loaded: tuple[dict[str, list[Series]], list[dict]] | None = None) -> ExtractedRois:
    """Every crop of one study (see module doc). ``loaded``: load_planes(task, root) when
    the caller has decoded the study already (predict-study reuses it for its overlay)."""
    policy = select.check_policy(p.rois.selection)
    loaded, skipped = load_planes(task, root) if loaded is None else loaded
    locs: dict[Key, Loc] = {}
    warnings: list[str] = []
    groups = _sagittal(loaded, detectors, p, policy, locs, warnings)
    if policy == "anatomy":
        _count_check(loaded, groups, locs, warnings, p.rois.level_spacing_mm)
    axial = _axial(loaded, detectors, p, policy, locs, warnings)
    crops, rows = crop_rows(task, loaded, locs, p)
    notes = [f"no readable {pl} series" for pl in schema.PLANES if not loaded[pl]]
    no_geometry = sum(1 for r in rows if r[-2] != MISSING and not r[-1])
    if no_geometry:
        log.warning("study %s: %d crop(s) lie on slices without geometry; their px, py, pz are NaN "
                    "(geometry_ok false in the ROI index)", task.study_id, no_geometry)
    unreadable = sum(1 for d in skipped if d["kind"] != OFF_PLANE)  # a localiser is read, just not used
    return ExtractedRois(task.study_id, task.split, crops, rows, unreadable, notes, skipped, no_geometry,
                         warnings, named_points(task.study_id, loaded, groups, axial))
