"""Write one synthetic slice as an RSNA-like DICOM file: MR Image Storage, RLE Lossless,
16 bits allocated / 12 stored, unsigned, MONOCHROME2, with the geometry tags.

UIDs are the de-identified numeric ids (``study``, ``study.series``, ``study.series.instance``),
and nothing depends on the clock, so the same inputs give byte-identical files.

The Part 10 bytes (preamble, file meta group, explicit VR little endian data set, encapsulated
pixel data with a one-entry offset table) are encoded here directly: building and writing a
pydicom Dataset per slice took about 40 % of synth's time. The frame is RLE-encoded by
pylibjpeg-rle, the codec pydicom itself uses; tests/test_synth_dicom_writer.py checks that the
bytes equal pydicom's for the same data set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import MRImageStorage, RLELossless
from pydicom.valuerep import format_number_as_ds
from rle.utils import encode_pixel_data

BITS_STORED = 12
IMPLEMENTATION_CLASS_UID = "2.25.173319832755452326091270946457715010665"  # UUID-derived (PS3.5 B.2)
IMPLEMENTATION_VERSION_NAME = "LSDC_SYNTH_1"
_LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN"}  # 2 reserved bytes + 4-byte length (PS3.5 7.1.2)
_ITEM, _SEQ_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)


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


def _element(tag: tuple[int, int], vr: str, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", *tag, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", *tag, vr.encode(), len(value)) + value


def _text(value: str, vr: str) -> bytes:
    """A string value padded to even length: UIDs with NUL, other text VRs with a space."""
    raw = value.encode("ascii")
    return raw + (b"\0" if vr == "UI" else b" ") if len(raw) % 2 else raw


def _ds(values) -> str:
    return "\\".join(format_number_as_ds(float(v)) for v in values)


def _encapsulated(frame: bytes) -> bytes:
    """Pixel Data of one compressed frame: undefined length, offset table [0], one fragment."""
    if len(frame) % 2:
        frame += b"\0"
    return (struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
            + struct.pack("<HHII", *_ITEM, 4, 0) + struct.pack("<HHI", *_ITEM, len(frame)) + frame
            + struct.pack("<HHI", *_SEQ_END, 0))


def encode_slice(pixels: np.ndarray, meta: SliceMeta) -> bytes:
    """The Part 10 file of one slice."""
    if pixels.dtype != np.uint16 or pixels.ndim != 2:
        raise ValueError(f"pixels must be a 2-D uint16 array, got {pixels.dtype} {pixels.shape}")
    if pixels.max(initial=0) >= 1 << BITS_STORED:
        raise ValueError(f"pixel values exceed {BITS_STORED} bits (max {int(pixels.max())})")
    study_uid = str(meta.study_id)
    series_uid = f"{study_uid}.{meta.series_id}"
    sop_uid = f"{series_uid}.{meta.instance_number}"
    rows, cols = pixels.shape

    file_meta = b"".join([
        _element((0x0002, 0x0001), "OB", b"\x00\x01"),
        _element((0x0002, 0x0002), "UI", _text(MRImageStorage, "UI")),
        _element((0x0002, 0x0003), "UI", _text(sop_uid, "UI")),
        _element((0x0002, 0x0010), "UI", _text(RLELossless, "UI")),
        _element((0x0002, 0x0012), "UI", _text(IMPLEMENTATION_CLASS_UID, "UI")),
        _element((0x0002, 0x0013), "SH", _text(IMPLEMENTATION_VERSION_NAME, "SH")),
    ])
    texts = [
        ((0x0008, 0x0016), "UI", MRImageStorage),
        ((0x0008, 0x0018), "UI", sop_uid),
        ((0x0008, 0x0060), "CS", "MR"),
        ((0x0008, 0x103E), "LO", meta.series_description),
        ((0x0010, 0x0020), "LO", study_uid),
        ((0x0018, 0x0015), "CS", "LSPINE"),
        ((0x0018, 0x5100), "CS", "HFS"),
        ((0x0020, 0x000D), "UI", study_uid),
        ((0x0020, 0x000E), "UI", series_uid),
        ((0x0020, 0x0010), "SH", study_uid[-16:]),
        ((0x0020, 0x0011), "IS", str(int(meta.series_number))),
        ((0x0020, 0x0013), "IS", str(int(meta.instance_number))),
        ((0x0020, 0x0032), "DS", _ds(meta.ipp)),
        ((0x0020, 0x0037), "DS", _ds(meta.iop)),
        ((0x0020, 0x0052), "UI", f"{study_uid}.1"),  # one patient frame per study
        ((0x0028, 0x0004), "CS", "MONOCHROME2"),
        ((0x0028, 0x0030), "DS", _ds(meta.pixel_spacing)),
    ]
    if meta.slice_thickness is not None:
        texts.append(((0x0018, 0x0050), "DS", _ds([meta.slice_thickness])))
    if meta.spacing_between_slices is not None:
        texts.append(((0x0018, 0x0088), "DS", _ds([meta.spacing_between_slices])))
    shorts = [((0x0028, 0x0002), 1), ((0x0028, 0x0010), rows), ((0x0028, 0x0011), cols),
              ((0x0028, 0x0100), 16), ((0x0028, 0x0101), BITS_STORED), ((0x0028, 0x0102), BITS_STORED - 1),
              ((0x0028, 0x0103), 0)]
    elements = [(tag, _element(tag, vr, _text(value, vr))) for tag, vr, value in texts]
    elements += [(tag, _element(tag, "US", struct.pack("<H", value))) for tag, value in shorts]
    frame = encode_pixel_data(np.ascontiguousarray(pixels, dtype="<u2").tobytes(), rows=rows, columns=cols,
                              samples_per_pixel=1, bits_allocated=16, byteorder="<")
    return b"".join([
        bytes(128), b"DICM", _element((0x0002, 0x0000), "UL", struct.pack("<I", len(file_meta))), file_meta,
        *(raw for _, raw in sorted(elements)), _encapsulated(frame),
    ])


def write_slice(path: str | Path, pixels: np.ndarray, meta: SliceMeta) -> None:
    """Write one slice; creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_slice(pixels, meta))
