"""Read and validate the RSNA CSVs of a data root into clean frames plus problems."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.errors import UserError
from lsdc.ingest import problems as pk
from lsdc.ingest.problems import Problems

log = logging.getLogger(__name__)

_ID = re.compile(r"^\s*\d{1,18}\s*$")


class NotRsnaRootError(UserError):
    """The data root is not an RSNA-layout folder (a file or a CSV column is missing)."""


def parse_id(value: object) -> int | None:
    """A numeric id (digits only, as RSNA de-identified ids are) -> int; anything else -> None.

    Path-like values ('../../etc'), blanks and signs are rejected, so an id can never
    steer a path outside the data root."""
    text = str(value)
    return int(text) if _ID.match(text) else None


def check_layout(root: Path, allow_test_only: bool = False) -> None:
    """Fail at once, naming what is missing, when ``root`` is not an RSNA layout.

    Needs train.csv and at least one *_series_descriptions.csv; with
    ``allow_test_only`` (Kaggle inference), test_series_descriptions.csv alone is enough.
    """
    if not root.is_dir():
        raise NotRsnaRootError(f"{root}: data root not found or not a folder")
    has_train = (root / schema.TRAIN_CSV).is_file()
    has_train_series = (root / schema.TRAIN_SERIES_CSV).is_file()
    has_test_series = (root / schema.TEST_SERIES_CSV).is_file()
    missing = []
    if not has_train and not (allow_test_only and has_test_series):
        missing.append(schema.TRAIN_CSV)
    if not (has_train_series or has_test_series):
        missing.append(f"*_series_descriptions.csv ({schema.TRAIN_SERIES_CSV} or {schema.TEST_SERIES_CSV})")
    if missing:
        raise NotRsnaRootError(
            f"{root}: not an RSNA-layout data root: missing {' and '.join(missing)}"
            + ("" if allow_test_only else " (a test-only root needs allow_test_only)"))


def _read(root: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    path = root / name
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise NotRsnaRootError(f"{path}: unreadable CSV ({type(e).__name__}: {e})") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise NotRsnaRootError(f"{path}: not an RSNA CSV: missing column(s) {missing}")
    frame["csv_line"] = np.arange(len(frame)) + 2  # line number in the file (header is line 1)
    return frame


def _ids(frame: pd.DataFrame, name: str, id_columns: tuple[str, ...], problems: Problems) -> pd.DataFrame:
    """Parse id columns; rows with a bad id are dropped and reported."""
    keep = np.ones(len(frame), dtype=bool)
    parsed = {c: [parse_id(v) for v in frame[c]] for c in id_columns}
    for i, line in enumerate(frame["csv_line"]):
        bad = [c for c in id_columns if parsed[c][i] is None]
        if bad:
            keep[i] = False
            col = bad[0]
            study = parsed["study_id"][i] if "study_id" in parsed else None
            problems.add(pk.BAD_ID, f"{name}: line {line}: {col} {frame[col].iloc[i]!r} is not a "
                         "numeric id; row dropped", path=name, study_id=study)
    out = frame.loc[keep].copy()
    for c in id_columns:
        out[c] = np.array([v for v, k in zip(parsed[c], keep) if k], dtype=np.int64)
    return out


def _dedupe(frame: pd.DataFrame, name: str, key: list[str], problems: Problems) -> pd.DataFrame:
    """Drop exact repeats and rows repeating an earlier key with other values; report each."""
    values = [c for c in frame.columns if c != "csv_line"]
    exact = frame.duplicated(subset=values, keep="first")
    conflict = frame.duplicated(subset=key, keep="first") & ~exact
    first_line = frame.groupby(key, sort=False)["csv_line"].transform("first")
    for idx in frame.index[exact | conflict]:
        row = frame.loc[idx]
        ids = ", ".join(f"{k}={row[k]}" for k in key)
        if exact[idx]:
            problems.add(pk.DUPLICATE_CSV_ROW, f"{name}: line {row['csv_line']} repeats line "
                         f"{first_line[idx]} ({ids}); duplicate dropped", path=name,
                         study_id=int(row["study_id"]), series_id=_maybe(row, "series_id"))
        else:
            problems.add(pk.CONFLICTING_CSV_ROW, f"{name}: line {row['csv_line']} has the same {ids} "
                         f"as line {first_line[idx]} but other values; kept line {first_line[idx]}",
                         path=name, study_id=int(row["study_id"]), series_id=_maybe(row, "series_id"))
    return frame.loc[~(exact | conflict)]


def _maybe(row: pd.Series, column: str) -> int | None:
    return int(row[column]) if column in row.index else None


def _has_rows(path: Path) -> bool:
    """True when the CSV file exists and holds a line after its header."""
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        next(f, None)
        return any(line.strip() for line in f)


def _report_empty(name: str, consequence: str, problems: Problems) -> None:
    log.warning("%s: header only, no data rows; %s", name, consequence)
    problems.add(pk.EMPTY_CSV, f"{name}: has a header but no data rows; {consequence}", path=name)


def read_series_csv(root: Path, name: str, split: str, problems: Problems) -> pd.DataFrame:
    """study_id, series_id, split, series_description, plane (None for unknown descriptions)."""
    columns = ["study_id", "series_id", "split", "series_description", "plane"]
    if not (root / name).is_file():
        return pd.DataFrame({c: pd.Series(dtype="int64" if c.endswith("_id") else "object") for c in columns})
    frame = _ids(_read(root, name, schema.SERIES_COLUMNS), name, ("study_id", "series_id"), problems)
    frame = _dedupe(frame[["study_id", "series_id", "series_description", "csv_line"]], name,
                    ["study_id", "series_id"], problems)
    frame["series_description"] = frame["series_description"].str.strip()
    frame["plane"] = frame["series_description"].map(schema.PLANE_OF_DESCRIPTION)
    for row in frame.loc[frame["plane"].isna()].itertuples():
        problems.add(pk.UNKNOWN_DESCRIPTION, f"{name}: line {row.csv_line}: series {row.series_id} has "
                     f"description {row.series_description!r}, not one of "
                     f"{list(schema.PLANE_OF_DESCRIPTION)}; kept without a plane", path=name,
                     study_id=row.study_id, series_id=row.series_id)
    frame["split"] = split
    frame["plane"] = frame["plane"].astype(object).where(frame["plane"].notna(), None)
    return frame[columns].reset_index(drop=True)


def read_labels(root: Path, problems: Problems) -> pd.DataFrame:
    """train.csv in long form: study_id, column, condition, level, severity, severity_code."""
    columns = ["study_id", "column", "condition", "level", "severity", "severity_code"]
    if not (root / schema.TRAIN_CSV).is_file():
        return _empty_labels(columns)
    name = schema.TRAIN_CSV
    raw = _read(root, name, schema.TRAIN_COLUMNS)
    if raw.empty:
        _report_empty(name, "no study has labels", problems)
    frame = _ids(raw, name, ("study_id",), problems)
    frame = _dedupe(frame[[*schema.TRAIN_COLUMNS, "csv_line"]], name, ["study_id"], problems)
    long = frame.melt(id_vars=["study_id", "csv_line"], value_vars=list(schema.LABEL_COLUMNS),
                      var_name="column", value_name="severity")
    long["severity"] = long["severity"].str.strip()
    unknown = (long["severity"] != "") & ~long["severity"].isin(schema.SEVERITIES)
    for row in long.loc[unknown].itertuples():
        problems.add(pk.BAD_LABEL, f"{name}: line {row.csv_line}: {row.column} = {row.severity!r} is not "
                     f"one of {list(schema.SEVERITIES)}; treated as missing", path=name,
                     study_id=row.study_id)
    long["severity"] = long["severity"].where(long["severity"].isin(schema.SEVERITIES), None)
    long["severity_code"] = long["severity"].map(schema.SEVERITY_CODE).fillna(schema.IGNORE_INDEX).astype("int8")
    labels = [schema.label_of_column(c) for c in long["column"]]
    long["condition"] = [lab.condition for lab in labels]
    long["level"] = [lab.level for lab in labels]
    order = {c: i for i, c in enumerate(schema.LABEL_COLUMNS)}
    long = long.assign(_order=long["column"].map(order)).sort_values(["study_id", "_order"])
    return long[columns].reset_index(drop=True)


def _empty_labels(columns: list[str]) -> pd.DataFrame:
    dtypes = {"study_id": "int64", "severity_code": "int8"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "object")) for c in columns})


def read_coords(root: Path, problems: Problems) -> pd.DataFrame:
    """train_label_coordinates.csv, validated: ids int64, x, y float, known condition/level."""
    columns = list(schema.COORDS_COLUMNS)
    name = schema.COORDS_CSV
    if not (root / name).is_file():
        if (root / schema.TRAIN_CSV).is_file():
            problems.add(pk.MISSING_CSV, f"{name}: not found in the data root; no coordinates",
                         path=name)
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("x", "y") else
                                          "object" if c in ("condition", "level") else "int64")
                             for c in columns})
    raw = _read(root, name, schema.COORDS_COLUMNS)
    if raw.empty and _has_rows(root / schema.TRAIN_CSV):
        _report_empty(name, "no coordinates", problems)
    frame = _ids(raw, name, ("study_id", "series_id", "instance_number"), problems)
    frame = _dedupe(frame, name, columns, problems)
    frame["condition"] = frame["condition"].str.strip()
    frame["level"] = frame["level"].str.strip()
    x = pd.to_numeric(frame["x"], errors="coerce")
    y = pd.to_numeric(frame["y"], errors="coerce")
    bad = (~frame["condition"].isin(schema.CONDITIONS) | ~frame["level"].isin(schema.LEVELS)
           | ~np.isfinite(x) | ~np.isfinite(y))
    for idx in frame.index[bad]:
        row = frame.loc[idx]
        problems.add(pk.BAD_COORDINATE, f"{name}: line {row['csv_line']}: condition {row['condition']!r}, "
                     f"level {row['level']!r}, x {row['x']!r}, y {row['y']!r} is not a valid "
                     "annotation; row dropped", path=name, study_id=int(row["study_id"]),
                     series_id=int(row["series_id"]))
    frame = frame.assign(x=x.astype(float), y=y.astype(float)).loc[~bad]
    return frame[columns].reset_index(drop=True)
