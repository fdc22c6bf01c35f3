"""DICOM reading for the RSNA layout: headers, slice geometry, spatial sorting, pixels.

Conventions (docs/data_formats.md): patient coordinates in mm (LPS). A pixel at
column ``x``, row ``y`` of a slice lies at ``IPP + x * col_spacing * R + y * row_spacing * C``
where ``IOP = (R, C)`` and ``PixelSpacing = [row_spacing, col_spacing]``. The slice
normal is ``N = R x C``; a slice's position along its series is ``IPP . N``.

Typical use::

    headers = [read_header(p) for p in paths]          # header only, no pixel decode
    series = read_series(paths)                          # decode each file once, sorted
    volume = normalise_uint8(series.slices)              # per-series percentile window
    k, x, y, dist = nearest_slice([h.geometry for h in series.headers], point_mm)
"""

from __future__ import annotations

import functools
import io
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pydicom
import pydicom.errors
from pydicom.encaps import generate_frames
from pydicom.uid import UID, JPEGLSLossless, JPEGLSNearLossless, RLELossless

try:  # pylibjpeg-rle: decode RLE frames without pydicom's per-call pixel description
    from rle.rle import decode_frame as _rle_decode_frame
except ImportError:  # pragma: no cover - the pydicom path still decodes
    _rle_decode_frame = None

log = logging.getLogger(__name__)

# Problem kinds raised by read_header (also quarantine kinds in ingest).
EMPTY_FILE = "empty_file"
NOT_DICOM = "not_dicom"
TRUNCATED = "truncated_file"
NO_PIXELS = "no_pixel_data"
UNDECODABLE = "undecodable_pixels"  # header fine, pixel data fails to decode (read_pixels only)

_ENCAPSULATED_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # sequence delimiter (LE)
_PIXEL_ELEMENT_HEADER = 12  # tag + VR + reserved + 4-byte length (explicit VR OB/OW; implicit: 8)
_POSITION_TOLERANCE_MM = 1e-3


class DicomReadError(Exception):
    """A file that cannot be used as a DICOM slice; ``kind`` is a short slug."""

    def __init__(self, path: str | Path, kind: str, reason: str):
        self.path, self.kind, self.reason = str(path), kind, reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True, eq=False)
