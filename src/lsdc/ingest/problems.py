"""Quarantine kinds and the collector that turns problems into the quarantine table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lsdc import dicom

# One slug per kind of problem; metrics/ingest.json counts each (zero included).
STUDY_NOT_ON_DISK = "study_not_on_disk"  # in a CSV, no image folder (reported once per study)
SERIES_NOT_ON_DISK = "series_not_on_disk"  # in a CSV, study folder present, series folder not
STUDY_NOT_IN_CSV = "study_not_in_csv"  # image folder of a study no CSV lists
STUDY_NOT_IN_LABELS = "study_not_in_labels"  # a train study (series CSV, disk, coords) without a train.csv row
SERIES_NOT_IN_CSV = "series_not_in_csv"  # series folder not in *_series_descriptions.csv
EMPTY_SERIES = "empty_series"  # series folder without *.dcm files
UNKNOWN_DESCRIPTION = "unknown_description"  # series description not an RSNA one
BAD_ID = "bad_id"  # non-numeric or path-like study/series/instance id (CSV or folder/file name)
PATH_ESCAPE = "path_escape"  # a link that resolves outside the data root
STRAY_FILE = "stray_file"  # a file where only folders (or only *.dcm) belong
EMPTY_FILE = dicom.EMPTY_FILE
NOT_DICOM = dicom.NOT_DICOM
TRUNCATED = dicom.TRUNCATED
NO_PIXELS = dicom.NO_PIXELS
MULTI_FRAME = "multi_frame"  # one file holding several frames (RSNA: one slice per file)
INSTANCE_MISMATCH = "instance_number_mismatch"  # file name != InstanceNumber header
MIXED_SHAPES = "mixed_shapes"  # slices of one series differ in rows x cols
MISSING_GEOMETRY = "missing_geometry"  # IPP/IOP/PixelSpacing missing: instance-number order
DUPLICATE_POSITION = "duplicate_position"  # two slices of a series at the same position
DUPLICATE_CSV_ROW = "duplicate_csv_row"  # exact repeat of an earlier CSV row (dropped)
CONFLICTING_CSV_ROW = "conflicting_csv_row"  # same key as an earlier row, other values (dropped)
BAD_LABEL = "bad_label"  # a train.csv cell that is not an RSNA severity (kept as missing)
BAD_COORDINATE = "bad_coordinate"  # unknown condition/level or non-numeric x, y (dropped)
COORD_OUTSIDE_IMAGE = "coord_outside_image"  # x, y outside the annotated image (flagged)
COORD_NEAR_ORIGIN = "coord_near_origin"  # x, y near (0, 0): a misplaced click (flagged)
COORD_NO_INSTANCE = "coord_no_instance"  # annotated instance file not on disk (flagged)
COORD_UNKNOWN_SERIES = "coord_unknown_series"  # annotated series neither in a CSV nor on disk
COORD_NO_GEOMETRY = "coord_no_geometry"  # annotated file lacks IPP/IOP/PixelSpacing: no patient mm
SPLIT_CONFLICT = "split_conflict"  # a study listed as both train and test (kept as train)
MISSING_CSV = "missing_csv"  # an optional CSV of the layout is absent
EMPTY_CSV = "empty_csv"  # train.csv (or the coordinates CSV) has a header but no data rows

KINDS: tuple[str, ...] = (
    STUDY_NOT_ON_DISK, SERIES_NOT_ON_DISK, STUDY_NOT_IN_CSV, STUDY_NOT_IN_LABELS, SERIES_NOT_IN_CSV,
    EMPTY_SERIES,
    UNKNOWN_DESCRIPTION, BAD_ID, PATH_ESCAPE, STRAY_FILE, EMPTY_FILE, NOT_DICOM, TRUNCATED,
    NO_PIXELS, MULTI_FRAME, INSTANCE_MISMATCH, MIXED_SHAPES, MISSING_GEOMETRY,
    DUPLICATE_POSITION, DUPLICATE_CSV_ROW, CONFLICTING_CSV_ROW, BAD_LABEL, BAD_COORDINATE,
    COORD_OUTSIDE_IMAGE, COORD_NEAR_ORIGIN, COORD_NO_INSTANCE, COORD_UNKNOWN_SERIES,
    COORD_NO_GEOMETRY, SPLIT_CONFLICT, MISSING_CSV, EMPTY_CSV,
)
QUARANTINE_COLUMNS: tuple[str, ...] = ("path", "study_id", "series_id", "kind", "reason")


@dataclass
class Problems:
    """Collects quarantine rows: path (relative to the root) or None, ids or None."""

    rows: list[dict] = field(default_factory=list)

    def add(self, kind: str, reason: str, path: str | None = None,
            study_id: int | None = None, series_id: int | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown quarantine kind {kind!r}")
        self.rows.append({"path": path, "study_id": study_id, "series_id": series_id,
                          "kind": kind, "reason": reason})

    def extend(self, rows: list[dict]) -> None:
        self.rows.extend(rows)

    def table(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=list(QUARANTINE_COLUMNS))
        return frame.astype({"path": "string", "study_id": "Int64", "series_id": "Int64",
                             "kind": "string", "reason": "string"})
