"""The synthetic slice writer encodes Part 10 bytes itself: they must equal what pydicom writes
for the same data set, and read back to the same tags and pixels."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless
from pydicom.valuerep import format_number_as_ds

from lsdc.synth import dicom_writer
from lsdc.synth.dicom_writer import SliceMeta, encode_slice, write_slice


def _meta(**kw) -> SliceMeta:
    base = dict(study_id=879997160, series_id=544957255, series_number=3, series_description="Axial T2",
                instance_number=14, ipp=(-101.47510970091, -130.3407, -278.1398410099),
                iop=(0.998, 0.0564, -0.0275, -0.0564, 0.9984, 0.0), pixel_spacing=(0.98632565152235, 0.7),
                slice_thickness=4.47, spacing_between_slices=5.11338369428585)
    return SliceMeta(**{**base, **kw})


def _pydicom_bytes(pixels: np.ndarray, meta: SliceMeta, path) -> bytes:
    """The same slice built and written by pydicom (the writer before it encoded bytes itself)."""
    ds_ = [format_number_as_ds(float(v)) for v in (*meta.ipp, *meta.iop, *meta.pixel_spacing)]
    study = str(meta.study_id)
    sop = f"{study}.{meta.series_id}.{meta.instance_number}"
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = MRImageStorage
    fm.MediaStorageSOPInstanceUID = sop
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    fm.ImplementationClassUID = dicom_writer.IMPLEMENTATION_CLASS_UID
    fm.ImplementationVersionName = dicom_writer.IMPLEMENTATION_VERSION_NAME
    ds = Dataset()
    ds.file_meta = fm
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = MRImageStorage, sop, "MR"
    ds.PatientID = ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = f"{study}.{meta.series_id}"
    ds.FrameOfReferenceUID = f"{study}.1"
    ds.StudyID = study[-16:]
    ds.SeriesNumber, ds.InstanceNumber = meta.series_number, meta.instance_number
    ds.SeriesDescription, ds.BodyPartExamined, ds.PatientPosition = meta.series_description, "LSPINE", "HFS"
    ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing = ds_[:3], ds_[3:9], ds_[9:]
    if meta.slice_thickness is not None:
        ds.SliceThickness = format_number_as_ds(float(meta.slice_thickness))
    if meta.spacing_between_slices is not None:
        ds.SpacingBetweenSlices = format_number_as_ds(float(meta.spacing_between_slices))
    ds.set_pixel_data(pixels, photometric_interpretation="MONOCHROME2", bits_stored=12, generate_instance_uid=False)
    ds.compress(RLELossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


@pytest.mark.parametrize("shape, meta", [
    ((32, 48), _meta()),
    ((31, 27), _meta(series_description="Sagittal T2/STIR", instance_number=7, series_number=11)),
    ((20, 20), _meta(slice_thickness=None, spacing_between_slices=None, study_id=12345678)),
    ((16, 24), _meta(slice_thickness=3.0, spacing_between_slices=None, series_description="Sagittal T1")),
])
def test_encoded_bytes_equal_pydicoms_and_read_back(tmp_path, shape, meta):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 4096, size=shape, dtype=np.uint16)
    pixels[: shape[0] // 2] = 5  # runs for the RLE packer as well as literals
    ours = encode_slice(pixels, meta)
    assert ours == _pydicom_bytes(pixels, meta, tmp_path / "ref.dcm")

    path = tmp_path / "a" / "b.dcm"
    write_slice(path, pixels, meta)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(ds.pixel_array, pixels)
    assert int(ds.InstanceNumber) == meta.instance_number
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx(meta.ipp, abs=1e-9)
    assert ("SliceThickness" in ds) == (meta.slice_thickness is not None)
    assert ("SpacingBetweenSlices" in ds) == (meta.spacing_between_slices is not None)


@pytest.mark.parametrize("pixels, message", [
    (np.zeros((4, 4), np.int16), "2-D uint16"),
    (np.zeros((2, 4, 4), np.uint16), "2-D uint16"),
    (np.full((4, 4), 4096, np.uint16), "exceed 12 bits"),
])
def test_rejects_pixels_the_tags_cannot_describe(pixels, message):
    with pytest.raises(ValueError, match=message):
        encode_slice(pixels, _meta())
