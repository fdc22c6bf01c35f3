"""Load and check the ingest index tables (data/interim/index/*.parquet) the EDA reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

# The columns the EDA relies on, per table (docs/data_formats.md has the full schema).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies": ("study_id", "split"),
    "series": ("study_id", "series_id", "split", "series_description", "plane", "rows", "cols"),
    "instances": (
        "study_id", "series_id", "split", "instance_number", "path", "rows", "cols",
        "spatial_rank",
    ),
    "labels": ("study_id", "column", "condition", "level", "severity_code"),
    "coords": (
        "study_id", "series_id", "instance_number", "condition", "level", "x", "y",
        "plane", "rows", "cols", "severity_code",
    ),
}
OPTIONAL_TABLES: tuple[str, ...] = ("quarantine",)


@dataclass(frozen=True)
class IndexTables:
    """The ingest index: one DataFrame per table (quarantine may be empty)."""

    studies: pd.DataFrame
    series: pd.DataFrame
    instances: pd.DataFrame
    labels: pd.DataFrame
    coords: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def has_images(self) -> bool:
        """True when any DICOM header was read (False for a CSV-only root)."""
        return len(self.instances) > 0


def check_columns(name: str, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Raise a ValueError naming the table file and the missing columns, else return frame."""
    missing = [c for c in REQUIRED_COLUMNS.get(name, ()) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{where}: index table {name!r} lacks column(s) {missing}; "
            "re-run `lsdc ingest` with this version of lsdc"
        )
    return frame


def from_frames(**frames: pd.DataFrame) -> IndexTables:
    """Build IndexTables from in-memory frames (tests, notebooks); quarantine is optional."""
    checked = {}
    for name in REQUIRED_COLUMNS:
        if name not in frames:
            raise ValueError(f"index table {name!r} not given")
        checked[name] = check_columns(name, frames[name], f"<{name} frame>")
    quarantine = frames.get("quarantine")
    checked["quarantine"] = quarantine if quarantine is not None else pd.DataFrame()
    return IndexTables(**checked)


def load_index(index_dir: str | Path) -> IndexTables:
    """Read every index table from `index_dir`; a missing file or column fails with its path."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise FileNotFoundError(f"{index_dir}: index folder not found; run `lsdc ingest` first")
    frames: dict[str, pd.DataFrame] = {}
    for name in REQUIRED_COLUMNS:
        path = index_dir / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: index table missing; run `lsdc ingest` first")
        try:
            frame = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for damaged files
            raise ValueError(f"{path}: not a readable parquet table ({e})") from e
        frames[name] = check_columns(name, frame, str(path))
    for name in OPTIONAL_TABLES:
        path = index_dir / f"{name}.parquet"
        frames[name] = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    log.info(
        "index %s: %d studies, %d series, %d instances, %d label rows, %d coordinate rows",
        index_dir, len(frames["studies"]), len(frames["series"]), len(frames["instances"]),
        len(frames["labels"]), len(frames["coords"]),
    )
    return IndexTables(**frames)
