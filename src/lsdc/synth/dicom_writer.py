"""Write one synthetic slice as an RSNA-like DICOM file: MR Image Storage, RLE Lossless,
16 bits allocated / 12 stored, unsigned, MONOCHROME2, with the geometry tags.

UIDs are the de-identified numeric ids (``study``, ``study.series``, ``study.series.instance``),
and nothing depends on the clock, so the same inputs give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless
from pydicom.valuerep import format_number_as_ds

BITS_STORED = 12


@dataclass(frozen=True)
class SliceMeta:
    study_id: int
    series_id: int
    series_number: int
    series_description: str
    instance_number: int
    ipp: tuple[float, float, float]  # patient mm
    iop: tuple[float, float, float, float, float, float]
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing)
    slice_thickness: float | None  # None: the tag is left out (as in some real files)
    spacing_between_slices: float | None


def _ds(values) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


def build_dataset(pixels: np.ndarray, meta: SliceMeta) -> Dataset:
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise ValueError(f"pixels must be a 2-D uint16 array, got {pixels.dtype} {pixels.shape}")
    if pixels.max(initial=0) >= 1 << BITS_STORED:
        raise ValueError(f"pixel values exceed {BITS_STORED} bits (max {int(pixels.max())})")
    study_uid = str(meta.study_id)
    series_uid = f"{study_uid}.{meta.series_id}"
    sop_uid = f"{series_uid}.{meta.instance_number}"

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = MRImageStorage
    file_meta.MediaStorageSOPInstanceUID = sop_uid
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = file_meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MR"
    ds.PatientID = study_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = f"{study_uid}.1"  # one patient frame per study
    ds.StudyID = study_uid[-16:]
    ds.SeriesNumber = meta.series_number
    ds.InstanceNumber = meta.instance_number
    ds.SeriesDescription = meta.series_description
    ds.BodyPartExamined = "LSPINE"
    ds.PatientPosition = "HFS"
    ds.ImagePositionPatient = _ds(meta.ipp)
    ds.ImageOrientationPatient = _ds(meta.iop)
    ds.PixelSpacing = _ds(meta.pixel_spacing)
    if meta.slice_thickness is not None:
        ds.SliceThickness = format_number_as_ds(float(meta.slice_thickness))
    if meta.spacing_between_slices is not None:
        ds.SpacingBetweenSlices = format_number_as_ds(float(meta.spacing_between_slices))
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=BITS_STORED,
                      generate_instance_uid=False)
    ds.compress(RLELossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    return ds


def write_slice(path: str | Path, pixels: np.ndarray, meta: SliceMeta) -> None:
    """Write one slice; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build_dataset(pixels, meta).save_as(path, enforce_file_format=True)