class SliceGeometry:
    """Where one slice's pixel grid lies in patient space (mm): pixel (column x, row y) is at
    ipp + x * col_spacing * R + y * row_spacing * C. The one slice geometry of lsdc: readers
    build it from DICOM tags, the synthetic data plans and renders its slices with it."""

    ipp: np.ndarray  # (3,) ImagePositionPatient: centre of the first pixel
    row_dir: np.ndarray  # (3,) R: direction of increasing column index
    col_dir: np.ndarray  # (3,) C: direction of increasing row index
    row_spacing: float  # mm between rows (PixelSpacing[0])
    col_spacing: float  # mm between columns (PixelSpacing[1])
    rows: int
    cols: int

    @classmethod
    def from_tags(cls, ipp: Sequence[float], iop: Sequence[float],
                  pixel_spacing: Sequence[float], rows: int, cols: int) -> SliceGeometry:
        """Build from the raw DICOM values (IPP 3 floats, IOP 6 floats, PixelSpacing 2)."""
        iop = np.asarray(iop, dtype=float)
        if iop.shape != (6,) or len(ipp) != 3 or len(pixel_spacing) != 2:
            raise ValueError(f"bad geometry tags: IPP={ipp!r} IOP={iop!r} spacing={pixel_spacing!r}")
        return cls(np.asarray(ipp, dtype=float), iop[:3], iop[3:],
                   float(pixel_spacing[0]), float(pixel_spacing[1]), int(rows), int(cols))

    @classmethod
    def from_instance_row(cls, row) -> SliceGeometry | None:
        """From one row (mapping or namedtuple) of the ingest instances table; None when
        its IPP, IOP or pixel spacing is missing."""
        get = row.get if hasattr(row, "get") else lambda k: getattr(row, k)
        values = [get(k) for k in ("ipp_x", "ipp_y", "ipp_z", "iop_rx", "iop_ry", "iop_rz",
                                   "iop_cx", "iop_cy", "iop_cz", "pixel_spacing_row", "pixel_spacing_col")]
        if any(v is None or not np.isfinite(float(v)) for v in values):
            return None
        return cls.from_tags(values[:3], values[3:9], values[9:], int(get("rows")), int(get("cols")))

    @cached_property
    def normal(self) -> np.ndarray:
        """Unit slice normal N = R x C (computed once per slice; do not modify in place)."""
        return slice_normal(np.concatenate([self.row_dir, self.col_dir]))

    @cached_property
    def inverse_axes(self) -> np.ndarray:
        """Inverse of _axes: maps a patient offset to (x px, y px, d mm); computed once per slice."""
        return np.linalg.inv(self._axes())

    @property
    def position(self) -> float:
        """Position along the slice's own normal, IPP . N (mm)."""
        return float(self.ipp @ self.normal)

    def _axes(self) -> np.ndarray:
        """3x3 matrix whose columns map (x px, y px, d mm) to a patient offset."""
        return np.column_stack([self.row_dir * self.col_spacing,
                                self.col_dir * self.row_spacing, self.normal])

    def to_patient(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """Pixel (column x, row y), scalars or arrays -> patient mm, shape (..., 3)."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return (self.ipp + x[..., None] * self.col_spacing * self.row_dir
                + y[..., None] * self.row_spacing * self.col_dir)

    def to_pixel(self, points: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient mm (..., 3) -> (x column, y row, signed distance from the plane along N in mm)."""
        p = np.asarray(points, dtype=float)
        offsets = (p - self.ipp).reshape(-1, 3).T
        xyd = self.inverse_axes @ offsets
        shape = p.shape[:-1]
        return xyd[0].reshape(shape), xyd[1].reshape(shape), xyd[2].reshape(shape)

    def pixel_grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient x, y, z of every pixel centre as float32 (rows, cols) arrays (for rendering)."""
        c = (np.arange(self.cols, dtype=np.float32) * self.col_spacing)[None, :]
        r = (np.arange(self.rows, dtype=np.float32) * self.row_spacing)[:, None]
        return tuple(
            np.float32(self.ipp[i]) + c * np.float32(self.row_dir[i]) + r * np.float32(self.col_dir[i])
            for i in range(3)
        )

    def contains(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """True where pixel (x, y) lies inside the image: 0 <= x < cols and 0 <= y < rows."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return (x >= 0) & (x < self.cols) & (y >= 0) & (y < self.rows)


@dataclass(frozen=True)
class SliceHeader:
    """The header fields of one DICOM file that the pipeline uses (no pixels)."""

    path: str
    instance_number: int | None
    rows: int
    cols: int
    pixel_spacing: tuple[float, float] | None  # (row_spacing, col_spacing) mm
    ipp: tuple[float, float, float] | None
    iop: tuple[float, float, float, float, float, float] | None
    transfer_syntax: str
    bits_stored: int | None
    photometric: str | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    n_frames: int = 1
    series_description: str | None = None
    frame_of_reference: str | None = None  # FrameOfReferenceUID: series sharing it share patient coordinates

    @cached_property
    def geometry(self) -> SliceGeometry | None:
        """The slice's SliceGeometry, or None when IPP, IOP or PixelSpacing is missing or bad."""
        if self.ipp is None or self.iop is None or self.pixel_spacing is None:
            return None
        try:
            geom = SliceGeometry.from_tags(self.ipp, self.iop, self.pixel_spacing, self.rows, self.cols)
            _ = geom.normal  # raises on a degenerate orientation
        except ValueError:
            return None
        return geom


# Tags read by header_from_dataset. Values are parsed straight from the raw bytes that
# pydicom leaves unconverted (about twice as fast as pydicom's value conversion).
_TAG = {
    "InstanceNumber": 0x00200013, "Rows": 0x00280010, "Columns": 0x00280011,
    "PixelSpacing": 0x00280030, "ImagePositionPatient": 0x00200032,
    "ImageOrientationPatient": 0x00200037, "BitsAllocated": 0x00280100, "BitsStored": 0x00280101,
    "SamplesPerPixel": 0x00280002, "PhotometricInterpretation": 0x00280004,
    "SliceThickness": 0x00180050, "SpacingBetweenSlices": 0x00180088,
    "NumberOfFrames": 0x00280008, "SeriesDescription": 0x0008103E,
    "FrameOfReferenceUID": 0x00200052,
    "PixelRepresentation": 0x00280103, "RescaleSlope": 0x00281053, "RescaleIntercept": 0x00281052,
}
_US_KEYWORDS = frozenset({"Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel",
                          "PixelRepresentation"})


def _value(ds: pydicom.Dataset, keyword: str) -> object:
    """The element's value: raw bytes if pydicom has not converted it yet, else the value."""
    elem = ds.get_item(_TAG[keyword])
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes) and keyword in _US_KEYWORDS:
        if len(value) < 2:
            return None
        return int.from_bytes(value[:2], "little" if elem.is_little_endian else "big")
    return value


@functools.lru_cache(maxsize=8192)
def _split_raw(raw: bytes) -> tuple[str, ...]:
    """Raw text bytes -> backslash-separated parts. Cached: the tags a series shares
    (orientation, spacing, sizes, description) are parsed once per series, not per slice."""
    text = raw.decode("latin-1").strip(" \x00")
    return tuple(part.strip(" \x00") for part in text.split("\\")) if text else ()


def _parts(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, bytes):
        return _split_raw(value)
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    if isinstance(value, Sequence):
        return tuple(str(v).strip() for v in value)
    return (str(value),)


def _strings(ds: pydicom.Dataset, keyword: str) -> tuple[str, ...]:
    """A text element (DS, IS, CS, LO) as its backslash-separated parts; () when absent/empty."""
    return _parts(_value(ds, keyword))


