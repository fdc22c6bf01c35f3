"""Which slice shows a structure. Uses detections and geometry only, never labels or
annotated coordinates, so it works the same on train, validation and test studies.

'anatomy' (default):
- sag_t2: the canal midline = the slice where the disc detections are strongest
  (confidence summed over levels, lightly smoothed across neighbours; ties -> nearer
  the series centre); every level's canal crop is taken on it.
- sag_t1: slices split into patient left / right of the midline (patient x of the slice
  centre against the sag_t2 midline, or the series' median slice); per side the slice
  where the foramina are strongest, and per level the best of it and its neighbours on
  the same side, so each side feeds its own foraminal crops.
- ax_t2: each level's sagittal position (patient mm) mapped through IPP/IOP onto the
  nearest axial slice plane over all axial series and blocks (geometry.map_point).

'notebook' (comparison with the seed notebook, the public Kaggle notebook this
repository ports; lsdc/__init__.py): the central slice of each sagittal
series for every level and both sides (left and right mixed), and axial slices spread
evenly along the longest axial series whatever level they show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.rois import geometry
from lsdc.rois.series import Series

POLICIES = ("anatomy", "notebook")


def check_policy(name: str) -> str:
    if name not in POLICIES:
        raise ValueError(f"rois.selection: unknown selection {name!r}; expected one of {POLICIES}")
    return name


def slice_scores(det: pd.DataFrame, n: int) -> np.ndarray:
    """Summed detection confidence per slice index (0..n-1)."""
    scores = np.zeros(n)
    if len(det):
        np.add.at(scores, det["image"].to_numpy(int), det["conf"].to_numpy(float))
    return scores


def _argmax_near_centre(scores: np.ndarray, centre: float) -> int:
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    return int(best[np.argmin(np.abs(best - centre))])


def central_index(n: int) -> int:
    return (n - 1) // 2


def midline_index(det: pd.DataFrame, n: int) -> int:
    """Mid-sagittal slice: strongest summed disc detections, smoothed [0.5, 1, 0.5]."""
    scores = slice_scores(det, n)
    if not scores.any():
        return central_index(n)
    padded = np.pad(scores, 1)
    smooth = padded[1:-1] + 0.5 * (padded[:-2] + padded[2:])
    return _argmax_near_centre(smooth, (n - 1) / 2)


def centre_slice(rows: pd.DataFrame, xs: np.ndarray) -> int:
    """The slice at the confidence-weighted centre of one structure's detections across
    neighbouring slices: the slice a reader picks is where the structure is centred, and
    the detector's single most confident slice wanders between neighbours."""
    w = rows["conf"].to_numpy(float)
    imgs = rows["image"].to_numpy(int)
    pos = xs[imgs] if np.isfinite(xs[imgs]).all() else imgs.astype(float)
    centre = float(np.average(pos, weights=w))
    cand = np.unique(imgs)
    cand_pos = xs[cand] if np.isfinite(xs[cand]).all() else cand.astype(float)
    return int(cand[np.argmin(np.abs(cand_pos - centre))])


def canal_slices(det: pd.DataFrame, series: Series, mid_index: int, reach: int = 2) -> dict[str, int]:
    """level -> sag_t2 slice: where that level's canal detections within `reach` slices of
    the mid-sagittal slice are centred (scoliosis and rotation move the canal across slices
    from level to level); the mid-sagittal slice where it is not detected."""
    n = len(series)
    xs = np.array([geometry.lateral_x(g) for g in series.geoms])
    near = [i for i in range(mid_index - reach, mid_index + reach + 1) if 0 <= i < n]
    out: dict[str, int] = {}
    in_near = np.isin(det["image"].to_numpy(), near) if len(det) else np.zeros(0, bool)
    levels = det["level"].to_numpy(object) if len(det) else np.zeros(0, object)
    for level in schema.LEVELS:
        rows = det[in_near & (levels == level)] if len(det) else det
        out[level] = centre_slice(rows, xs) if len(rows) else mid_index
    return out


def midline_x(t2: Series | None, t2_index: int | None, t1: Series | None) -> float:
    """Patient x of the canal midline: the chosen sag_t2 slice, else the median sag_t1 slice."""
    if t2 is not None and t2_index is not None:
        x = geometry.lateral_x(t2.geoms[t2_index])
        if np.isfinite(x):
            return x
    if t1 is not None:
        xs = np.array([geometry.lateral_x(g) for g in t1.geoms])
        if np.isfinite(xs).any():
            return float(np.nanmedian(xs))
    return np.nan


def slice_sides(series: Series, mid_x: float) -> list[str]:
    """'left' / 'right' per slice: patient x of the slice centre against the midline
    (+x = patient left). Without geometry: the upper half of the index range is
    taken in axis order (axis_keys)."""
    xs = np.array([geometry.lateral_x(g) for g in series.geoms])
    if not np.isfinite(mid_x) or not np.isfinite(xs).all():
        return ["left" if k > np.median(series.keys) else "right" for k in series.keys]
    return ["left" if x > mid_x else "right" for x in xs]


