"""Canonical display orientation: each slice turned the way a viewer shows it, whatever
row and column directions its ImageOrientationPatient (IOP) gives.

- sagittal planes (sag_t1, sag_t2): head at the top (row index grows towards the feet, -z in
  LPS), anterior on the left (column index grows towards posterior, +y);
- axial (ax_t2): anterior at the top (row index grows towards posterior, +y), patient right
  on the image left (column index grows towards patient left, +x).

A slice stored otherwise (a mirrored or upside-down series, or one written transposed) is
transposed and/or flipped, and its geometry rewritten so that pixel <-> patient mapping
still holds. The detectors are trained and run on canonical slices only, so they never meet
an orientation they did not learn, and every crop shows anatomy the same way round.
Slices without geometry stay as stored.

    steps = canonical_steps(geom, "ax_t2")          # what to do (nothing for most slices)
    image, geom = apply(image, geom, steps)         # pixels and geometry together
    x, y = apply_xy(x, y, steps, rows, cols)        # a point annotated on the stored slice
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsdc.dicom import SliceGeometry

# (patient direction of growing column index, of growing row index) per plane, LPS
TARGETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "sag_t1": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "sag_t2": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "ax_t2": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
}


@dataclass(frozen=True)
class Steps:
    """Transpose first, then flip the rows (upside down) and / or the columns (mirror)."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @property
    def any(self) -> bool:
        return self.transpose or self.flip_rows or self.flip_cols


NONE = Steps()


def canonical_steps(geom: SliceGeometry | None, plane: str) -> Steps:
    """What turns a slice of `plane` into the canonical orientation (NONE without geometry)."""
    if geom is None:
        return NONE
    if plane not in TARGETS:
        raise ValueError(f"unknown plane {plane!r}; expected one of {tuple(TARGETS)}")
    want_r, want_c = (np.asarray(t) for t in TARGETS[plane])
    r, c = np.asarray(geom.row_dir, float), np.asarray(geom.col_dir, float)
    transpose = abs(r @ want_c) + abs(c @ want_r) > abs(r @ want_r) + abs(c @ want_c)
    if transpose:
        r, c = c, r
    return Steps(bool(transpose), bool(c @ want_c < 0), bool(r @ want_r < 0))


def apply_geometry(geom: SliceGeometry, steps: Steps) -> SliceGeometry:
    """The geometry of the turned slice: the same patient position for every pixel centre."""
    ipp, r, c = np.asarray(geom.ipp, float), np.asarray(geom.row_dir, float), np.asarray(geom.col_dir, float)
    rs, cs, rows, cols = geom.row_spacing, geom.col_spacing, geom.rows, geom.cols
    if steps.transpose:  # new column index = old row index and vice versa
        r, c, rs, cs, rows, cols = c, r, cs, rs, cols, rows
    if steps.flip_cols:
        ipp, r = ipp + (cols - 1) * cs * r, -r
    if steps.flip_rows:
        ipp, c = ipp + (rows - 1) * rs * c, -c
    return SliceGeometry(ipp, r, c, rs, cs, rows, cols)


def apply_image(image: np.ndarray, steps: Steps) -> np.ndarray:
    """The turned pixel array (a contiguous copy when anything changes)."""
    if not steps.any:
        return image
    out = image.T if steps.transpose else image
    if steps.flip_rows:
        out = out[::-1]
    if steps.flip_cols:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def apply(image: np.ndarray, geom: SliceGeometry | None, steps: Steps
          ) -> tuple[np.ndarray, SliceGeometry | None]:
    return apply_image(image, steps), (apply_geometry(geom, steps) if geom is not None and steps.any else geom)


def apply_xy(x, y, steps: Steps, rows, cols):
    """Pixel (column x, row y) of the stored slice (rows x cols) -> the turned slice's."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    if steps.transpose:
        x, y, rows, cols = y, x, cols, rows
    if steps.flip_cols:
        x = cols - 1 - x
    if steps.flip_rows:
        y = rows - 1 - y
    return x, y


def apply_spacing(spacing: tuple[float, float], steps: Steps) -> tuple[float, float]:
    """(row, col) pixel spacing of the turned slice."""
    return (spacing[1], spacing[0]) if steps.transpose else tuple(spacing)
