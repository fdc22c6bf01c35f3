"""lsdc.dicom: header reading, geometry, spatial sorting, pixel decoding, normalisation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from lsdc import dicom
from tests.rsna_layout import AX_IOP, SAG_IOP, write_slice

# ----------------------------------------------------------------------------- geometry

def test_slice_normal_of_sagittal_and_axial():
    assert np.allclose(dicom.slice_normal(SAG_IOP), [-1, 0, 0])
    assert np.allclose(dicom.slice_normal(AX_IOP), [0, 0, 1])
    with pytest.raises(ValueError, match="degenerate"):
        dicom.slice_normal((1, 0, 0, 1, 0, 0))


def test_normal_position_is_ipp_dot_normal():
    assert dicom.normal_position((3.0, 5.0, 7.0), AX_IOP) == pytest.approx(7.0)
    assert dicom.normal_position((3.0, 5.0, 7.0), SAG_IOP) == pytest.approx(-3.0)


def _oblique_geometry(rows=20, cols=30):
    angle = np.deg2rad(25)
    r = np.array([np.cos(angle), np.sin(angle), 0.0])
    c = np.array([0.0, 0.0, -1.0])
    return dicom.SliceGeometry.from_tags((12.5, -40.0, 60.0), (*r, *c), (0.8, 0.3), rows, cols)


def test_pixel_patient_round_trip_non_square_anisotropic():
    geom = _oblique_geometry()
    xs = np.array([0.0, 29.0, 7.25, 15.5])
    ys = np.array([0.0, 19.0, 3.5, 11.0])
    points = geom.to_patient(xs, ys)
    # column step is col_spacing (0.3 mm) along R, row step row_spacing (0.8 mm) along C
    assert np.linalg.norm(geom.to_patient(1, 0) - geom.to_patient(0, 0)) == pytest.approx(0.3)
    assert np.linalg.norm(geom.to_patient(0, 1) - geom.to_patient(0, 0)) == pytest.approx(0.8)
    assert np.allclose(geom.to_patient(0, 1) - geom.to_patient(0, 0), [0, 0, -0.8])
    x, y, d = geom.to_pixel(points + 2.0 * geom.normal)
    assert np.allclose(x, xs) and np.allclose(y, ys) and np.allclose(d, 2.0)
    assert geom.contains(29.5, 19.5) and not geom.contains(30, 5) and not geom.contains(5, -0.1)


def _headers(instances, xs, iop=SAG_IOP):
    return [dicom.SliceHeader(path=f"{n}.dcm", instance_number=n, rows=32, cols=24,
                              pixel_spacing=(0.5, 0.7), ipp=(x, -10.0, 20.0), iop=iop,
                              transfer_syntax="", bits_stored=12, photometric="MONOCHROME2",
                              slice_thickness=None, spacing_between_slices=None)
            for n, x in zip(instances, xs)]


def test_pixel_grid_is_to_patient_of_every_pixel():
    geom = _oblique_geometry(rows=20, cols=30)
    x, y, z = geom.pixel_grid()
    assert x.shape == (20, 30) and x.dtype == np.float32
    cols, rows = np.meshgrid(np.arange(30.0), np.arange(20.0))
    expected = geom.to_patient(cols, rows)
    np.testing.assert_allclose(np.stack([x, y, z], axis=-1), expected, atol=1e-4)
    assert z[5, 0] == np.float32(60.0 - 5 * 0.8)  # rows run down C = -z, 0.8 mm apart


def test_sort_slices_ignores_reversed_instance_numbers():
    # sagittal normal is -x: position = -x, so x = 8, 4, 0 are in increasing position order
    headers = _headers([1, 2, 3], [0.0, 4.0, 8.0])
    positions, ok = dicom.series_positions(headers)
    assert ok and np.allclose(positions, [0.0, -4.0, -8.0])
    assert dicom.sort_slices(headers) == [2, 1, 0]
    assert dicom.spatial_ranks(positions).tolist() == [2, 1, 0]


def test_one_slice_without_ipp_is_placed_between_the_others():
    # positions -x: instance 7 at 0, 6 at -8; instance 5 lacks IPP: extrapolated to -16
    headers = _headers([7, 5, 6], [0.0, 4.0, 8.0])
    headers[1] = dataclasses.replace(headers[1], ipp=None)
    positions, has = dicom.slice_positions(headers)
    assert has.tolist() == [True, False, True] and positions.tolist() == [0.0, -16.0, -8.0]
    positions, ok = dicom.series_positions(headers)
    assert not ok and positions.tolist() == [0.0, -16.0, -8.0]
    assert dicom.sort_slices(headers) == [1, 2, 0]
    assert headers[1].geometry is None and headers[0].geometry is not None
    # in the middle: interpolated between its instance-number neighbours
    headers = _headers([1, 2, 3, 4], [0.0, 4.0, 8.0, 12.0])
    headers[2] = dataclasses.replace(headers[2], iop=None)
    positions, has = dicom.slice_positions(headers)
    assert positions.tolist() == [0.0, -4.0, -8.0, -12.0] and has.tolist() == [True, True, False, True]


def test_positions_fall_back_to_instance_numbers_with_under_two_geometric_slices():
    headers = _headers([7, 5, 6], [0.0, 4.0, 8.0])
    headers = [dataclasses.replace(h, ipp=None) if i else h for i, h in enumerate(headers)]
    positions, has = dicom.slice_positions(headers)
    assert positions.tolist() == [7.0, 5.0, 6.0] and not has.any()
    assert dicom.sort_slices(headers) == [1, 2, 0]


def test_series_normal_keeps_angled_blocks_comparable():
    tilt = np.deg2rad(10)
    iop_a = (1, 0, 0, 0, np.cos(tilt), np.sin(tilt))
    iop_b = (1, 0, 0, 0, np.cos(-tilt), np.sin(-tilt))
    n = dicom.series_normal([iop_a, iop_b, AX_IOP])
    assert np.allclose(n, [0, 0, 1], atol=1e-9)


def test_duplicate_positions_and_nearest_slice():
    assert dicom.duplicate_positions([0.0, 4.0, 4.0, 8.0, 8.0005]) == 2
    headers = _headers([1, 2, 3], [0.0, 4.0, 8.0])
    geoms = [h.geometry for h in headers]
    point = geoms[1].to_patient(5.0, 7.0) + np.array([1.0, 0.0, 0.0])  # 1 mm off slice 1 along x
    k, x, y, dist = dicom.nearest_slice(geoms, point)
    assert (k, round(x, 6), round(y, 6), round(dist, 6)) == (1, 5.0, 7.0, 1.0)
    with pytest.raises(ValueError, match="no slice"):
        dicom.nearest_slice([None, None], point)


# ----------------------------------------------------------------------------- headers

def test_read_header_uncompressed_and_rle(tmp_path):
    for rle in (False, True):
        path = write_slice(tmp_path / f"{int(rle)}.dcm", rows=24, cols=40, instance=9,
                           ipp=(1, 2, 3), spacing=(0.6, 0.4), rle=rle, thickness=None)
        h = dicom.read_header(path)
        assert (h.rows, h.cols, h.instance_number, h.bits_stored) == (24, 40, 9, 12)
        assert h.pixel_spacing == (0.6, 0.4) and h.ipp == (1.0, 2.0, 3.0) and h.iop == SAG_IOP
        assert h.slice_thickness is None and h.spacing_between_slices is None
        assert h.transfer_syntax == ("1.2.840.10008.1.2.5" if rle else "1.2.840.10008.1.2.1")


@pytest.mark.parametrize("rle", [False, True])
def test_read_header_detects_truncated_file(tmp_path, rle):
    path = write_slice(tmp_path / "x.dcm", rle=rle)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(dicom.DicomReadError) as err:
        dicom.read_header(path)
    assert err.value.kind == dicom.TRUNCATED and str(path) in err.value.reason


def test_read_header_never_accepts_a_file_cut_anywhere(tmp_path):
    data = write_slice(tmp_path / "x.dcm", rle=True).read_bytes()
    kinds = set()
    for cut in range(1, len(data), 37):
        (tmp_path / "cut.dcm").write_bytes(data[:cut])
        with pytest.raises(dicom.DicomReadError) as err:
            dicom.read_header(tmp_path / "cut.dcm")
        kinds.add(err.value.kind)
    assert kinds == {dicom.NOT_DICOM, dicom.NO_PIXELS, dicom.TRUNCATED}


def _in_syntax(tmp_path, syntax: str):
    """A 64x64 slice saved under one of four transfer syntaxes; returns its bytes."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

    uid = {"explicit": ExplicitVRLittleEndian, "implicit": ImplicitVRLittleEndian,
           "rle": RLELossless, "jpeg2000": JPEG2000Lossless}[syntax]
    ds = pydicom.dcmread(write_slice(tmp_path / "src.dcm", rows=64, cols=64))
    if uid.is_encapsulated:
        ds.compress(uid)
    else:
        ds.file_meta.TransferSyntaxUID = uid
    ds.save_as(tmp_path / f"{syntax}.dcm", enforce_file_format=True)
    return (tmp_path / f"{syntax}.dcm").read_bytes()


