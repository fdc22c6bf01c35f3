"""Test helpers: `write_slice`, the one DICOM writer of the tests, and tiny hand-made RSNA-layout roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless, generate_uid

from lsdc import schema

SAG_IOP = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # rows run anterior->posterior, columns head->feet
AX_IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def write_slice(path: Path, *, rows: int = 32, cols: int = 32, instance: int | None = 1,
                ipp: Sequence[float] | None = (0.0, 0.0, 0.0), iop: Sequence[float] | None = SAG_IOP,
                spacing: Sequence[float] | None = (0.5, 0.5), rle: bool = False,
                pixels: np.ndarray | None = None, description: str = "Sagittal T1",
                photometric: str = "MONOCHROME2", thickness: float | None = 4.0,
                frame: str | None = None) -> Path:
    """Write one single-frame MR slice (16 bits allocated, 12 stored) and return its path."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.SeriesDescription = description
    if instance is not None:
        ds.InstanceNumber = instance
    if ipp is not None:
        ds.ImagePositionPatient = [float(v) for v in ipp]
    if iop is not None:
        ds.ImageOrientationPatient = [float(v) for v in iop]
    if spacing is not None:
        ds.PixelSpacing = [float(v) for v in spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    if frame is not None:
        ds.FrameOfReferenceUID = frame
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixels is None:
        pixels = (np.arange(rows * cols).reshape(rows, cols) * 7 + (instance or 0)) % 4096
    ds.PixelData = np.asarray(pixels, dtype=np.uint16).tobytes()
    if rle:
        ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


PLANE_SHAPES = {"sag_t1": (32, 32), "sag_t2": (40, 32), "ax_t2": (24, 32)}  # rows, cols


def make_root(root: Path, train: Sequence[int] = (1001, 1002), test: Sequence[int] = (2001,),
              slices: int = 3, images: bool = True, rle_plane: str = "sag_t2") -> Path:
    """A clean RSNA-layout root: per study one series of each plane with ``slices`` slices,
    instance numbers in reverse spatial order; full labels except one missing cell on the
    first study; one in-image coordinate per label annotated on its plane's middle slice."""
    series_rows, label_rows, coord_rows = [], [], []
    for split, studies in (("train", train), ("test", test)):
        for study in studies:
            for k, (desc, plane) in enumerate(schema.PLANE_OF_DESCRIPTION.items()):
                series = study * 10 + k
                series_rows.append((split, study, series, desc))
                if images:
                    _write_series(root, split, study, series, plane, slices, rle=plane == rle_plane)
            if split == "train":
                values = [schema.SEVERITIES[i % 3] for i in range(len(schema.LABEL_COLUMNS))]
                if study == train[0]:
                    values[15] = ""  # one missing label
                label_rows.append([study, *values])
                for lab in schema.LABELS:
                    plane = schema.PLANE_OF_CONDITION[lab.condition]
                    series = study * 10 + schema.PLANES.index(plane)
                    rows, cols = PLANE_SHAPES[plane]
                    coord_rows.append((study, series, slices // 2 + 1, lab.condition, lab.level,
                                       cols / 2 + schema.LEVELS.index(lab.level), rows / 2))
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(label_rows, columns=list(schema.TRAIN_COLUMNS)).to_csv(root / schema.TRAIN_CSV, index=False)
    pd.DataFrame(coord_rows, columns=list(schema.COORDS_COLUMNS)).to_csv(root / schema.COORDS_CSV, index=False)
    for split, name in (("train", schema.TRAIN_SERIES_CSV), ("test", schema.TEST_SERIES_CSV)):
        rows = [r[1:] for r in series_rows if r[0] == split]
        pd.DataFrame(rows, columns=list(schema.SERIES_COLUMNS)).to_csv(root / name, index=False)
    return root


def _write_series(root: Path, split: str, study: int, series: int, plane: str, slices: int,
                  rle: bool) -> None:
    rows, cols = PLANE_SHAPES[plane]
    iop = AX_IOP if plane == "ax_t2" else SAG_IOP
    images = schema.TRAIN_IMAGES if split == "train" else schema.TEST_IMAGES
    for s in range(slices):
        instance = slices - s  # reversed: instance numbers do not follow space
        offset = 4.0 * s
        ipp = (-20.0, -10.0, offset - 30.0) if plane == "ax_t2" else (offset - 10.0, -10.0, 20.0)
        write_slice(root / images / str(study) / str(series) / f"{instance}.dcm", rows=rows, cols=cols,
                    instance=instance, ipp=ipp, iop=iop, rle=rle,
                    description=schema.DESCRIPTION_OF_PLANE[plane])


def series_dir(root: Path, study: int, plane: str, split: str = "train") -> Path:
    images = schema.TRAIN_IMAGES if split == "train" else schema.TEST_IMAGES
    return root / images / str(study) / str(study * 10 + schema.PLANES.index(plane))
