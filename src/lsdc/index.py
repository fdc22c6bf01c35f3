"""The ingest index, data/interim/index/<table>.parquet: one home for its tables.

`ingest` builds the tables and writes them with `write`; every later stage reads the
tables it needs with `read`, which fails with the file's path and the missing columns
when a table is absent, damaged or older than this code. The full schema is in
docs/data_formats.md; `REQUIRED_COLUMNS` lists the columns lsdc code relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

TABLES: tuple[str, ...] = ("studies", "series", "instances", "labels", "coords", "quarantine")
GEOMETRY_COLUMNS: tuple[str, ...] = (
    "pixel_spacing_row", "pixel_spacing_col", "ipp_x", "ipp_y", "ipp_z",
    "iop_rx", "iop_ry", "iop_rz", "iop_cx", "iop_cy", "iop_cz",
)
# The columns the stages read, per table; ingest writes more (docs/data_formats.md).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "studies": ("study_id", "split"),
    "series": ("study_id", "series_id", "split", "series_description", "plane", "rows", "cols"),
    "instances": ("study_id", "series_id", "split", "instance_number", "path", "rows", "cols",
                  "spatial_rank"),
    "labels": ("study_id", "column", "condition", "level", "severity_code"),
    "coords": ("study_id", "series_id", "instance_number", "condition", "level", "x", "y",
               "plane", "rows", "cols", "severity_code"),
    "quarantine": (),
}


def table_path(index_dir: str | Path, name: str) -> Path:
    """Where table `name` lives under `index_dir`."""
    if name not in TABLES:
        raise ValueError(f"unknown index table {name!r}; the tables are {list(TABLES)}")
    return Path(index_dir) / f"{name}.parquet"


def check_columns(name: str, frame: pd.DataFrame, where: str | Path,
                  extra: Iterable[str] = ()) -> pd.DataFrame:
    """Return `frame` when it has table `name`'s required columns (and `extra`); else raise
    a ValueError naming `where` (the file) and the missing columns."""
    missing = [c for c in (*REQUIRED_COLUMNS[name], *extra) if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: index table {name!r} lacks column(s) {missing}; "
                         "re-run `lsdc ingest` with this version of lsdc")
    return frame


def read_table(index_dir: str | Path, name: str, extra: Iterable[str] = ()) -> pd.DataFrame:
    """One checked table; FileNotFoundError / ValueError name the file."""
    path = table_path(index_dir, name)
    if not path.exists():
        raise FileNotFoundError(f"{path}: index table not found; run `lsdc ingest` first")
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise ValueError(f"{path}: not a readable parquet table ({e})") from e
    return check_columns(name, frame, path, extra)


def read(index_dir: str | Path, names: Iterable[str],
         extra: Mapping[str, Iterable[str]] | None = None) -> dict[str, pd.DataFrame]:
    """The checked tables `names` of `index_dir`, by name; `extra` adds required columns
    per table for a reader that needs more than REQUIRED_COLUMNS."""
    extra = extra or {}
    return {name: read_table(index_dir, name, extra.get(name, ())) for name in names}


@dataclass(frozen=True)
class IndexTables:
    """All six index tables in memory (quarantine may be empty)."""

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

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def write(self, index_dir: str | Path) -> list[Path]:
        """Write every table as ``index_dir/<name>.parquet``; returns the paths."""
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in self.tables().items():
            path = table_path(index_dir, name)
            check_columns(name, frame, path).to_parquet(path, index=False)
            paths.append(path)
        return paths


def from_frames(**frames: pd.DataFrame) -> IndexTables:
    """IndexTables from in-memory frames (tests, notebooks), checked; quarantine is optional."""
    checked = {}
    for name in TABLES:
        frame = frames.get(name)
        if frame is None and name == "quarantine":
            frame = pd.DataFrame()
        if frame is None:
            raise ValueError(f"index table {name!r} not given")
        checked[name] = check_columns(name, frame, f"<{name} frame>")
    return IndexTables(**checked)


def load(index_dir: str | Path) -> IndexTables:
    """Every table of `index_dir`; quarantine.parquet may be absent (an empty frame then)."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise FileNotFoundError(f"{index_dir}: index folder not found; run `lsdc ingest` first")
    present = [n for n in TABLES if n != "quarantine" or table_path(index_dir, n).exists()]
    frames = read(index_dir, present)
    frames.setdefault("quarantine", pd.DataFrame())
    log.info("index %s: %d studies, %d series, %d instances, %d label rows, %d coordinate rows",
             index_dir, len(frames["studies"]), len(frames["series"]), len(frames["instances"]),
             len(frames["labels"]), len(frames["coords"]))
    return IndexTables(**frames)
