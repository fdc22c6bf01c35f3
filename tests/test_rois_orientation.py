"""Sides, axial blocks, localisers, frames of reference and levels across planes, on
hand-built geometry (issue 12, items 3 and 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsdc import dicom, schema
from lsdc.detect.infer import POINT_COLUMNS
from lsdc.dicom import SliceGeometry
from lsdc.params import Params
from lsdc.rois import geometry, select, study
from lsdc.rois.detectors import empty_points
from lsdc.rois.series import Series

SIZE, SP = 64, (1.0, 1.0)


def _axial(z: float, tilt_deg: float, mirrored: bool = False) -> SliceGeometry:
    """An axial slice centred on (0, 0, z), tilted about patient x; mirrored: row direction -x."""
    t = np.deg2rad(tilt_deg)
    r = np.array([-1.0 if mirrored else 1.0, 0.0, 0.0])
    c = np.array([0.0, np.cos(t), -np.sin(t)])
    ipp = np.array([0.0, 0.0, z]) - (SIZE - 1) / 2 * (r + c)
    return SliceGeometry.from_tags(ipp, (*r, *c), SP, SIZE, SIZE)


def _sagittal(x: float) -> SliceGeometry:
    r, c = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    ipp = np.array([x, 0.0, 0.0]) - (SIZE - 1) / 2 * (r + c)
    return SliceGeometry.from_tags(ipp, (*r, *c), SP, SIZE, SIZE)


def _series(geoms, plane="ax_t2", frame=None, series_id=1) -> Series:
    n = len(geoms)
    return Series(series_id, plane, [np.zeros((SIZE, SIZE), np.uint8)] * n, list(geoms), list(range(1, n + 1)),
                  [SP] * n, 0, frame)


def _interleaved():
    lower = [_axial(-30 + 4 * k, +25.0) for k in range(4)]  # L4/L5 block tilted +25
    upper = [_axial(0 + 4 * k, -25.0) for k in range(4)]  # L3/L4 block tilted -25
    return [g for pair in zip(lower, upper) for g in pair], lower, upper  # instance order interleaves


def test_interleaved_axial_blocks_at_plus_minus_25_deg_are_grouped_and_sorted():
    geoms, lower, upper = _interleaved()
    labels = dicom.block_labels(geoms)
    assert sorted(np.bincount(labels).tolist()) == [4, 4]
    assert len(set(labels[0::2])) == 1 and len(set(labels[1::2])) == 1 and labels[0] != labels[1]
    order = dicom.sort_by_blocks(geoms, list(range(len(geoms))))
    ordered = [geoms[i] for i in order]
    assert ordered[:4] == lower and ordered[4:] == upper  # blocks whole, feet first, each in position order
    s = _series(ordered)
    assert s.blocks.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert geometry.neighbour(3, 1, s.blocks, s.keys) == 3  # never steps into the other block


def test_same_tilt_blocks_far_apart_are_split_by_position():
    geoms = [_axial(z, 10.0) for z in (0, 4, 8, 40, 44, 48)]
    assert dicom.block_labels(geoms).tolist() == [0, 0, 0, 1, 1, 1]


def test_localiser_inside_an_axial_series_is_rejected_and_tilted_blocks_are_not():
    geoms, _, _ = _interleaved()
    with_loc = geoms[:3] + [_sagittal(0.0)] + geoms[3:]
    assert dicom.off_plane_slices(with_loc, (0.0, 0.0, 1.0)) == [3]
    assert dicom.off_plane_slices(geoms, (0.0, 0.0, 1.0)) == []
    coronal = SliceGeometry.from_tags((0, 0, 0), (1, 0, 0, 0, 0, -1), SP, SIZE, SIZE)
    assert dicom.off_plane_slices([_axial(0, 0)] * 5 + [coronal], (0.0, 0.0, 1.0)) == [5]


def _boxes_at(series: Series, points: dict[str, np.ndarray], level=None) -> pd.DataFrame:
    """Axial detections named as the detector does (larger column = 'left')."""
    rows = []
    for j, g in enumerate(series.geoms):
        xs = {k: g.to_pixel(p)[:2] for k, p in points.items()}
        big, small = sorted(xs, key=lambda k: -float(xs[k][0]))
        for name, k in (("left", big), ("right", small)):
            rows.append((j, level, name, float(xs[k][0]), float(xs[k][1]), 0.9, "ok", ""))
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def test_mirrored_axial_series_swaps_sides_by_orientation():
    left, right = np.array([10.0, 0.0, 0.0]), np.array([-10.0, 0.0, 0.0])  # +x = patient left
    assert dicom.larger_column_is_left(_axial(0, 0)) is True
    assert dicom.larger_column_is_left(_axial(0, 0, mirrored=True)) is False
    assert dicom.larger_column_is_left(_sagittal(0)) is None
    for mirrored in (False, True):
        s = _series([_axial(0, 0, mirrored)])
        det = _boxes_at(s, {"L": left, "R": right}).assign(series=0, slice=0)
        fixed = study._sides_by_orientation(det, [s])
        for _, row in fixed.iterrows():
            p = s.geoms[0].to_patient(row["x"], row["y"])
            assert (p[0] > 0) == (row["side"] == "left"), (mirrored, row.to_dict())


class _NoBoxes:
    def points(self, plane, images, spacings, sides=None, midlines=None):
        return empty_points()


class _AxialPair:
    """Two subarticular boxes 10 mm either side of the image centre on every axial slice."""

    def points(self, plane, images, spacings, sides=None, midlines=None):
        rows = [(j, None, sd, SIZE / 2 + dx, SIZE / 2, 0.9, "ok", "")
                for j in range(len(images)) for sd, dx in (("left", 10.0), ("right", -10.0))]
        return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def _study_with_axial(frame_sag: str | None, frame_ax: str | None, detectors=None, source="detected"):
    sag = _series([_sagittal(x) for x in (-4.0, 0.0, 4.0)], "sag_t2", frame_sag, 10)
    ax = _series([_axial(z, 0.0) for z in (-2.0, 0.0, 2.0)], "ax_t2", frame_ax, 20)
    loaded = {"sag_t2": [sag], "sag_t1": [], "ax_t2": [ax]}
    locs = {("sag_t2", lv, None): study.Loc(0, 1, SIZE / 2, SIZE / 2 + 0.0, source=source)
            for lv in schema.LEVELS[2:3]}
    warnings: list[str] = []
    study._axial(loaded, detectors or _NoBoxes(), Params(), "anatomy", locs, warnings)
    return locs, warnings


def test_an_axial_slice_chosen_from_a_guessed_level_gives_imputed_crops():
    """The detector finds both zones on the axial slice, but the slice was chosen from an
    imputed sagittal point: which level it shows is a guess, so its crops are imputed."""
    for source in ("detected", "imputed"):
        locs, _ = _study_with_axial("1.2.3", "1.2.3", _AxialPair(), source)
        assert {locs[("ax_t2", "L3/L4", sd)].source for sd in ("left", "right")} == {source}


def test_no_sagittal_to_axial_mapping_across_frames_of_reference():
    locs, warnings = _study_with_axial("1.2.3", "1.2.3")
    assert ("ax_t2", "L3/L4", "left") in locs and not warnings
    locs, warnings = _study_with_axial("1.2.3", "9.9.9")
    assert not any(k[0] == "ax_t2" for k in locs)
    assert warnings and "FrameOfReferenceUID" in warnings[0]
    locs, _ = _study_with_axial(None, "9.9.9")  # an absent tag: geometry trusted
    assert ("ax_t2", "L3/L4", "left") in locs


def test_sag_t1_levels_come_from_sag_t2_through_patient_coordinates():
    t2 = _series([_sagittal(x) for x in (-2.0, 0.0, 2.0)], "sag_t2", "1", 1)
    z = {lv: 60.0 - 30.0 * i for i, lv in enumerate(schema.LEVELS)}  # patient z of each disc
    rows = []
    for j in range(3):
        for lv in schema.LEVELS:
            x, y, _ = t2.geoms[j].to_pixel(np.array([0.0, 5.0, z[lv]]))
            rows.append((j, lv, None, float(x), float(y), 0.9, "ok" if j == 1 else "ambiguous", ""))
    det2 = pd.DataFrame(rows, columns=list(POINT_COLUMNS))
    det2.loc[det2["image"] == 0, "level"] = det2.loc[det2["image"] == 0, "level"].shift(1)  # shifted guess
    ref = select.level_reference(det2, t2)
    assert set(ref) == set(schema.LEVELS)  # only the anchored slice counts
    fixed = select.relabel_by_reference(det2, t2, ref, "test")
    for _, row in fixed.iterrows():
        p = t2.geoms[int(row["image"])].to_patient(row["x"], row["y"])
        assert row["status"] == "ok" and abs(p[2] - z[row["level"]]) < 1e-6
    t1 = _series([_sagittal(x) for x in (-15.0, 15.0)], "sag_t1", "1", 2)
    rows = []
    for j in range(2):  # foramina 3 mm above their disc, named one level off by the naming step
        for i, lv in enumerate(schema.LEVELS[:4]):
            x, y, _ = t1.geoms[j].to_pixel(np.array([t1.geoms[j].ipp[0], 9.0, z[lv] + 3.0]))
            rows.append((j, schema.LEVELS[i + 1], "left", float(x), float(y), 0.8, "ambiguous", ""))
    det1 = select.relabel_by_reference(pd.DataFrame(rows, columns=list(POINT_COLUMNS)), t1, ref, "sag_t2",
                                       only_doubtful=False)
    assert sorted(det1["level"].unique()) == sorted(schema.LEVELS[:4]) and (det1["status"] == "ok").all()
    for _, row in det1.iterrows():
        p = t1.geoms[int(row["image"])].to_patient(row["x"], row["y"])
        assert abs(p[2] - 3.0 - z[row["level"]]) < 1e-6


def test_localiser_in_an_axial_dicom_series_is_dropped_with_a_reason(tmp_path):
    from lsdc.rois.series import OFF_PLANE, load_series
    from rsna_layout import write_slice

    files = []
    for k, z in enumerate((0.0, 4.0, 8.0)):
        g = _axial(z, 0.0)
        files.append(write_slice(tmp_path / f"ax/{k + 1}.dcm", rows=SIZE, cols=SIZE, instance=k + 1,
                                 ipp=g.ipp, iop=(*g.row_dir, *g.col_dir), spacing=SP, frame="1.2.9"))
    g = _sagittal(0.0)
    files.append(write_slice(tmp_path / "ax/4.dcm", rows=SIZE, cols=SIZE, instance=4, ipp=g.ipp,
                             iop=(*g.row_dir, *g.col_dir), spacing=SP, frame="1.2.9"))
    skipped: list[dict] = []
    s = load_series(tmp_path, 5, "ax_t2", [str(f.relative_to(tmp_path)) for f in files], skipped)
    assert len(s) == 3 and s.instances == [1, 2, 3] and s.frame_of_reference == "1.2.9"
    assert [(d["file"], d["kind"]) for d in skipped] == [("ax/4.dcm", OFF_PLANE)]
    assert "localiser" in skipped[0]["reason"]


class _GuessingT2:
    """Boxes 14 mm apart on every sag_t2 slice, each slice naming them from the bottom:
    `n` of them (five: a whole lumbar chain; four: a count nothing anchors)."""

    def __init__(self, status, n=5):
        self.status, self.n = status, n

    def points(self, plane, images, spacings, sides=None, midlines=None):
        levels = schema.LEVELS[len(schema.LEVELS) - self.n:]
        rows = [(j, lv, None, 32.0, 4.0 + 14 * i, 0.9, self.status, "")
                for j in range(len(images)) for i, lv in enumerate(levels)]
        return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def test_a_guessed_level_is_never_used_as_if_known():
    """Whatever each slice said, the series' own chain decides: four discs leave the count
    in doubt (crops imputed), five anchor it (crops detected)."""
    for status in ("ok", "ambiguous"):
        for n, want in ((4, "imputed"), (5, "detected")):
            sag = _series([_sagittal(x) for x in (-4.0, 0.0, 4.0)], "sag_t2", "1", 10)
            loaded = {"sag_t2": [sag], "sag_t1": [], "ax_t2": []}
            locs: dict = {}
            warnings: list[str] = []
            study._sagittal(loaded, _GuessingT2(status, n), Params(), "anatomy", locs, warnings)
            assert {locs[("sag_t2", lv, None)].source for lv in schema.LEVELS} == {want}, (status, n)
            assert any("level count in doubt" in w for w in warnings) == (n == 4)


def test_mirrored_and_upside_down_axial_dicom_series_load_turned_back(tmp_path):
    """The same anatomy stored three ways (usual, row direction -x, column direction -y)
    loads as the same image with the same geometry (lsdc.orientation), so the detector
    sees it the way it learnt."""
    from lsdc.rois.series import load_series
    from rsna_layout import write_slice

    yy, xx = np.mgrid[:SIZE, :SIZE]
    pixels = (10 * xx + 3 * yy).astype(np.uint16)  # brighter towards patient left, less towards posterior
    pixels[10:20, 40:50] = 4000  # a bright mark in the patient-left, anterior quadrant
    loaded = {}
    for kind in ("usual", "row", "col"):
        g = _axial(0.0, 0.0)
        img = pixels
        if kind == "row":
            g, img = SliceGeometry(g.ipp + (SIZE - 1) * g.row_dir, -g.row_dir, g.col_dir, *SP, SIZE, SIZE), pixels[:, ::-1]
        if kind == "col":
            g, img = SliceGeometry(g.ipp + (SIZE - 1) * g.col_dir, g.row_dir, -g.col_dir, *SP, SIZE, SIZE), pixels[::-1]
        f = write_slice(tmp_path / f"{kind}/1.dcm", rows=SIZE, cols=SIZE, ipp=g.ipp, iop=(*g.row_dir, *g.col_dir),
                        spacing=SP, pixels=np.ascontiguousarray(img), description="Axial T2")
        loaded[kind] = load_series(tmp_path, 1, "ax_t2", [str(f.relative_to(tmp_path))])
    usual = loaded["usual"]
    assert usual.images[0][12, 42] == 255 and usual.images[0][40, 20] < 128
    for kind in ("row", "col"):
        s = loaded[kind]
        np.testing.assert_array_equal(s.images[0], usual.images[0])
        np.testing.assert_allclose(s.geoms[0].to_patient(42, 12), usual.geoms[0].to_patient(42, 12), atol=1e-9)
        assert dicom.larger_column_is_left(s.geoms[0]) is True


class _MidSliceMissesL5S1:
    """sag_t2 detections: the outer slices see all five discs (their count in doubt for an
    extra box), the middle one missed L5/S1 and counted T12/L1 as L1/L2, saying 'ok'."""

    Z = {lv: 60.0 - 30.0 * i for i, lv in enumerate(schema.LEVELS)}  # patient z of each disc
    T12_Z = 90.0

    def __init__(self, geoms):
        self.geoms = geoms

    def points(self, plane, images, spacings, sides=None, midlines=None):
        rows = []
        for j in range(len(images)):
            def px(z, j=j):
                x, y, _ = self.geoms[j].to_pixel(np.array([0.0, 5.0, z]))
                return float(x), float(y)
            if j == 1:
                named = [(schema.LEVELS[0], self.T12_Z, 0.5)] + [
                    (schema.LEVELS[i + 1], self.Z[lv], 0.9) for i, lv in enumerate(schema.LEVELS[:4])]
                status = "ok"
            else:
                named = [(lv, self.Z[lv], 0.9) for lv in schema.LEVELS]
                status = "ambiguous"
            rows += [(j, lv, None, *px(z), c, status, "") for lv, z, c in named]
        return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def test_one_slice_that_missed_l5s1_does_not_shift_the_series():
    """Each slice named alone: the only 'ok' slice would set every level one too high, as if
    known. Named as a series (lsdc.rois.consensus): every crop sits on its own disc."""
    sag = _series([_sagittal(x) for x in (-3.0, 0.0, 3.0)], "sag_t2", "1", 10)
    loaded = {"sag_t2": [sag], "sag_t1": [], "ax_t2": []}
    locs: dict = {}
    study._sagittal(loaded, _MidSliceMissesL5S1(sag.geoms), Params(), "anatomy", locs)
    for lv in schema.LEVELS:
        loc = locs[("sag_t2", lv, None)]
        p = sag.geoms[loc.index].to_patient(loc.x, loc.y)
        assert loc.source == "detected" and abs(p[2] - _MidSliceMissesL5S1.Z[lv]) < 1e-6, (lv, p)


class _T2InDoubtT1Clear:
    """sag_t2: only four discs found (L1/L2 to L4/L5, the count cannot be anchored);
    sag_t1: all five foramina on both sides, 3 mm above their discs."""

    Z = {lv: 60.0 - 30.0 * i for i, lv in enumerate(schema.LEVELS)}

    def __init__(self, t2, t1, right_levels=5):
        self.geoms = {"sag_t2": t2.geoms, "sag_t1": t1.geoms}
        self.right_levels = right_levels  # fewer: the right foramina's count is in doubt too

    def points(self, plane, images, spacings, sides=None, midlines=None):
        rows = []
        geoms = self.geoms[plane]
        for j in range(len(images)):  # images are the whole series here (no lateral window hit)
            g = geoms[j]
            levels = schema.LEVELS[:4] if plane == "sag_t2" else schema.LEVELS
            if plane == "sag_t1" and sides and sides[j] == "right":
                levels = schema.LEVELS[:self.right_levels]
            for i, lv in enumerate(levels):
                y, dz = (5.0, 0.0) if plane == "sag_t2" else (9.0, 3.0)
                x, yy, _ = g.to_pixel(np.array([g.ipp[0], y, self.Z[lv] + dz]))
                rows.append((j, schema.LEVELS[i + 5 - len(levels)], sides[j] if sides else None, float(x), float(yy),
                             0.9, "ambiguous", ""))
        return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def test_sag_t2_in_doubt_takes_its_levels_from_both_anchored_sides_of_sag_t1():
    t2 = _series([_sagittal(x) for x in (-3.0, 0.0, 3.0)], "sag_t2", "1", 1)
    t1 = _series([_sagittal(x) for x in (-15.0, 15.0)], "sag_t1", "1", 2)
    loaded = {"sag_t2": [t2], "sag_t1": [t1], "ax_t2": []}
    locs: dict = {}
    warnings: list[str] = []
    study._sagittal(loaded, _T2InDoubtT1Clear(t2, t1), Params(), "anatomy", locs, warnings)
    assert any("levels taken from the sag_t1 foramen chains" in w for w in warnings)
    for lv in schema.LEVELS[:4]:
        loc = locs[("sag_t2", lv, None)]
        p = t2.geoms[loc.index].to_patient(loc.x, loc.y)
        assert loc.source == "detected" and abs(p[2] - _T2InDoubtT1Clear.Z[lv]) < 1e-6, (lv, p)
    assert locs[("sag_t2", "L5/S1", None)].source == "imputed"  # not found on sag_t2: imputed, never known
    for sd in ("left", "right"):
        assert {locs[("sag_t1", lv, sd)].source for lv in schema.LEVELS} == {"detected"}


def test_one_anchored_sag_t1_side_is_not_trusted_alone():
    """sag_t2 in doubt, the right foramina in doubt too: the left side's own count, though
    anchored, names nothing as known (it could be the one that missed L5/S1)."""
    t2 = _series([_sagittal(x) for x in (-3.0, 0.0, 3.0)], "sag_t2", "1", 1)
    t1 = _series([_sagittal(x) for x in (-15.0, 15.0)], "sag_t1", "1", 2)
    loaded = {"sag_t2": [t2], "sag_t1": [t1], "ax_t2": []}
    locs: dict = {}
    warnings: list[str] = []
    study._sagittal(loaded, _T2InDoubtT1Clear(t2, t1, right_levels=4), Params(), "anatomy", locs, warnings)
    assert not any("levels taken from the sag_t1" in w for w in warnings)
    assert {locs[k].source for k in locs} == {"imputed"}


class _AllInDoubtAlike(_T2InDoubtT1Clear):
    """Every chain (canal and both foramen sides) sees all five levels, L1/L2 weakly (its
    count in doubt: 'a weak box at an end'); `faint`: the canal chain also has a weak box
    below L5/S1 (the count in doubt for a possibly faint L5/S1)."""

    def __init__(self, t2, t1, faint=False):
        super().__init__(t2, t1)
        self.faint = faint

    def points(self, plane, images, spacings, sides=None, midlines=None):
        rows = []
        for j in range(len(images)):
            g = self.geoms[plane][j]
            y, dz = (5.0, 0.0) if plane == "sag_t2" else (9.0, 3.0)
            boxes = [(lv, self.Z[lv] + dz, 0.2 if lv == "L1/L2" else 0.9) for lv in schema.LEVELS]
            if self.faint and plane == "sag_t2":
                boxes.append(("L5/S1", self.Z["L5/S1"] - 30.0, 0.1))
            for lv, z, conf in boxes:
                x, yy, _ = g.to_pixel(np.array([g.ipp[0], y, z]))
                rows.append((j, lv, sides[j] if sides else None, float(x), float(yy), conf, "ambiguous", ""))
        return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def test_three_chains_in_doubt_that_agree_anchor_the_count_unless_l5s1_may_be_faint():
    t2 = _series([_sagittal(x) for x in (-3.0, 0.0, 3.0)], "sag_t2", "1", 1)
    t1 = _series([_sagittal(x) for x in (-15.0, 15.0)], "sag_t1", "1", 2)
    loaded = {"sag_t2": [t2], "sag_t1": [t1], "ax_t2": []}
    for faint in (False, True):
        locs: dict = {}
        warnings: list[str] = []
        study._sagittal(loaded, _AllInDoubtAlike(t2, t1, faint), Params(), "anatomy", locs, warnings)
        assert sum("level count in doubt" in w for w in warnings) == 3  # each chain alone is in doubt
        assert any("no chain anchored" in w for w in warnings)
        sources = {locs[k].source for k in locs}
        assert sources == ({"imputed"} if faint else {"detected"}), (faint, sources)
        for lv in schema.LEVELS:  # the names are right either way: the doubt is only flagged
            loc = locs[("sag_t2", lv, None)]
            assert abs(t2.geoms[loc.index].to_patient(loc.x, loc.y)[2] - _AllInDoubtAlike.Z[lv]) < 1e-6


class _CanalOffCentre:
    """sag_t2 whose canal runs through the slices at patient x >= 8 mm only (scoliosis): five
    confident discs on each of them; each image's pixels hold its slice number."""

    Z = {lv: 60.0 - 30.0 * i for i, lv in enumerate(schema.LEVELS)}

    def __init__(self, geoms, canal_from_x=8.0):
        self.geoms, self.canal_from_x, self.seen = geoms, canal_from_x, []

    def points(self, plane, images, spacings, sides=None, midlines=None):
        rows = []
        for j, im in enumerate(images):
            g = self.geoms[int(im[0, 0])]
            self.seen.append(int(im[0, 0]))
            if g.ipp[0] < self.canal_from_x:
                continue
            for lv in schema.LEVELS:
                x, y, _ = g.to_pixel(np.array([g.ipp[0], 5.0, self.Z[lv]]))
                rows.append((j, lv, None, float(x), float(y), 0.9, "ok", ""))
        return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def _canal_series(xs):
    geoms = [_sagittal(x) for x in xs]
    images = [np.full((SIZE, SIZE), k, np.uint8) for k in range(len(geoms))]
    return Series(5, "sag_t2", images, geoms, list(range(1, len(geoms) + 1)), [SP] * len(geoms), 0, "1")


