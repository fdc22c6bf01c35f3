"""Filling levels and sides the detectors missed, from detections only (never labels).

Each helper returns a patient point (mm) or a pixel position on a target slice, or None
when it has nothing to go on; `study` tries them in order: neighbouring slices, the
other sagittal series / other side through geometry, interpolation between detected
levels, and last a geometric fallback.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from lsdc.rois import geometry
from lsdc.rois.series import Series

UP = np.array([0.0, 0.0, 1.0])  # towards the head: L1/L2 lies above L5/S1


def nearby_detection(det: pd.DataFrame, target: int, allowed: Collection[int], max_steps: int,
                     level: str | None = None, side: str | None = None) -> pd.Series | None:
    """The detection of `level` / `side` on the allowed slice nearest to `target` (not the
    target itself), within max_steps indices; ties -> higher confidence."""
    if det is None or not len(det) or max_steps < 1:
        return None
    keep = det["image"].isin([i for i in allowed if i != target and abs(i - target) <= max_steps])
    if level is not None:
        keep &= det["level"] == level
    if side is not None:
        keep &= det["side"] == side
    rows = det[keep]
    if not len(rows):
        return None
    order = np.lexsort((-rows["conf"].to_numpy(float), np.abs(rows["image"].to_numpy(int) - target)))
    return rows.iloc[int(order[0])]


def move(series: Series, src: int, x: float, y: float, dst: int) -> tuple[float, float]:
    """A pixel of slice `src` carried to slice `dst` of the same series through patient
    space (projected onto dst's plane); unchanged when geometry is missing."""
    point = geometry.to_patient(series.geoms[src], x, y)
    px, py, _ = geometry.project(series.geoms[dst], point)
    return (px, py) if np.isfinite(px) and np.isfinite(py) else (x, y)


def mean_displacement(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    """Mean of target - source over pairs of patient points (levels where both were found)."""
    diffs = [t - s for t, s in pairs if t is not None and s is not None and np.all(np.isfinite(t - s))]
    return np.mean(diffs, axis=0) if diffs else None


def interpolate_level(known: Mapping[int, np.ndarray], level_index: int, spacing_mm: float) -> np.ndarray | None:
    """Patient point of a level from other levels' points (level index -> mm): linear
    between the nearest known levels above and below, else linear extrapolation from the
    two nearest, else one level's point moved by spacing_mm per level along the spine
    (towards the head for upper levels)."""
    pts = {k: np.asarray(v, float) for k, v in known.items() if v is not None and np.all(np.isfinite(v))}
    if not pts:
        return None
    ks = sorted(pts)
    below = [k for k in ks if k < level_index]
    above = [k for k in ks if k > level_index]
    if below and above:
        a, b = below[-1], above[0]
    elif len(ks) >= 2:
        near = sorted(ks, key=lambda k: abs(k - level_index))[:2]
        a, b = sorted(near)
    else:
        k = ks[0]
        return pts[k] + (k - level_index) * spacing_mm * UP
    t = (level_index - a) / (b - a)
    return pts[a] + t * (pts[b] - pts[a])


def fallback_pixel(series: Series, index: int, level_index: int, n_levels: int) -> tuple[float, float]:
    """Last resort on a sagittal slice with nothing found anywhere: levels spread evenly
    down the image centre column."""
    rows, cols = series.images[index].shape
    frac = 0.25 + 0.5 * level_index / max(1, n_levels - 1)
    return (cols - 1) / 2, frac * (rows - 1)


def mirror_x(x: float, canal_x: float) -> float:
    """An axial zone mirrored to the other side about the canal centre column."""
    return 2 * canal_x - x
