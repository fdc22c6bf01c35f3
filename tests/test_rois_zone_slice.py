"""The subarticular zone's own axial slice (lsdc.rois.study.zone_slice): a zone lies in its
disc's cross-section, so on a block tilted against the disc it can lie nearer a neighbour
of the slice chosen for the level's canal point. Hand-built geometry: the spine along
patient z (head = +z), discs 40 mm apart, the zone 15 mm behind and 10 mm beside the canal."""

from __future__ import annotations

import numpy as np
import pytest

from lsdc import schema
from lsdc.rois import study
from test_rois_orientation import _axial, _series

CANAL = np.array([0.0, 0.0, -80.0])
ZONE = np.array([10.0, 15.0, -80.0])  # in the disc's cross-section z = -80, posterior (+y) and lateral
STEP = 4.0  # slice spacing along the slice normal


def _block(tilt: float, offsets=range(-2, 3)):
    t = np.deg2rad(tilt)
    # slice k's plane lies k * STEP along its normal (0, sin t, cos t) from the canal point
    return _series([_axial(CANAL[2] + STEP * k / np.cos(t), tilt) for k in offsets])


def _seen_on(geom, tilt: float) -> np.ndarray:
    """Where the zone's recess (a line along the spine, patient z) crosses the slice (its
    normal is (0, sin t, cos t))."""
    _, _, d = geom.to_pixel(ZONE)
    return ZONE - np.array([0.0, 0.0, float(d) / np.cos(np.deg2rad(tilt))])


def test_spine_direction_from_the_neighbouring_levels():
    pts = {lv: np.array([0.0, 3.0 * k, -40.0 * k]) for k, lv in enumerate(schema.LEVELS)}
    d = study.spine_direction(pts, "L3/L4")
    np.testing.assert_allclose(d, (pts["L2/L3"] - pts["L4/L5"]) / np.linalg.norm(pts["L2/L3"] - pts["L4/L5"]))
    np.testing.assert_allclose(study.spine_direction(pts, "L1/L2"),
                               (pts["L1/L2"] - pts["L2/L3"]) / np.linalg.norm(pts["L1/L2"] - pts["L2/L3"]))
    assert study.spine_direction({"L3/L4": pts["L3/L4"]}, "L3/L4") is None


@pytest.mark.parametrize("tilt, expect", [(20.0, 1), (-20.0, -1), (0.0, 0)])
def test_a_zone_behind_the_canal_on_a_tilted_block_goes_to_the_slice_through_its_disc(tilt, expect):
    """Tilt 20 deg: the zone's disc cross-section lies 15 sin 20 = 5.1 mm along the normal from
    the canal point's slice, nearest the slice one step (4 mm) away; untilted, it stays."""
    series = _block(tilt)
    centre = 2  # offsets -2..2: index 2 is the slice through the canal point
    seen = _seen_on(series.geoms[centre], tilt)
    assert abs(float(series.geoms[centre].to_pixel(seen)[2])) < 1e-6  # seen on the chosen slice
    j = study.zone_slice(series, centre, seen, CANAL, np.array([0.0, 0.0, 1.0]))
    assert j == centre + expect
    # the zone itself lies nearest that slice
    dist = [abs(float(g.to_pixel(ZONE)[2])) for g in series.geoms]
    assert int(np.argmin(dist)) == j


def test_a_zone_slice_stays_in_its_block():
    """A slice of another block (another disc's) is never taken, however near."""
    series = _block(20.0, offsets=(0,))
    other = _block(20.0, offsets=(1,))
    joined = _series(series.geoms + other.geoms)
    joined.blocks[:] = [0, 1]
    seen = _seen_on(series.geoms[0], 20.0)
    assert study.zone_slice(joined, 0, seen, CANAL, np.array([0.0, 0.0, 1.0])) == 0
