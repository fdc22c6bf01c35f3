"""Decode the series a study needs, each DICOM file once, into windowed uint8 slices.

A file that cannot be read or decoded is skipped with a warning and recorded (file, kind,
reason) so callers can report it; the study still gets all its rows. A series with no
readable slice counts as absent. Slices without geometry (IPP/IOP/PixelSpacing) keep their
place in the series (dicom.sort_slices places them by instance number) and are warned about.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsdc import dicom
from lsdc.dicom import SliceGeometry
from lsdc.rois import geometry

log = logging.getLogger(__name__)


@dataclass
class Series:
    """One decoded series in spatial order (per-series windowing as in the YOLO export)."""

    series_id: int
    plane: str
    images: list[np.ndarray]  # uint8 (rows, cols); shapes may differ within a series
    geoms: list[SliceGeometry | None]
    instances: list[int | None]
    spacings: list[tuple[float, float]]  # (row, col) mm
    unreadable: int = 0

    @property
    def has_geometry(self) -> list[bool]:
        """Per slice: whether its IPP/IOP/PixelSpacing give patient positions."""
        return [g is not None for g in self.geoms]

    def __post_init__(self) -> None:
        self.blocks = geometry.orientation_blocks(self.geoms)
        self.keys = geometry.axis_keys(self.geoms, self.plane)  # neighbour order (geometry.neighbour)

    def __len__(self) -> int:
        return len(self.images)


def load_series(root: str | Path, series_id: int, plane: str, files: Sequence[str],
                skipped: list[dict] | None = None) -> Series | None:
    """Read and decode every file of a series once; None when no slice is readable.

    Each file skipped is appended to ``skipped`` as {"file": path relative to root, "kind",
    "reason"} (kinds of lsdc.dicom: truncated_file, not_dicom, undecodable_pixels, ...)."""
    headers, pixels, unreadable = [], [], 0
    for rel in files:
        path = Path(root) / rel
        try:
            header, arr = dicom.read_pixels(path)
        except dicom.DicomReadError as e:
            log.warning("%s; slice skipped", e.reason)
            unreadable += 1
            if skipped is not None:
                skipped.append({"file": str(rel), "kind": e.kind,
                                "reason": e.reason.replace(str(path), str(rel))})
            continue
        if arr.ndim != 2:
            arr = arr.reshape(-1, *arr.shape[-2:])[0]
            log.warning("%s: multi-frame or colour file, first frame used", path)
        headers.append(header)
        pixels.append(arr)
    if not headers:
        log.warning("series %s (%s): no readable slice; its crops are marked missing", series_id, plane)
        return None
    order = dicom.sort_slices(headers)
    headers = [headers[i] for i in order]
    images = dicom.normalise_uint8([pixels[i] for i in order])
    lacking = [Path(h.path).name for h in headers if h.geometry is None]
    if lacking:
        log.warning("series %s (%s): %d of %d slices lack IPP/IOP/PixelSpacing (%s); they are placed by "
                    "instance number and their crops carry no patient position (geometry_ok false)",
                    series_id, plane, len(lacking), len(headers), ", ".join(lacking[:5])
                    + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""))
    spacings = []
    for h in headers:
        if h.pixel_spacing is None:
            log.warning("%s: no PixelSpacing; 1 mm assumed", h.path)
        spacings.append(tuple(h.pixel_spacing) if h.pixel_spacing else (1.0, 1.0))
    return Series(series_id, plane, images, [h.geometry for h in headers],
                  [h.instance_number for h in headers], spacings, unreadable)