def test_the_canal_window_follows_a_canal_that_runs_out_of_it():
    """Window 12 mm about the series centre (x 0): slices -12..12. The canal lies at x >= 8,
    so the window's outermost slice (x 12) holds five confident discs and the slice beyond it
    (x 16) is looked at too; on the other side nothing is found, so nothing is added there."""
    sag = _canal_series([-16.0, -12.0, -8.0, -4.0, 0.0, 4.0, 8.0, 12.0, 16.0])
    det = _CanalOffCentre(sag.geoms)
    loaded = {"sag_t2": [sag], "sag_t1": [], "ax_t2": []}
    groups = study._sagittal(loaded, det, Params(), "anatomy", {})
    assert sorted(set(det.seen)) == [1, 2, 3, 4, 5, 6, 7, 8]  # x -16 (index 0) is never looked at
    named = study.named_points(7, loaded, groups, pd.DataFrame())
    assert set(named["instance_number"]) == {7, 8, 9}  # x 8, 12 and the added 16
    assert set(named.loc[named["instance_number"] == 9, "level"]) == set(schema.LEVELS)


def test_the_canal_window_stays_put_when_its_edge_slices_show_no_canal():
    sag = _canal_series([-16.0, -12.0, -8.0, -4.0, 0.0, 4.0, 8.0, 12.0, 16.0])
    det = _CanalOffCentre(sag.geoms, canal_from_x=-5.0)  # canal at x -4..16: edge x 12 holds it
    det_centre = _CanalOffCentre(sag.geoms, canal_from_x=100.0)  # no canal anywhere
    study._sagittal({"sag_t2": [sag], "sag_t1": [], "ax_t2": []}, det_centre, Params(), "anatomy", {})
    assert sorted(set(det_centre.seen)) == [1, 2, 3, 4, 5, 6, 7]
    study._sagittal({"sag_t2": [sag], "sag_t1": [], "ax_t2": []}, det, Params(), "anatomy", {})
    assert sorted(set(det.seen)) == [1, 2, 3, 4, 5, 6, 7, 8]  # only the side the canal runs out of
