"""Decode the series a study needs, each DICOM file once, into windowed uint8 slices.

A file that cannot be read or decoded is skipped with a warning and recorded (file, kind,
reason) so callers can report it; the study still gets all its rows. A series with no
readable slice counts as absent. Slices without geometry (IPP/IOP/PixelSpacing) keep their
place in the series (dicom.sort_slices places them by instance number) and are warned about.

Orientation: a slice of another orientation inside a series (a localiser in an axial
series: dicom.off_plane_slices) is dropped and recorded with kind 'off_plane_slice'.
Slices are grouped into blocks by orientation and position (dicom.block_labels) and
sorted block by block (dicom.sort_by_blocks), so angled axial blocks never interleave.
Each slice is then turned to the viewer's orientation of its plane (lsdc.orientation), its
geometry with it: a mirrored or upside-down series looks like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsdc import dicom, orientation
from lsdc.dicom import SliceGeometry
from lsdc.rois import geometry

log = logging.getLogger(__name__)

OFF_PLANE = "off_plane_slice"  # skipped-file kind: a slice of another orientation (localiser)
OFF_PLANE_DEG = 45.0  # beyond this from both the series' orientation and the plane's axis: not this plane
PLANE_AXIS = {"sag_t1": (1.0, 0.0, 0.0), "sag_t2": (1.0, 0.0, 0.0), "ax_t2": (0.0, 0.0, 1.0)}


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
    frame_of_reference: str | None = None  # FrameOfReferenceUID (None when absent)

    @property
    def has_geometry(self) -> list[bool]:
        """Per slice: whether its IPP/IOP/PixelSpacing give patient positions."""
        return [g is not None for g in self.geoms]

    def __post_init__(self) -> None:
        self.blocks = geometry.series_blocks(self.geoms)
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
    off = dicom.off_plane_slices([h.geometry for h in headers], PLANE_AXIS[plane], OFF_PLANE_DEG)
    for i in off:
        path = Path(headers[i].path)
        rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        reason = (f"{rel}: slice normal {np.round(headers[i].geometry.normal, 2).tolist()} is more than "
                  f"{OFF_PLANE_DEG:g} deg from the series' orientation and the {plane} axis (a localiser?); "
                  "not used")
        log.warning("series %s (%s): %s", series_id, plane, reason)
        if skipped is not None:
            skipped.append({"file": rel, "kind": OFF_PLANE, "reason": reason})
    if len(off) == len(headers):
        return None
    keep = [i for i in range(len(headers)) if i not in set(off)]
    headers, pixels = [headers[i] for i in keep], [pixels[i] for i in keep]
    order = dicom.sort_by_blocks([h.geometry for h in headers], dicom.sort_slices(headers))
    headers = [headers[i] for i in order]
    images = dicom.normalise_uint8([pixels[i] for i in order])
    lacking = [Path(h.path).name for h in headers if h.geometry is None]
    if lacking:
        log.warning("series %s (%s): %d of %d slices lack IPP/IOP/PixelSpacing (%s); they are placed by "
                    "instance number and their crops carry no patient position (geometry_ok false)",
                    series_id, plane, len(lacking), len(headers), ", ".join(lacking[:5])
                    + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""))
    spacings, geoms = [], []
    for k, h in enumerate(headers):
        if h.pixel_spacing is None:
            log.warning("%s: no PixelSpacing; 1 mm assumed", h.path)
        steps = orientation.canonical_steps(h.geometry, plane)  # mirrored / upside-down -> viewer's way
        images[k], geom = orientation.apply(images[k], h.geometry, steps)
        geoms.append(geom)
        spacings.append(orientation.apply_spacing(tuple(h.pixel_spacing) if h.pixel_spacing else (1.0, 1.0), steps))
    frames = [h.frame_of_reference for h in headers if h.frame_of_reference]
    frame = max(set(frames), key=frames.count) if frames else None
    if len(set(frames)) > 1:
        log.warning("series %s (%s): %d FrameOfReferenceUIDs; the most common is used", series_id, plane,
                    len(set(frames)))
    return Series(series_id, plane, images, geoms,
                  [h.instance_number for h in headers], spacings, unreadable, frame)
