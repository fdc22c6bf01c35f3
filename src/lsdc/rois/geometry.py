"""Geometry of a study's slices: patient mm (LPS) <-> pixels, neighbours, level -> slice.

Conventions (docs/data_formats.md): +x patient left, +y posterior, +z head. A slice's
geometry is a `lsdc.dicom.SliceGeometry` (None when IPP/IOP/PixelSpacing are missing).
Slices of a series are in spatial order (dicom.sort_slices); axial series may be made
of several angled blocks, one orientation each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from lsdc.dicom import SliceGeometry, block_labels

# Patient axis along which a positive slice offset moves: towards patient left on
# sagittal planes, towards the head on axial ones.
OFFSET_AXIS = {"sag_t1": np.array([1.0, 0.0, 0.0]), "sag_t2": np.array([1.0, 0.0, 0.0]),
               "ax_t2": np.array([0.0, 0.0, 1.0])}
_SAME_ORIENTATION = float(np.cos(np.deg2rad(1.0)))


class Mapped(NamedTuple):
    """Where a patient point falls on a set of series: the slice whose plane is nearest."""

    series: int  # position in the list of series given
    index: int  # slice index (spatial order) within that series
    x: float  # column on that slice
    y: float  # row on that slice
    distance: float  # |distance| from the point to the slice plane, mm


def slice_centre(geom: SliceGeometry) -> np.ndarray:
    """Patient position (mm) of the image centre."""
    return geom.to_patient((geom.cols - 1) / 2, (geom.rows - 1) / 2)


def to_patient(geom: SliceGeometry | None, x: float, y: float) -> np.ndarray:
    """Pixel -> patient mm; NaNs when the slice has no geometry."""
    if geom is None:
        return np.full(3, np.nan)
    return np.asarray(geom.to_patient(x, y), dtype=float)


def project(geom: SliceGeometry | None, point: np.ndarray) -> tuple[float, float, float]:
    """Patient point -> (x, y, signed distance mm) on a slice; NaNs without geometry or point."""
    if geom is None or point is None or not np.all(np.isfinite(point)):
        return np.nan, np.nan, np.nan
    x, y, d = geom.to_pixel(np.asarray(point, dtype=float))
    return float(x), float(y), float(d)


def orientation_blocks(geoms: Sequence[SliceGeometry | None]) -> np.ndarray:
    """Block label per slice: consecutive slices with the same orientation (within 1 degree)
    share a block. A slice without geometry joins the block before it."""
    labels = np.zeros(len(geoms), dtype=np.int64)
    current, ref = 0, None
    for i, g in enumerate(geoms):
        if g is not None:
            if ref is not None and abs(float(g.normal @ ref)) < _SAME_ORIENTATION:
                current += 1
            ref = g.normal
        labels[i] = current
    return labels


def series_blocks(geoms: Sequence[SliceGeometry | None]) -> np.ndarray:
    """Block label per slice by orientation and position (lsdc.dicom.block_labels); a slice
    without geometry joins the block of the slice before it (the first: the next one)."""
    labels = block_labels(geoms)
    known = np.flatnonzero(labels >= 0)
    if not len(known):
        return np.zeros(len(geoms), dtype=np.int64)
    for i in range(len(labels)):
        if labels[i] < 0:
            before = known[known < i]
            labels[i] = labels[before[-1]] if len(before) else labels[known[0]]
    return labels


def same_frame(a: str | None, b: str | None) -> bool:
    """Whether two series share patient coordinates: equal FrameOfReferenceUIDs, or one
    of them unknown (the tag is optional in practice; geometry is then trusted)."""
    return a is None or b is None or a == b


def axis_keys(geoms: Sequence[SliceGeometry | None], plane: str) -> np.ndarray:
    """Position of each slice centre along the plane's OFFSET_AXIS (mm). A slice without
    geometry gets a key interpolated by its index between the slices that have one (the
    series is in spatial order), so it keeps its place; with none, every key is the index."""
    keys = np.array([float(slice_centre(g) @ OFFSET_AXIS[plane]) if g is not None else np.nan for g in geoms])
    known = np.flatnonzero(np.isfinite(keys))
    if len(known) == len(keys):
        return keys
    index = np.arange(len(keys), dtype=float)
    if len(known) < 2:
        return index
    missing = ~np.isfinite(keys)
    fitted = np.interp(index, known, keys[known])
    lo = (keys[known[1]] - keys[known[0]]) / (known[1] - known[0])
    hi = (keys[known[-1]] - keys[known[-2]]) / (known[-1] - known[-2])
    fitted = np.where(index < known[0], keys[known[0]] + (index - known[0]) * lo, fitted)
    fitted = np.where(index > known[-1], keys[known[-1]] + (index - known[-1]) * hi, fitted)
    return np.where(missing, fitted, keys)


def neighbour(index: int, offset: int, blocks: np.ndarray, keys: np.ndarray) -> int:
    """The slice `offset` steps from `index` within its orientation block, steps counted
    in order of `keys` (axis_keys: positive = towards patient left on sagittal planes,
    towards the head on axial ones), clamped at the block's ends."""
    members = np.flatnonzero(blocks == blocks[index])
    members = members[np.lexsort((members, keys[members]))]
    rank = int(np.flatnonzero(members == index)[0])
    return int(members[int(np.clip(rank + offset, 0, len(members) - 1))])


def map_point(point: np.ndarray | None, series_geoms: Sequence[Sequence[SliceGeometry | None]],
              margin_px: float = 0.0) -> Mapped | None:
    """The slice, over all given series, whose plane lies nearest to a patient point among
    those where the point projects inside the image (each slice with its own IOP, so
    several series and angled blocks are handled). None when there is no such slice."""
    if point is None or not np.all(np.isfinite(point)):
        return None
    point = np.asarray(point, dtype=float)
    best: Mapped | None = None
    for s, geoms in enumerate(series_geoms):
        placed = [i for i, g in enumerate(geoms) if g is not None]
        if not placed:
            continue
        inv = np.stack([geoms[i].inverse_axes for i in placed])
        off = point - np.stack([geoms[i].ipp for i in placed])
        x, y, d = np.einsum("nij,nj->ni", inv, off).T
        cols = np.array([geoms[i].cols for i in placed], float)
        rows = np.array([geoms[i].rows for i in placed], float)
        inside = (x >= -margin_px) & (x <= cols - 1 + margin_px) & (y >= -margin_px) & (y <= rows - 1 + margin_px)
        if not inside.any():
            continue
        k = int(np.flatnonzero(inside)[np.argmin(np.abs(d[inside]))])
        if best is None or abs(d[k]) < best.distance:
            best = Mapped(s, placed[k], float(x[k]), float(y[k]), float(abs(d[k])))
    return best


def lateral_x(geom: SliceGeometry | None) -> float:
    """Patient x (mm, + = left) of a slice's centre; NaN without geometry."""
    return float(slice_centre(geom)[0]) if geom is not None else np.nan
