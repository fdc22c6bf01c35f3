"""Shared helpers for the synth tests: a tiny configuration and dataset readers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pydicom

from lsdc.params import Synth

TINY = Synth(seed=11, n_train=5, n_test=3, first_study_id=1_000_000, image_scale=0.3,
             sag_slices=(13, 15), axial_per_level=(2, 3), reader_noise=0.35)


def tiny(**changes) -> Synth:
    return dataclasses.replace(TINY, **changes)


def dicom_point(path: Path, x: float, y: float) -> np.ndarray:
    """Patient position (mm) of pixel (column x, row y) of a file, from its DICOM geometry."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ipp = np.array(ds.ImagePositionPatient, dtype=float)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    return ipp + x * dc * iop[:3] + y * dr * iop[3:]


def headers(series_dir: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(series_dir.glob("*.dcm"))]


def plane_distance(ds: pydicom.Dataset, point: np.ndarray) -> float:
    ipp = np.array(ds.ImagePositionPatient, dtype=float)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    return float((point - ipp) @ np.cross(iop[:3], iop[3:]))


def plane_normal(ds: pydicom.Dataset) -> np.ndarray:
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    n = np.cross(iop[:3], iop[3:])
    return n / np.linalg.norm(n)
