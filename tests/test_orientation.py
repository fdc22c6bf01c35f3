"""Canonical display orientation (lsdc.orientation): mirrored, upside-down and transposed
slices are turned to the viewer's way round with their geometry, so that every pixel keeps
its patient position and the anatomy always faces the same way."""

import itertools

import numpy as np
import pytest

from lsdc import orientation
from lsdc.dicom import SliceGeometry

AXIAL = ((1.0, 0, 0), (0, 1.0, 0))  # column -> patient left, row -> posterior
SAGITTAL = ((0, 1.0, 0), (0, 0, -1.0))  # column -> posterior, row -> feet


def _geom(row_dir, col_dir, rows=5, cols=7, rs=0.8, cs=0.6):
    return SliceGeometry(np.array([10.0, -20.0, 30.0]), np.asarray(row_dir, float), np.asarray(col_dir, float),
                         rs, cs, rows, cols)


def _stored(plane_dirs, transpose, flip_rows, flip_cols):
    """A stored slice of the canonical geometry written transposed / mirrored, as a scanner might."""
    g = _geom(*plane_dirs)
    r, c = np.asarray(g.row_dir), np.asarray(g.col_dir)
    ipp, rs, cs, rows, cols = g.ipp, g.row_spacing, g.col_spacing, g.rows, g.cols
    if flip_cols:
        ipp, r = ipp + (cols - 1) * cs * r, -r
    if flip_rows:
        ipp, c = ipp + (rows - 1) * rs * c, -c
    if transpose:
        r, c, rs, cs, rows, cols = c, r, cs, rs, cols, rows
    return SliceGeometry(ipp, r, c, rs, cs, rows, cols)


@pytest.mark.parametrize("plane,dirs", [("ax_t2", AXIAL), ("sag_t2", SAGITTAL), ("sag_t1", SAGITTAL)])
@pytest.mark.parametrize("transpose,flip_rows,flip_cols", list(itertools.product([False, True], repeat=3)))
def test_any_stored_orientation_turns_to_the_canonical_one(plane, dirs, transpose, flip_rows, flip_cols):
    stored = _stored(dirs, transpose, flip_rows, flip_cols)
    steps = orientation.canonical_steps(stored, plane)
    assert steps.any == (transpose or flip_rows or flip_cols)
    image = np.arange(stored.rows * stored.cols, dtype=np.uint16).reshape(stored.rows, stored.cols)
    turned, geom = orientation.apply(image, stored, steps)
    np.testing.assert_allclose(geom.row_dir, dirs[0], atol=1e-12)
    np.testing.assert_allclose(geom.col_dir, dirs[1], atol=1e-12)
    assert turned.shape == (geom.rows, geom.cols) == (5, 7)
    # every pixel value keeps its patient position
    for y, x in [(0, 0), (4, 6), (2, 3), (1, 5)]:
        sx, sy = np.argwhere(image == turned[y, x])[0][::-1]
        np.testing.assert_allclose(geom.to_patient(x, y), stored.to_patient(sx, sy), atol=1e-9)
        tx, ty = orientation.apply_xy(sx, sy, steps, stored.rows, stored.cols)
        assert (float(tx), float(ty)) == (x, y)
    assert orientation.apply_spacing((stored.row_spacing, stored.col_spacing), steps) == (0.8, 0.6)


def test_a_slice_without_geometry_or_a_canonical_one_is_left_alone():
    image = np.eye(3)
    assert orientation.canonical_steps(None, "ax_t2") == orientation.NONE
    g = _geom(*AXIAL)
    assert orientation.canonical_steps(g, "ax_t2") == orientation.NONE
    turned, same = orientation.apply(image, g, orientation.NONE)
    assert turned is image and same is g
    with pytest.raises(ValueError, match="unknown plane"):
        orientation.canonical_steps(g, "coronal")


def test_a_tilted_axial_block_keeps_its_orientation():
    tilt = np.deg2rad(25)
    c = (0.0, np.cos(tilt), np.sin(tilt))  # an axial block angled along its disc
    assert orientation.canonical_steps(_geom((1.0, 0, 0), c), "ax_t2") == orientation.NONE
    flipped = orientation.canonical_steps(_geom((-1.0, 0, 0), tuple(-v for v in c)), "ax_t2")
    assert flipped == orientation.Steps(False, True, True)