def foramen_slices(det: pd.DataFrame, series: Series, sides: Sequence[str], mid_x: float
                   ) -> dict[tuple[str, str], int]:
    """(level, side) -> slice index on sag_t1, by anatomy (see module doc)."""
    n = len(series)
    scores = slice_scores(det, n)
    xs = np.array([geometry.lateral_x(g) for g in series.geoms])
    out: dict[tuple[str, str], int] = {}
    for side in ("left", "right"):
        own = [i for i in range(n) if sides[i] == side]
        if not own:  # no slice on that side: the one nearest to it
            sign = 1.0 if side == "left" else -1.0
            key = series.keys * sign
            own = [int(np.argmax(key))]
        own_scores = scores[own]
        if own_scores.any():
            best = own[int(np.argmax(own_scores))]
        else:  # nothing detected on this side: the middle of the side's slices by distance
            dist = np.abs(np.nan_to_num(xs[own] - mid_x, nan=0.0))
            best = own[int(np.argsort(dist)[len(own) // 2])]
        window = [i for i in (best - 1, best, best + 1) if i in own]
        in_window = np.isin(det["image"].to_numpy(), window) if len(det) else np.zeros(0, bool)
        levels = det["level"].to_numpy(object) if len(det) else np.zeros(0, object)
        for level in schema.LEVELS:
            rows = det[in_window & (levels == level)] if len(det) else det
            out[(level, side)] = centre_slice(rows, xs) if len(rows) else best
    return out


def notebook_axial(series_list: Sequence[Series]) -> dict[str, tuple[int, int]]:
    """level -> (series position, slice index): slices spread evenly along the longest
    axial series, in index order, whatever level they show (the notebook's choice)."""
    if not series_list:
        return {}
    s = int(np.argmax([len(x) for x in series_list]))
    n = len(series_list[s])
    picks = np.floor((np.arange(len(schema.LEVELS)) + 0.5) * n / len(schema.LEVELS)).astype(int)
    return {lv: (s, int(min(i, n - 1))) for lv, i in zip(schema.LEVELS, picks)}


# ----------------------------------------------------------------------------- levels by geometry

def patient_points(series: Series, det: pd.DataFrame) -> np.ndarray:
    """Patient mm (n, 3) of every detection row (NaN on a slice without geometry)."""
    if not len(det):
        return np.zeros((0, 3))
    return np.array([geometry.to_patient(series.geoms[int(i)], float(x), float(y))
                     for i, x, y in zip(det["image"], det["x"], det["y"])])


def level_reference(det: pd.DataFrame, series: Series) -> dict[str, np.ndarray]:
    """Patient position (mm) of each level from the anchored ('ok') detections of a
    sagittal series: the median over its slices. Ambiguous rows never count."""
    if not len(det):
        return {}
    ok = det[det["status"] == "ok"]
    pts = patient_points(series, ok)
    out = {}
    for lv in schema.LEVELS:
        own = pts[(ok["level"] == lv).to_numpy()]
        own = own[np.isfinite(own).all(axis=1)]
        if len(own):
            out[lv] = np.median(own, axis=0)
    return out


def relabel_by_reference(det: pd.DataFrame, series: Series, ref: dict[str, np.ndarray], source: str,
                         only_doubtful: bool = True, max_frac: float = 0.5) -> pd.DataFrame:
    """Name detections by the nearest reference level (patient mm from level_reference,
    of this or another sagittal series in the same frame of reference).

    Distance is measured in the sagittal plane (patient y, z: a foramen lies beside its
    disc, not on it); a row is named when it lies within `max_frac` of the distance from
    its nearest reference level to that level's nearest neighbour, and then counts as
    anchored (status 'ok', the source in notes). Rows that match no level are dropped
    when they were doubtful, kept as they were otherwise. With fewer than two reference
    levels nothing changes. `only_doubtful`: rename only the 'ambiguous' rows."""
    if len(ref) < 2 or not len(det):
        return det
    names = [lv for lv in schema.LEVELS if lv in ref]
    refs = np.array([ref[lv] for lv in names])[:, 1:]
    gap = np.array([min(np.linalg.norm(refs[k] - refs[m]) for m in range(len(refs)) if m != k)
                    for k in range(len(refs))])
    pts = patient_points(series, det)[:, 1:]
    out = det.copy()
    drop = []
    for r, (row_id, row) in enumerate(det.iterrows()):
        if only_doubtful and row["status"] == "ok":
            continue
        if not np.isfinite(pts[r]).all():
            continue
        d = np.linalg.norm(refs - pts[r], axis=1)
        k = int(np.argmin(d))
        if d[k] <= max_frac * gap[k]:
            out.at[row_id, "level"] = names[k]
            out.at[row_id, "status"] = "ok"
            out.at[row_id, "notes"] = f"level from {source}"
        elif row["status"] != "ok":
            drop.append(row_id)
    return out.drop(index=drop)
