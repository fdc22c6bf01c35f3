"""lsdc.dicom's series-reading path gives exactly what a plain pydicom loop gives: the
same pixels (dcmread().pixel_array, rescaled, MONOCHROME1 inverted), the same positions
and the same order, whether a file goes through the direct RLE decoder or pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import RLELossless

from lsdc import dicom
from tests.rsna_layout import AX_IOP, SAG_IOP, write_slice


def reference_pixels(path: Path) -> np.ndarray:
    """What read_pixels promises, computed with pydicom alone."""
    ds = pydicom.dcmread(path)
    out = ds.pixel_array.astype(np.float32)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        out = out * float(ds.get("RescaleSlope", 1.0)) + float(ds.get("RescaleIntercept", 0.0))
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = out.max() + out.min() - out
    return out


def reference_positions(paths: list[Path]) -> np.ndarray:
    """IPP . (mean of the slice normals, each sign-aligned to the first), per slice."""
    ds = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    normals = []
    for d in ds:
        iop = np.asarray([float(v) for v in d.ImageOrientationPatient])
        n = np.cross(iop[:3], iop[3:])
        normals.append(n / np.linalg.norm(n))
    normals = np.stack(normals)
    normals *= np.where(normals @ normals[0] < 0, -1.0, 1.0)[:, None]
    mean = normals.mean(axis=0)
    mean /= np.linalg.norm(mean)
    return np.array([np.dot([float(v) for v in d.ImagePositionPatient], mean) for d in ds])


def variant(path: Path, pixels: np.ndarray, **tags) -> Path:
    """An RLE file with the given stored pixels and pixel-module tags."""
    ds = pydicom.dcmread(write_slice(path, rows=pixels.shape[0], cols=pixels.shape[1]))
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    ds.compress(RLELossless)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def no_pydicom_decode(monkeypatch):
    """Fail if a file falls back to pydicom's pixel_array (the direct RLE path must serve it)."""
    def refuse(*_):
        raise AssertionError("pydicom decode path used")
    monkeypatch.setattr(dicom, "_pixel_array", refuse)


def test_direct_rle_decode_equals_pydicom(tmp_path, no_pydicom_decode):
    rng = np.random.default_rng(0)
    cases = {
        "u12": (rng.integers(0, 4096, (20, 24)).astype(np.uint16), {}),
        "u12_high_bits_set": (rng.integers(0, 65536, (20, 24)).astype(np.uint16), {}),
        "s16": (rng.integers(-3000, 3000, (16, 12)).astype(np.int16),
                {"PixelRepresentation": 1, "BitsStored": 16, "HighBit": 15}),
        "s12_sign_extended": (rng.integers(-2048, 2048, (16, 12)).astype(np.int16) & 0x0FFF,
                              {"PixelRepresentation": 1}),
        "u8": (rng.integers(0, 256, (10, 14)).astype(np.uint8), {"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7}),
        "rescaled": (rng.integers(0, 4096, (20, 24)).astype(np.uint16),
                     {"RescaleSlope": "0.5", "RescaleIntercept": "-1024"}),
        "monochrome1": (rng.integers(0, 4096, (20, 24)).astype(np.uint16), {"PhotometricInterpretation": "MONOCHROME1"}),
    }
    for name, (pixels, tags) in cases.items():
        path = variant(tmp_path / f"{name}.dcm", pixels, **tags)
        header, out = dicom.read_pixels(path)
        ref = reference_pixels(path)
        assert out.dtype == np.float32 and out.shape == ref.shape, name
        assert np.array_equal(out, ref), name
        assert header.rows == pixels.shape[0] and header.cols == pixels.shape[1]
    signed = reference_pixels(tmp_path / "s12_sign_extended.dcm")
    assert signed.min() < 0  # the 12-bit two's complement values came back negative


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "emri_small_RLE.dcm", "SC_rgb_rle.dcm",
                                  "rtdose_rle_1frame.dcm", "OBXXXX1A_rle.dcm"])
def test_real_world_rle_files_equal_pydicom(name):
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom-data's {name} is not installed")
    _, out = dicom.read_pixels(path)
    assert np.array_equal(out, reference_pixels(path))


def test_read_series_equals_a_plain_pydicom_loop(tmp_path, no_pydicom_decode):
    """Two axial blocks at different tilts, files shuffled, instance numbers not in spatial
    order: read_series gives every slice once, in position order, with the plain pixels."""
    tilt = np.deg2rad(12)
    tilted = (1.0, 0.0, 0.0, 0.0, float(np.cos(tilt)), float(np.sin(tilt)))
    paths = []
    for k in range(10):
        iop, z = (AX_IOP, 10.0 * k) if k < 5 else (tilted, 10.0 * k + 3.3)
        paths.append(write_slice(tmp_path / f"{k}.dcm", rows=24, cols=20, instance=(7 * k) % 10 + 1,
                                 ipp=(-5.0, -7.5, z), iop=iop, rle=True))
    shuffled = [paths[i] for i in np.random.default_rng(1).permutation(len(paths))]
    series = dicom.read_series(shuffled)
    positions = reference_positions(shuffled)
    order = np.argsort(positions, kind="stable")
    assert [h.path for h in series.headers] == [str(shuffled[i]) for i in order]
    assert np.array_equal(series.positions, positions[order])
    assert series.geometry_ok
    for header, pixels in zip(series.headers, series.slices):
        assert np.array_equal(pixels, reference_pixels(Path(header.path)))


def test_slice_normal_is_computed_once_per_orientation_and_stays_a_copy():
    a = dicom.slice_normal(SAG_IOP)
    a *= -1  # the caller owns its copy
    assert np.allclose(dicom.slice_normal(list(SAG_IOP)), [-1, 0, 0])
    before = dicom._unit_normal.cache_info().hits
    dicom.slice_normal(np.asarray(SAG_IOP))
    assert dicom._unit_normal.cache_info().hits == before + 1
    with pytest.raises(ValueError, match="degenerate"):
        dicom.slice_normal((1, 0, 0, 1, 0, 0))