@pytest.mark.parametrize("syntax", ["explicit", "implicit", "rle", "jpeg2000"])
def test_read_pixels_of_a_cut_file_raises_the_kind_read_header_gives(tmp_path, syntax):
    """Issue 16.1: cut in the header (152 bytes, 900-976 bytes: struct.error inside pydicom
    before) or anywhere else, read_pixels raises DicomReadError naming the file, of the same
    kind as read_header (so predict-study / extract-rois skip the slice as ingest does)."""
    data = _in_syntax(tmp_path, syntax)
    assert dicom.read_pixels(tmp_path / f"{syntax}.dcm")[1].shape == (64, 64)
    cuts = [152, 200, *range(900, 977, 4), *range(1, len(data), 53)]
    kinds = set()
    for cut in cuts:
        path = tmp_path / f"cut{cut}.dcm"
        path.write_bytes(data[:cut])
        with pytest.raises(dicom.DicomReadError) as header_err:
            dicom.read_header(path)
        with pytest.raises(dicom.DicomReadError) as pixels_err:
            dicom.read_pixels(path)
        assert pixels_err.value.kind == header_err.value.kind, (cut, pixels_err.value.reason)
        assert str(path) in pixels_err.value.reason
        kinds.add(pixels_err.value.kind)
        if cut in (152, 200) or 900 <= cut <= 976:  # inside the header of an MR image object
            assert pixels_err.value.kind == dicom.TRUNCATED, (cut, pixels_err.value.reason)
    assert dicom.TRUNCATED in kinds and kinds <= {dicom.NOT_DICOM, dicom.TRUNCATED, dicom.NO_PIXELS}


