"""Geometry, crops and slots of the ROI stage on hand-made geometry."""

from __future__ import annotations

import numpy as np
import pytest

from lsdc import schema
from lsdc.params import Rois
from lsdc.rois import geometry
from lsdc.rois.crop import crop_physical
from lsdc.rois.impute import interpolate_level
from lsdc.rois.slots import offsets, study_slots
from rois_fixtures import LEVEL_Y, LEVEL_Z, axial_slices, sagittal_slices


def _canal(i: int, x0: float = 0.0) -> np.ndarray:
    return np.array([x0, LEVEL_Y[i] + 3, LEVEL_Z[i]])


@pytest.mark.parametrize("reverse", [False, True])
def test_map_point_picks_the_block_through_each_level(reverse):
    geoms = axial_slices(2.0)  # 5 angled blocks of 3 slices, centre slice through the disc
    if reverse:
        geoms = geoms[::-1]
    for i in range(5):
        m = geometry.map_point(_canal(i, 2.0), [geoms])
        want = 3 * i + 1
        assert m.index == (len(geoms) - 1 - want if reverse else want)
        assert m.distance < 1e-6
        g = geoms[m.index]
        assert np.allclose(g.to_patient(m.x, m.y), _canal(i, 2.0), atol=1e-6)


def test_map_point_over_several_series_and_coverage():
    upper, lower = axial_slices(0.0, levels=range(0, 3)), axial_slices(0.0, levels=range(3, 5))
    for i in range(5):
        m = geometry.map_point(_canal(i), [upper, lower])
        assert (m.series, m.index) == ((0, 3 * i + 1) if i < 3 else (1, 3 * (i - 3) + 1))
    far = geometry.map_point(np.array([0.0, 0.0, 300.0]), [upper])  # far from every plane
    assert far is None or far.distance > 100
    only_two = geometry.map_point(_canal(4), [axial_slices(0.0, levels=range(0, 2))])
    assert only_two is None or only_two.distance > 20  # an uncovered level is far from every plane


def test_blocks_and_neighbours_follow_the_axis_within_a_block():
    geoms = axial_slices(0.0)  # blocks listed L1/L2 first (head first), slices foot -> head inside
    blocks = geometry.orientation_blocks(geoms)
    assert blocks.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    keys = geometry.axis_keys(geoms, "ax_t2")
    assert geometry.neighbour(4, 1, blocks, keys) == 5  # +1 = towards the head, same block
    assert geometry.neighbour(4, -1, blocks, keys) == 3
    assert geometry.neighbour(5, 1, blocks, keys) == 5  # clamped at the block's end, never block 2
    assert geometry.neighbour(3, -2, blocks, keys) == 3
    rev = geoms[::-1]  # reversed order: the same anatomy, found by position, not index
    rkeys, rblocks = geometry.axis_keys(rev, "ax_t2"), geometry.orientation_blocks(rev)
    assert geometry.neighbour(10, 1, rblocks, rkeys) == 9
    sag = sagittal_slices("sag_t2", 0.0)  # x increasing = towards patient left
    skeys, sblocks = geometry.axis_keys(sag, "sag_t2"), geometry.orientation_blocks(sag)
    assert geometry.neighbour(6, 1, sblocks, skeys) == 7
    rk = geometry.axis_keys(sag[::-1], "sag_t2")
    assert geometry.neighbour(6, 1, sblocks, rk) == 5


def test_crop_centre_and_size_in_mm_on_non_square_anisotropic_images():
    def image(spacing):  # an 8 mm (x) by 4 mm (y) bright rectangle centred on 30 mm, 12 mm
        rows, cols = int(40 / spacing[0]), int(70 / spacing[1])
        yy, xx = np.mgrid[:rows, :cols]
        inside = (np.abs(xx * spacing[1] - 30) <= 4) & (np.abs(yy * spacing[0] - 12) <= 2)
        return (inside * 255).astype(np.uint8), (30 / spacing[1], 12 / spacing[0])

    crops = []
    for spacing in [(0.5, 0.8), (0.4, 0.25)]:
        img, (cx, cy) = image(spacing)
        assert img.shape[0] != img.shape[1]
        crop = crop_physical(img, spacing, cx, cy, crop_mm=16.0, size=32)  # 0.5 mm per crop pixel
        assert crop.shape == (32, 32) and crop.dtype == np.uint8
        cols = np.flatnonzero(crop[16] > 127)
        rows = np.flatnonzero(crop[:, 16] > 127)
        assert abs(len(cols) * 0.5 - 8) <= 1.0 and abs(len(rows) * 0.5 - 4) <= 1.0
        assert abs(cols.mean() - 15.5) <= 0.6 and abs(rows.mean() - 15.5) <= 0.6
        crops.append(crop.astype(int))
    assert np.mean(np.abs(crops[0] - crops[1])) < 12  # same anatomy whatever the spacing
    outside = crop_physical(np.full((20, 30), 200, np.uint8), (1.0, 1.0), -100.0, -100.0, 10.0, 8)
    assert not outside.any()


def test_slots_and_offsets():
    assert offsets(3) == [-1, 0, 1] and offsets(1) == [0] and offsets(2) == [0, 1] and offsets(5) == [-2, -1, 0, 1, 2]
    with pytest.raises(ValueError):
        offsets(0)
    slots = study_slots(Rois())
    assert len(slots) == 5 * 3 + 5 * 2 * 3 + 5 * 2 * 3
    assert [s.plane for s in slots[:30]] == ["sag_t1"] * 30  # schema.PLANES order
    assert slots[0] == ("sag_t1", schema.LEVELS[0], "left", -1)
    assert {s.side for s in slots if s.plane == "sag_t2"} == {None}


def test_interpolate_level():
    known = {0: np.array([0.0, 0.0, 60.0]), 2: np.array([0.0, 4.0, 0.0])}
    assert np.allclose(interpolate_level(known, 1, 30.0), [0.0, 2.0, 30.0])
    assert np.allclose(interpolate_level(known, 3, 30.0), [0.0, 6.0, -30.0])  # extrapolated
    assert np.allclose(interpolate_level({4: np.zeros(3)}, 2, 30.0), [0.0, 0.0, 60.0])
    assert interpolate_level({}, 2, 30.0) is None


def test_centre_slice_is_where_the_detections_are_centred_not_the_single_best():
    import pandas as pd

    from lsdc.rois.select import centre_slice

    xs = np.array([-8.0, -4.0, 0.0, 4.0, 8.0])  # slice centres (patient x, mm)
    # seen on slices 1, 2, 3 about equally, most confident on the edge slice 3
    rows = pd.DataFrame({"image": [1, 2, 3], "conf": [0.8, 0.82, 0.85]})
    assert centre_slice(rows, xs) == 2
    rows = pd.DataFrame({"image": [2, 3], "conf": [0.2, 0.9]})
    assert centre_slice(rows, xs) == 3
    assert centre_slice(rows, np.full(5, np.nan)) == 3  # no geometry: slice indices instead