@functools.lru_cache(maxsize=8192)
def _floats_of(parts: tuple[str, ...], n: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return values


def _floats(ds: pydicom.Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    return _floats_of(_strings(ds, keyword), n)


def _int(ds: pydicom.Dataset, keyword: str) -> int | None:
    value = _value(ds, keyword)
    if isinstance(value, int):
        return value
    parts = _parts(value)
    try:
        return int(float(parts[0])) if len(parts) == 1 else None
    except ValueError:
        return None


def _text(ds: pydicom.Dataset, keyword: str) -> str | None:
    parts = _strings(ds, keyword)
    return "\\".join(parts) if parts and any(parts) else None


def _transfer_syntax(ds: pydicom.Dataset) -> UID | None:
    """The file meta TransferSyntaxUID (read from its raw bytes), or None."""
    meta = getattr(ds, "file_meta", None)
    elem = meta.get_item(0x00020010) if meta is not None else None
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace").strip(" \x00")
    return UID(str(value)) if value else None


def header_from_dataset(ds: pydicom.Dataset, path: str | Path) -> SliceHeader:
    """Extract a SliceHeader from an already read dataset."""
    spacing = _floats(ds, "PixelSpacing", 2)
    thickness = _floats(ds, "SliceThickness", 1)
    between = _floats(ds, "SpacingBetweenSlices", 1)
    return SliceHeader(
        path=str(path),
        instance_number=_int(ds, "InstanceNumber"),
        rows=_int(ds, "Rows") or 0,
        cols=_int(ds, "Columns") or 0,
        pixel_spacing=spacing if spacing and min(spacing) > 0 else None,
        ipp=_floats(ds, "ImagePositionPatient", 3),
        iop=_floats(ds, "ImageOrientationPatient", 6),
        transfer_syntax=str(_transfer_syntax(ds) or ""),
        bits_stored=_int(ds, "BitsStored"),
        photometric=_text(ds, "PhotometricInterpretation"),
        slice_thickness=thickness[0] if thickness else None,
        spacing_between_slices=between[0] if between else None,
        n_frames=_int(ds, "NumberOfFrames") or 1,
        series_description=_text(ds, "SeriesDescription"),
        frame_of_reference=_text(ds, "FrameOfReferenceUID"),
    )


def _expected_native_bytes(header: SliceHeader, ds: pydicom.Dataset) -> int:
    bits = _int(ds, "BitsAllocated") or 16
    samples = _int(ds, "SamplesPerPixel") or 1
    return header.rows * header.cols * samples * header.n_frames * ((bits + 7) // 8)


def _file_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DicomReadError(path, NOT_DICOM, f"{path}: cannot open ({e.strerror})") from None
    if size == 0:
        raise DicomReadError(path, EMPTY_FILE, f"{path}: file is empty (0 bytes)")
    return size


def _sop_class(ds: pydicom.Dataset) -> UID | None:
    """SOPClassUID, else the file meta MediaStorageSOPClassUID (raw bytes tolerated)."""
    for owner, tag in ((ds, 0x00080016), (getattr(ds, "file_meta", None), 0x00020002)):
        elem = owner.get_item(tag) if owner is not None else None
        value = elem.value if elem is not None else None
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if value and str(value).strip(" \x00"):
            return UID(str(value).strip(" \x00"))
    return None


def _no_dimensions(ds: pydicom.Dataset, path: Path, at_end: bool) -> DicomReadError:
    """Rows/Columns missing: a file cut short inside its header (it ends there and is an
    image object, or holds nothing beyond the file meta), else a non-image object."""
    sop = _sop_class(ds)
    is_image = sop is not None and "Image Storage" in sop.name
    if at_end and (is_image or len(ds) == 0):
        what = f"a {sop.name}" if is_image else "a DICOM file"
        return DicomReadError(path, TRUNCATED, f"{path}: truncated: {what} that ends inside its "
                              "header, before Rows/Columns and the pixel data (file cut short)")
    return DicomReadError(path, NO_PIXELS, f"{path}: no image in this DICOM file (no Rows/Columns: "
                          "not an image object)")


def _checked_header(fp, path: Path, size: int) -> SliceHeader:
    """Parse the header from ``fp`` (at offset 0) and check the pixel data is all there."""
    ds = pydicom.dcmread(fp, stop_before_pixels=True)
    pixel_offset = fp.tell()
    if _int(ds, "Rows") is None or _int(ds, "Columns") is None:
        raise _no_dimensions(ds, path, at_end=pixel_offset >= size)
    header = header_from_dataset(ds, path)
    remaining = size - pixel_offset
    tsyntax = _transfer_syntax(ds)
    element_header = 8 if tsyntax is not None and tsyntax.is_implicit_VR else _PIXEL_ELEMENT_HEADER
    if remaining <= element_header:
        raise DicomReadError(path, NO_PIXELS if remaining == 0 else TRUNCATED,
                             f"{path}: no pixel data after the header ({remaining} bytes "
                             "left: cut short, or not an image object)")
    if tsyntax is not None and tsyntax.is_encapsulated:
        _check_encapsulated_end(fp, path, size, pixel_offset)
    else:
        expected = _expected_native_bytes(header, ds)
        if remaining - element_header < expected:
            raise DicomReadError(path, TRUNCATED, f"{path}: truncated: pixel data holds "
                                 f"{remaining - element_header} of {expected} bytes")
    return header


def _as_read_error(path: Path, e: Exception) -> DicomReadError:
    """Any exception pydicom raised while parsing ``path`` as a DicomReadError naming it."""
    if isinstance(e, DicomReadError):
        return e
    if isinstance(e, pydicom.errors.InvalidDicomError):
        return DicomReadError(path, NOT_DICOM, f"{path}: not a DICOM file ({e})")
    # pydicom raises many types on damaged headers (struct.error, EOFError, ValueError,
    # KeyError, ...): the file is cut short or corrupt; name the file and the cause
    return DicomReadError(path, TRUNCATED, f"{path}: unreadable or truncated header "
                          f"({type(e).__name__}: {e})")


def read_header(path: str | Path) -> SliceHeader:
    """Read one file's header without decoding pixels.

    Raises DicomReadError (kind EMPTY_FILE, NOT_DICOM, TRUNCATED or NO_PIXELS) with a
    reason naming the file when it cannot serve as an image slice. Truncation is
    detected cheaply from the file size (native pixel data shorter than
    Rows x Columns x frames, encapsulated data missing its closing delimiter, or an
    image object that ends before its Rows/Columns).
    """
    path = Path(path)
    size = _file_size(path)
    try:
        with open(path, "rb") as fp:
            return _checked_header(fp, path, size)
    except Exception as e:
        raise _as_read_error(path, e) from None


def _check_encapsulated_end(fp, path: Path, size: int, pixel_offset: int) -> None:
    fp.seek(max(pixel_offset, size - len(_ENCAPSULATED_END)))
    if fp.read() == _ENCAPSULATED_END:
        return
    fp.seek(pixel_offset)  # trailing elements after the pixel data are allowed: search
    if _ENCAPSULATED_END not in fp.read():
        raise DicomReadError(path, TRUNCATED, f"{path}: truncated: compressed pixel data has no end "
                             "delimiter (file cut short)")


# ----------------------------------------------------------------------------- geometry

@functools.lru_cache(maxsize=4096)
def _unit_normal(iop: tuple[float, ...]) -> np.ndarray:
    """slice_normal's work, once per distinct orientation (a series has one or a few)."""
    a = np.asarray(iop, dtype=float)
    if a.shape != (6,):
        raise ValueError(f"ImageOrientationPatient needs 6 values, got {list(iop)}")
    n = np.cross(a[:3], a[3:])
    norm = np.linalg.norm(n)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError(f"degenerate ImageOrientationPatient {a.tolist()}")
    out = n / norm
    out.flags.writeable = False
    return out


def slice_normal(iop: Sequence[float]) -> np.ndarray:
    """Unit normal R x C of an ImageOrientationPatient (6 floats); ValueError if degenerate.

    Computed once per distinct orientation (cached): every slice of a series shares it."""
    return _unit_normal(tuple(float(v) for v in np.ravel(iop))).copy()


def normal_position(ipp: Sequence[float], iop: Sequence[float]) -> float:
    """Position of a slice along its own normal: IPP . (R x C), in mm."""
    return float(np.asarray(ipp, dtype=float) @ slice_normal(iop))


def series_normal(iops: Sequence[Sequence[float]]) -> np.ndarray:
    """One reference normal for a series: the mean of its slice normals, each sign-aligned
    to the first. Equals each slice's normal when the series has a single orientation;
    for angled axial blocks it keeps positions comparable between blocks."""
    normals = np.stack([slice_normal(iop) for iop in iops])
    signs = np.where(normals @ normals[0] < 0, -1.0, 1.0)
    mean = (normals * signs[:, None]).mean(axis=0)
    return mean / np.linalg.norm(mean)


def _interpolate(x_known: np.ndarray, y_known: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Piecewise-linear y(x) through the known points (mean y per repeated x), extended
    past either end along its end segment."""
    ux, inverse = np.unique(x_known, return_inverse=True)
    uy = np.bincount(inverse, weights=y_known) / np.bincount(inverse)
    out = np.interp(x_new, ux, uy)
    if len(ux) >= 2:
        lo = (uy[1] - uy[0]) / (ux[1] - ux[0])
        hi = (uy[-1] - uy[-2]) / (ux[-1] - ux[-2])
        out = np.where(x_new < ux[0], uy[0] + (x_new - ux[0]) * lo, out)
        out = np.where(x_new > ux[-1], uy[-1] + (x_new - ux[-1]) * hi, out)
    return out


def slice_positions(headers: Sequence[SliceHeader], numbers: Sequence[float] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a series' slices for sorting, and per slice whether its position comes
    from its own geometry.

    Slices with IPP and IOP: IPP . series_normal (mm). A slice lacking them, in a series
    where at least two slices (with distinct numbers) have them, is placed between those
    by its number (``numbers``, default the instance numbers): interpolated along the
    geometric slices' positions, so one bad file does not reorder the rest. With fewer
    than two geometric slices every position is the number (file order when missing) and
    no slice counts as geometric.
    """
    n = len(headers)
    if numbers is None:
        numbers = [h.instance_number if h.instance_number is not None else i for i, h in enumerate(headers)]
    numbers = np.asarray(numbers, dtype=float)
    has = np.array([h.geometry is not None for h in headers], dtype=bool)
    if n and has.all():
        normal = series_normal([h.iop for h in headers])
        return np.array([np.dot(h.ipp, normal) for h in headers], dtype=float), has
    if has.sum() >= 2 and len(np.unique(numbers[has])) >= 2:
        normal = series_normal([h.iop for h, ok in zip(headers, has) if ok])
        positions = np.full(n, np.nan)
        positions[has] = [np.dot(h.ipp, normal) for h, ok in zip(headers, has) if ok]
        positions[~has] = _interpolate(numbers[has], positions[has], numbers[~has])
        return positions, has
    return numbers.copy(), np.zeros(n, dtype=bool)


def series_positions(headers: Sequence[SliceHeader]) -> tuple[np.ndarray, bool]:
    """slice_positions, with one flag: True when every slice's position is from geometry."""
    positions, has = slice_positions(headers)
    return positions, bool(len(has) and has.all())


def spatial_ranks(positions: Sequence[float], instance_numbers: Sequence[float] | None = None) -> np.ndarray:
    """Rank (0..n-1) of each slice in order of position; ties broken by instance number."""
    positions = np.asarray(positions, dtype=float)
    tiebreak = np.arange(len(positions)) if instance_numbers is None else np.asarray(instance_numbers, dtype=float)
    order = np.lexsort((tiebreak, positions))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def sort_slices(headers: Sequence[SliceHeader]) -> list[int]:
    """Indices of ``headers`` in spatial order (see series_positions)."""
    positions, _ = series_positions(headers)
    numbers = [h.instance_number if h.instance_number is not None else i for i, h in enumerate(headers)]
    ranks = spatial_ranks(positions, numbers)
    return list(np.argsort(ranks))


def duplicate_groups(positions: Sequence[float], tolerance: float = _POSITION_TOLERANCE_MM) -> list[list[int]]:
    """Indices of slices sharing a position (within ``tolerance`` mm), one list per group
    of two or more, each in position order."""
    p = np.asarray(positions, dtype=float)
    order = np.argsort(p, kind="stable")
    groups: list[list[int]] = []
    current = [int(order[0])] if len(order) else []
    for prev, i in zip(order[:-1], order[1:]):
        if p[i] - p[prev] <= tolerance:
            current.append(int(i))
        else:
            if len(current) > 1:
                groups.append(current)
            current = [int(i)]
    if len(current) > 1:
        groups.append(current)
    return groups


def duplicate_positions(positions: Sequence[float], tolerance: float = _POSITION_TOLERANCE_MM) -> int:
    """How many slices share a position with an earlier slice (within ``tolerance`` mm)."""
    return sum(len(g) - 1 for g in duplicate_groups(positions, tolerance))


def nearest_slice(geometries: Sequence[SliceGeometry | None], point: Sequence[float]
                  ) -> tuple[int, float, float, float]:
    """Project a patient point (mm) onto a series.

    Returns (index of the slice whose plane is closest, x column, y row on that slice,
    absolute distance to its plane in mm). Slices without geometry are skipped;
    ValueError if none has geometry.
    """
    best: tuple[int, float, float, float] | None = None
    for i, geom in enumerate(geometries):
        if geom is None:
            continue
        x, y, d = geom.to_pixel(point)
        if best is None or abs(float(d)) < best[3]:
            best = (i, float(x), float(y), abs(float(d)))
    if best is None:
        raise ValueError("no slice of the series has geometry (IPP/IOP/PixelSpacing)")
    return best


def larger_column_is_left(geom: SliceGeometry | None) -> bool | None:
    """Whether a larger image column lies towards patient left (+x in LPS): the sign of the
    row direction's x component (ImageOrientationPatient[0]). True for the usual axial
    orientation, False for a mirrored one; None without geometry or when the row direction
    is (nearly) perpendicular to x (a sagittal slice)."""
    if geom is None or abs(float(geom.row_dir[0])) < 0.1:
        return None
    return bool(geom.row_dir[0] > 0)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two slice normals ignoring their sign (0..90 degrees)."""
    return float(np.degrees(np.arccos(np.clip(abs(float(a @ b)), 0.0, 1.0))))


def off_plane_slices(geoms: Sequence[SliceGeometry | None], plane_axis: Sequence[float],
                     max_deg: float = 45.0) -> list[int]:
    """Slices of another orientation inside a series (a localiser in an axial series):
    normal more than ``max_deg`` from both the series' dominant normal (that of the most
    common orientation) and the plane's own patient axis (z for axial, x for sagittal).
    Angled axial blocks (+-25 degrees) stay: they are near the axis even when far from
    each other."""
    known = [i for i, g in enumerate(geoms) if g is not None]
    if not known:
        return []
    normals = np.array([geoms[i].normal for i in known])
    axis = np.asarray(plane_axis, float) / np.linalg.norm(plane_axis)
    votes = (_angles_deg(normals, normals) <= 5.0).sum(axis=1)
    dominant = normals[int(np.argmax(votes))]
    off = (_angles_deg(normals, dominant[None])[:, 0] > max_deg) & (_angles_deg(normals, axis[None])[:, 0] > max_deg)
    return [i for i, o in zip(known, off) if o]


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) angles between unit normals ignoring their sign (0..90 degrees)."""
    return np.degrees(np.arccos(np.clip(np.abs(a @ b.T), 0.0, 1.0)))


def block_labels(geoms: Sequence[SliceGeometry | None], same_deg: float = 3.0, gap_factor: float = 2.5,
                 min_gap_mm: float = 10.0) -> np.ndarray:
    """Block per slice, by orientation then position: slices whose normals lie within
    ``same_deg`` of each other form one orientation group (in any order, so interleaved
    instance numbers do not matter); a group is split where consecutive positions along
    its own normal jump by more than max(gap_factor x its median step, min_gap_mm).
    Blocks are numbered in order of their centre along the series' mean normal. A slice
    without geometry gets -1 (callers place it by instance number)."""
    labels = np.full(len(geoms), -1, dtype=np.int64)
    refs: list[np.ndarray] = []
    groups: list[list[int]] = []
    for i, g in enumerate(geoms):
        if g is None:
            continue
        n = g.normal
        for k, ref in enumerate(refs):
            if _angle_deg(n, ref) <= same_deg:
                groups[k].append(i)
                break
        else:
            refs.append(g.normal)
            groups.append([i])
    if not groups:
        return labels
    blocks: list[list[int]] = []
    for ref, members in zip(refs, groups):
        pos = np.array([geoms[i].ipp @ ref for i in members])
        order = np.argsort(pos, kind="stable")
        steps = np.diff(pos[order])
        limit = max(gap_factor * float(np.median(steps)) if len(steps) else 0.0, min_gap_mm)
        current = [members[order[0]]]
        for st, o in zip(steps, order[1:]):
            if st > limit:
                blocks.append(current)
                current = []
            current.append(members[o])
        blocks.append(current)
    mean = series_normal([np.concatenate([geoms[b[0]].row_dir, geoms[b[0]].col_dir]) for b in blocks])
    centres = [float(np.mean([geoms[i].ipp @ mean for i in b])) for b in blocks]
    for rank, k in enumerate(np.argsort(centres, kind="stable")):
        labels[blocks[k]] = rank
    return labels


def sort_by_blocks(geoms: Sequence[SliceGeometry | None], fallback: Sequence[int]) -> list[int]:
    """Slice order for a series of angled blocks: blocks in order along the series' mean
    normal (block_labels), slices within a block along the block's own normal (sign-
    aligned to the mean), so two blocks at different tilts never interleave. Slices
    without geometry keep their place after the slice that precedes them in ``fallback``
    (the sort_slices order)."""
    labels = block_labels(geoms)
    known = [i for i in range(len(geoms)) if labels[i] >= 0]
    if not known:
        return list(fallback)
    mean = series_normal([np.concatenate([geoms[i].row_dir, geoms[i].col_dir]) for i in known])

    def key(i: int) -> tuple[int, float]:
        n = geoms[i].normal
        n = n if n @ mean >= 0 else -n
        return int(labels[i]), float(geoms[i].ipp @ n)

    order = sorted(known, key=key)
    for pos, i in enumerate(fallback):  # slices without geometry: after their predecessor
        if labels[i] < 0:
            before = [j for j in fallback[:pos] if j in order]
            order.insert(order.index(before[-1]) + 1 if before else 0, i)
    return order


# ----------------------------------------------------------------------------- pixels

def _decoding_plugin(transfer_syntax: str) -> str | None:
    """Fastest installed decoder per transfer syntax (stack-notes: pylibjpeg-rle, pyjpegls)."""
    if transfer_syntax == RLELossless:
        return "pylibjpeg"
    if transfer_syntax in (JPEGLSLossless, JPEGLSNearLossless):
        return "pyjpegls"
    return None


def _rle_frame(ds: pydicom.Dataset, header: SliceHeader) -> np.ndarray | None:
    """The one frame of a single-frame, single-sample RLE Lossless file decoded straight
    with pylibjpeg-rle, as pydicom's pixel_array gives it (same dtype, unused high bits
    cleared or sign-extended); None when the file is anything else or the decoder is
    missing, so that the caller takes pydicom's general path.

    pydicom's pixel_array rebuilds its pixel description from about twenty dataset
    look-ups on every call, which costs more than decoding a 12-bit MR slice; the few
    tags needed here are read from their raw bytes instead."""
    if _rle_decode_frame is None or header.n_frames != 1 or header.rows <= 0 or header.cols <= 0:
        return None
    if (_int(ds, "SamplesPerPixel") or 1) != 1:
        return None
    bits = _int(ds, "BitsAllocated")
    if bits not in (8, 16, 32):
        return None
    stored = _int(ds, "BitsStored") or bits
    signed = _int(ds, "PixelRepresentation") == 1
    elem = ds.get_item(0x7FE00010)
    data = elem.value if elem is not None else None
    if not isinstance(data, bytes) or not 0 < stored <= bits:
        return None
    frame = next(generate_frames(data, number_of_frames=1), None)
    if frame is None:
        return None
    decoded = _rle_decode_frame(frame, header.rows * header.cols, bits, "<")
    arr = np.frombuffer(decoded, dtype=f"<{'i' if signed else 'u'}{bits // 8}").reshape(header.rows, header.cols)
    if stored < bits:  # as pydicom: the unused high bits carry no meaning
        arr = np.right_shift(np.left_shift(arr, bits - stored), bits - stored)
    return arr


def decode_pixels(ds: pydicom.Dataset, path: str | Path = "", header: SliceHeader | None = None) -> np.ndarray:
    """Decode a read dataset to float32, (rows, cols) or (frames, rows, cols).

    Applies RescaleSlope/Intercept when present and inverts MONOCHROME1 so that
    brighter always means more signal. Raises DicomReadError naming the file.
    ``header`` (header_from_dataset of ``ds``) spares parsing its tags again.
    """
    if header is None:
        header = header_from_dataset(ds, path)
    tsyntax = header.transfer_syntax
    arr = None
    if tsyntax == RLELossless:
        try:
            arr = _rle_frame(ds, header)
        except Exception as e:  # let pydicom's general path decide and name the problem
            log.debug("%s: direct RLE decode failed (%s); using pydicom", path, e)
    if arr is None:
        arr = _pixel_array(ds, path, tsyntax)
    out = arr.astype(np.float32)
    slope, intercept = _floats(ds, "RescaleSlope", 1), _floats(ds, "RescaleIntercept", 1)
    if slope is not None or intercept is not None:  # in place: out is already a fresh float32 copy
        out *= np.float32(slope[0] if slope is not None else 1.0)
        out += np.float32(intercept[0] if intercept is not None else 0.0)
    if header.photometric == "MONOCHROME1":
        out = out.max() + out.min() - out
    return out


def _pixel_array(ds: pydicom.Dataset, path: str | Path, tsyntax: str) -> np.ndarray:
    """pydicom's pixel_array with the fastest installed plugin, falling back to its default."""
    plugin = _decoding_plugin(tsyntax)
    try:
        try:
            if plugin:
                ds.pixel_array_options(decoding_plugin=plugin)
            return ds.pixel_array
        except (RuntimeError, ImportError) as e:  # plugin missing or failing: default chain
            if not plugin:
                raise
            log.debug("%s: %s decoder failed (%s); using the default", path, plugin, e)
            ds.pixel_array_options(decoding_plugin="")
            return ds.pixel_array
    except Exception as e:  # decoders raise many types; name the file and the cause
        raise DicomReadError(path, UNDECODABLE, f"{path}: pixel data cannot be decoded "
                             f"({type(e).__name__}: {e})") from None


def _check_read(ds: pydicom.Dataset, data: bytes, path: Path) -> None:
    """read_header's checks on a fully read dataset (no second parse): the same kinds."""
    if _int(ds, "Rows") is None or _int(ds, "Columns") is None:
        raise _no_dimensions(ds, path, at_end="PixelData" not in ds)
    elem = ds.get_item(0x7FE00010)
    if elem is None:
        raise DicomReadError(path, NO_PIXELS, f"{path}: no pixel data after the header "
                             "(cut short, or not an image object)")
    tsyntax = _transfer_syntax(ds)
    if tsyntax is not None and tsyntax.is_encapsulated:
        if data.find(_ENCAPSULATED_END, getattr(elem, "value_tell", 0) or 0) < 0:
            raise DicomReadError(path, TRUNCATED, f"{path}: truncated: compressed pixel data has no "
                                 "end delimiter (file cut short)")
        return
    expected = _expected_native_bytes(header_from_dataset(ds, path), ds)
    held = len(elem.value or b"")
    if held < expected:
        raise DicomReadError(path, TRUNCATED, f"{path}: truncated: pixel data holds {held} of "
                             f"{expected} bytes")


def read_pixels(path: str | Path) -> tuple[SliceHeader, np.ndarray]:
    """Read one file fully (decoding once): its header and float32 pixels.

    A damaged file raises DicomReadError of the kind read_header (and so ingest) gives
    it, never a pydicom exception; pixel data that fails to decode raises UNDECODABLE.
    """
    path = Path(path)
    size = _file_size(path)
    try:
        with open(path, "rb") as fp:
            data = fp.read(size)
        with warnings.catch_warnings():  # pydicom warns on a cut file; the check below names it
            warnings.simplefilter("ignore", UserWarning)
            ds = pydicom.dcmread(io.BytesIO(data))
        _check_read(ds, data, path)
        header = header_from_dataset(ds, path)
    except Exception as e:
        raise _as_read_error(path, e) from None
    return header, decode_pixels(ds, path, header)


@dataclass
class SeriesPixels:
    """A decoded series in spatial order. Multi-frame files contribute one entry per frame."""

    headers: list[SliceHeader]  # one per slice (a multi-frame file's header repeats)
    slices: list[np.ndarray]  # float32 (rows, cols) each; shapes may differ within a series
    positions: np.ndarray  # sort key per slice (mm along the series normal, or instance number)
    geometry_ok: bool  # every position from IPP/IOP (False: some or all placed by instance number)
    shapes: list[tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.shapes = [s.shape for s in self.slices]

    @property
    def geometries(self) -> list[SliceGeometry | None]:
        """Each slice's geometry (None where tags are missing), for nearest_slice."""
        return [h.geometry for h in self.headers]

    @property
    def mixed_shapes(self) -> bool:
        return len(set(self.shapes)) > 1

    def stack(self) -> np.ndarray:
        """(n, rows, cols) float32; ValueError naming the shapes if they differ."""
        if self.mixed_shapes:
            raise ValueError(f"series slices differ in size: {sorted(set(self.shapes))}; "
                             "resample or pick slices before stacking")
        return np.stack(self.slices)


def read_series(paths: Sequence[str | Path], sort: bool = True, skip_unreadable: bool = False) -> SeriesPixels:
    """Decode every file of a series exactly once and return its slices in spatial order.

    Sorting uses IPP projected on the series normal (series_positions), placing files
    without geometry by instance number. Raises DicomReadError for a bad file, or with
    ``skip_unreadable`` logs a warning naming it and goes on without it.
    """
    headers: list[SliceHeader] = []
    slices: list[np.ndarray] = []
    for path in paths:
        try:
            header, pixels = read_pixels(path)
        except DicomReadError as e:
            if not skip_unreadable:
                raise
            log.warning("%s; slice skipped", e.reason)
            continue
        frames = pixels if pixels.ndim == 3 else pixels[None]
        headers.extend([header] * len(frames))
        slices.extend(list(frames))
    positions, geometry_ok = series_positions(headers)
    if sort and headers:
        numbers = [h.instance_number if h.instance_number is not None else 0 for h in headers]
        order = np.lexsort((np.arange(len(headers)), numbers, positions))
        headers = [headers[i] for i in order]
        slices = [slices[i] for i in order]
        positions = positions[order]
    return SeriesPixels(headers, slices, positions, geometry_ok)


def series_files(series_dir: str | Path) -> list[Path]:
    """The *.dcm files of a series folder (any order; read_series sorts spatially)."""
    return sorted(Path(series_dir).glob("*.dcm"), key=lambda p: (len(p.name), p.name))


def normalise_uint8(slices: Sequence[np.ndarray] | np.ndarray, low_pct: float = 1.0,
                    high_pct: float = 99.0, max_samples: int = 120_000) -> list[np.ndarray]:
    """Window a whole series to uint8 with one pair of percentiles computed over all its
    slices (so brightness stays comparable between slices), clipping outside.

    ``max_samples`` caps the pixels used for the percentiles: every k-th pixel of each
    slice, the same k for the whole series (a 1st / 99th percentile from ~10^5 pixels moves
    by a fraction of a grey level; sorting all of them was a third of the decode time of a
    study).
    """
    slices = [np.asarray(s, dtype=np.float32) for s in slices]
    if not slices:
        return []
    total = sum(s.size for s in slices)
    step = total // max_samples + 1 if total > max_samples else 1
    sample = np.concatenate([s.ravel()[::step] for s in slices])
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    scale = np.float32(255.0 / (hi - lo) if hi > lo else 0.0)
    out = []
    for s in slices:
        v = (s - np.float32(lo)) * scale
        np.clip(v, 0, 255, out=v)
        out.append(np.rint(v, out=v).astype(np.uint8))
    return out


__all__ = [
    "DicomReadError", "SliceGeometry", "SliceHeader", "SeriesPixels",
    "EMPTY_FILE", "NOT_DICOM", "TRUNCATED", "NO_PIXELS", "UNDECODABLE",
    "read_header", "header_from_dataset", "slice_normal", "normal_position", "series_normal",
    "series_positions", "slice_positions", "spatial_ranks", "sort_slices", "duplicate_positions", "duplicate_groups", "nearest_slice", "larger_column_is_left", "off_plane_slices", "block_labels", "sort_by_blocks",
    "decode_pixels", "read_pixels", "read_series", "series_files", "normalise_uint8",
]