def test_a_complete_file_without_pixel_data_is_no_pixel_data(tmp_path):
    ds = pydicom.dcmread(write_slice(tmp_path / "x.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "x.dcm")
    for read in (dicom.read_header, dicom.read_pixels):
        with pytest.raises(dicom.DicomReadError) as err:
            read(tmp_path / "x.dcm")
        assert err.value.kind == dicom.NO_PIXELS


def test_read_series_can_skip_an_unreadable_file(tmp_path, caplog):
    paths = [write_slice(tmp_path / f"{i}.dcm", instance=i, ipp=(-4.0 * i, 0, 0)) for i in (1, 2, 3)]
    paths[1].write_bytes(paths[1].read_bytes()[:152])
    with pytest.raises(dicom.DicomReadError, match="2.dcm"):
        dicom.read_series(paths)
    series = dicom.read_series(paths, skip_unreadable=True)
    assert [h.instance_number for h in series.headers] == [1, 3] and series.geometry_ok
    assert any("2.dcm" in r.message and "slice skipped" in r.message for r in caplog.records)


def test_read_header_empty_and_not_dicom(tmp_path):
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "text.dcm").write_text("this is not an image\n" * 20)
    with pytest.raises(dicom.DicomReadError, match="empty") as err:
        dicom.read_header(tmp_path / "empty.dcm")
    assert err.value.kind == dicom.EMPTY_FILE
    with pytest.raises(dicom.DicomReadError, match="not a DICOM") as err:
        dicom.read_header(tmp_path / "text.dcm")
    assert err.value.kind == dicom.NOT_DICOM and "text.dcm" in err.value.reason


# ----------------------------------------------------------------------------- pixels

def test_read_series_decodes_in_spatial_order(tmp_path):
    paths = []
    for s in range(3):
        instance = 3 - s  # reversed numbering
        pixels = np.full((20, 28), 100 * (s + 1), dtype=np.uint16)
        paths.append(write_slice(tmp_path / f"{instance}.dcm", rows=20, cols=28, instance=instance,
                                 ipp=(10.0 - 4 * s, 0, 0), pixels=pixels, rle=s == 1))
    # sagittal normal -x: ipp x = 10, 6, 2 -> positions -10, -6, -2: written order is spatial
    series = dicom.read_series(list(reversed(paths)))
    assert series.geometry_ok and not series.mixed_shapes
    assert [int(s[0, 0]) for s in series.slices] == [100, 200, 300]
    assert [h.instance_number for h in series.headers] == [3, 2, 1]
    assert series.stack().shape == (3, 20, 28) and series.stack().dtype == np.float32


def test_geometry_from_an_instances_table_row_matches_the_header(tmp_path):
    path = write_slice(tmp_path / "1.dcm", rows=20, cols=28, ipp=(1.5, -2.0, 3.0), spacing=(0.7, 0.4))
    header = dicom.read_header(path)
    row = {"ipp_x": 1.5, "ipp_y": -2.0, "ipp_z": 3.0, "iop_rx": 0.0, "iop_ry": 1.0, "iop_rz": 0.0,
           "iop_cx": 0.0, "iop_cy": 0.0, "iop_cz": -1.0, "pixel_spacing_row": 0.7,
           "pixel_spacing_col": 0.4, "rows": 20, "cols": 28}
    geom = dicom.SliceGeometry.from_instance_row(row)
    assert np.allclose(geom.to_patient(3, 4), header.geometry.to_patient(3, 4))
    assert np.allclose(geom.to_patient(3, 4), [1.5, -2.0 + 3 * 0.4, 3.0 - 4 * 0.7])
    assert dicom.SliceGeometry.from_instance_row({**row, "ipp_x": float("nan")}) is None
    series = dicom.read_series([path])
    k, x, y, dist = dicom.nearest_slice(series.geometries, geom.to_patient(10, 12))
    assert (k, round(x, 9), round(y, 9), round(dist, 9)) == (0, 10, 12, 0)


def test_read_series_mixed_shapes_cannot_stack(tmp_path):
    a = write_slice(tmp_path / "1.dcm", rows=20, cols=20, instance=1, ipp=(0, 0, 0))
    b = write_slice(tmp_path / "2.dcm", rows=24, cols=20, instance=2, ipp=(4, 0, 0))
    series = dicom.read_series([a, b])
    assert series.mixed_shapes
    with pytest.raises(ValueError, match="differ in size"):
        series.stack()


def test_monochrome1_is_inverted(tmp_path):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 10
    path = write_slice(tmp_path / "m1.dcm", rows=8, cols=8, pixels=pixels, photometric="MONOCHROME1")
    _, out = dicom.read_pixels(path)
    assert out[0, 0] == pixels.max() and out[-1, -1] == 0


def test_normalise_uint8_uses_one_window_per_series():
    dark = np.linspace(0, 100, 400, dtype=np.float32).reshape(20, 20)
    bright = dark + 1000
    low, high = dicom.normalise_uint8([dark, bright], 0.0, 100.0)
    assert low.dtype == np.uint8 and low.max() < 30 and high.min() > 200
    assert low.min() == 0 and high.max() == 255
    flat = dicom.normalise_uint8([np.zeros((4, 4))])[0]
    assert flat.dtype == np.uint8 and flat.max() == 0


# ------------------------------------------------------------------ real-world files

REAL_FILES = {  # name -> (rows, cols, frames, has geometry)
    "MR_small.dcm": (64, 64, 1, True),
    "MR_small_RLE.dcm": (64, 64, 1, True),
    "MR_small_jp2klossless.dcm": (64, 64, 1, True),
    "MR_small_bigendian.dcm": (64, 64, 1, True),
    "emri_small.dcm": (64, 64, 10, False),
    "emri_small_RLE.dcm": (64, 64, 10, False),
    "emri_small_jpeg_2k_lossless.dcm": (64, 64, 10, False),
    "emri_small_jpeg_ls_lossless.dcm": (64, 64, 10, False),
}


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_world_files_headers_and_pixels(name):
    path = get_testdata_file(name)
    assert path is not None, f"{name} not shipped with pydicom / pydicom-data"
    rows, cols, frames, has_geometry = REAL_FILES[name]
    h = dicom.read_header(path)
    assert (h.rows, h.cols, h.n_frames) == (rows, cols, frames)
    assert (h.geometry is not None) == has_geometry
    series = dicom.read_series([path])
    assert len(series.slices) == frames and series.slices[0].shape == (rows, cols)
    reference = "MR_small.dcm" if name.startswith("MR_small") else "emri_small.dcm"
    expected = pydicom.dcmread(get_testdata_file(reference)).pixel_array.astype(np.float32)
    assert np.array_equal(series.stack(), expected.reshape(frames, rows, cols))


def test_real_world_monochrome1_file():
    path = get_testdata_file("RG3_UNCI.dcm")  # pydicom-data: a 1760x1760 MONOCHROME1 radiograph
    if path is None:
        pytest.skip("pydicom-data's MONOCHROME1 file is not installed")
    raw = pydicom.dcmread(path).pixel_array.astype(np.float32)
    series = dicom.read_series([path])
    assert series.headers[0].photometric == "MONOCHROME1" and not series.geometry_ok
    assert np.array_equal(series.slices[0], raw.max() + raw.min() - raw)


@pytest.mark.parametrize("name,kind", [("MR_truncated.dcm", dicom.TRUNCATED),
                                       ("no_meta.dcm", dicom.NOT_DICOM),
                                       ("rtplan_truncated.dcm", dicom.NO_PIXELS)])
def test_real_world_unreadable_files_raise_clear_errors(name, kind):
    path = get_testdata_file(name)
    with pytest.raises(dicom.DicomReadError) as err:
        dicom.read_header(path)
    assert err.value.kind == kind and name in err.value.reason


def test_windowing_a_large_series_from_a_sample_matches_the_full_window():
    """normalise_uint8 takes its percentiles from every k-th pixel of a large series: the
    result stays within one grey level of windowing with every pixel."""
    rng = np.random.default_rng(3)
    slices = [rng.gamma(2.0, 300.0, (512, 512)).astype(np.float32) for _ in range(4)]
    got = dicom.normalise_uint8(slices)
    flat = np.concatenate([s.ravel() for s in slices])
    lo, hi = np.percentile(flat, [1.0, 99.0])
    for s, g in zip(slices, got):
        want = np.clip((s - lo) * 255.0 / (hi - lo), 0, 255).round()
        assert g.dtype == np.uint8 and np.abs(g.astype(float) - want).max() <= 1.0
