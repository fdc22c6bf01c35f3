"""build_index: CSVs + DICOM headers of one data root -> the validated index tables."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.index import IndexTables
from lsdc.ingest import csvs, scan
from lsdc.ingest import problems as pk
from lsdc.ingest.problems import Problems

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "test")
IMAGES_DIR = {"train": schema.TRAIN_IMAGES, "test": schema.TEST_IMAGES}

INSTANCE_DTYPES: dict[str, str] = {
    "study_id": "int64", "series_id": "int64", "split": "str", "instance_number": "int64",
    "path": "str", "rows": "int64", "cols": "int64",
    "pixel_spacing_row": "float64", "pixel_spacing_col": "float64",
    "ipp_x": "float64", "ipp_y": "float64", "ipp_z": "float64",
    "iop_rx": "float64", "iop_ry": "float64", "iop_rz": "float64",
    "iop_cx": "float64", "iop_cy": "float64", "iop_cz": "float64",
    "transfer_syntax": "str", "bits_stored": "Int64", "photometric": "str",
    "slice_thickness": "float64", "spacing_between_slices": "float64",
    "normal_pos": "float64", "spatial_rank": "int64", "geometry_ok": "bool",
    "frame_of_reference_uid": "string",  # nullable: the tag is optional
}
SERIES_COLUMNS: tuple[str, ...] = (
    "study_id", "series_id", "split", "series_description", "plane", "n_instances", "rows",
    "cols", "mixed_shapes", "pixel_spacing_row", "pixel_spacing_col", "in_csv", "on_disk",
)
STUDY_COLUMNS: tuple[str, ...] = (
    "study_id", "split", "n_series", "has_sag_t1", "has_sag_t2", "has_ax_t2", "n_graded",
    "n_coords", "on_disk", "n_problems",
)
COORD_COLUMNS: tuple[str, ...] = (
    *schema.COORDS_COLUMNS, "plane", "rows", "cols", "pixel_spacing_row", "pixel_spacing_col",
    "px", "py", "pz", "in_image", "near_origin", "severity_code", "geometry_ok",
)


def build_index(root: Path, workers: int = 0, near_origin_px: float = 10.0,
                allow_test_only: bool = False) -> IndexTables:
    """Validate an RSNA-layout root into the index tables; problems go to the quarantine.

    Raises csvs.NotRsnaRootError when the root lacks train.csv (unless
    ``allow_test_only`` and test_series_descriptions.csv exists) or every
    *_series_descriptions.csv. Reads DICOM headers only, in ``workers`` processes.
    """
    root = Path(root)
    csvs.check_layout(root, allow_test_only)
    problems = Problems()
    labels = csvs.read_labels(root, problems)
    coords = csvs.read_coords(root, problems)
    series_csv = _series_csv(root, problems)
    csv_studies = {
        "train": set(labels["study_id"]) | set(coords["study_id"])
        | set(series_csv.loc[series_csv["split"] == "train", "study_id"]),
        "test": set(series_csv.loc[series_csv["split"] == "test", "study_id"]),
    }
    tasks = _study_tasks(root, csv_studies, problems)
    scans = scan.scan_all(tasks, workers)
    for s in scans:
        problems.extend(s.problems)
    instances = _instances_table([row for s in scans for row in s.instances])
    disk_series = pd.DataFrame([{**row, "split": t.split} for s, t in zip(scans, tasks) for row in s.series],
                               columns=["study_id", "series_id", "split", "n_instances", "rows", "cols",
                                        "mixed_shapes", "pixel_spacing_row", "pixel_spacing_col"])
    disk_studies = {s: {t.study_id for t in tasks if t.split == s} for s in SPLITS}
    series = _series_table(series_csv, disk_series, csv_studies, disk_studies, problems)
    _unlabelled_studies(root, labels, csv_studies["train"], disk_studies["train"], problems)
    coords = _coords_table(coords, series, instances, labels, disk_studies["train"], near_origin_px, problems)
    quarantine = problems.table()
    studies = _studies_table(csv_studies, disk_studies, series, labels, coords, quarantine)
    log.info("ingest %s: %d studies, %d series, %d instances, %d coords, %d quarantine rows",
             root, len(studies), len(series), len(instances), len(coords), len(quarantine))
    return IndexTables(studies, series, instances, labels, coords, quarantine)


def _series_csv(root: Path, problems: Problems) -> pd.DataFrame:
    train = csvs.read_series_csv(root, schema.TRAIN_SERIES_CSV, "train", problems)
    test = csvs.read_series_csv(root, schema.TEST_SERIES_CSV, "test", problems)
    if (root / schema.TRAIN_CSV).is_file() and not (root / schema.TRAIN_SERIES_CSV).is_file():
        problems.add(pk.MISSING_CSV, f"{schema.TRAIN_SERIES_CSV}: not found; train series have no "
                     "description or plane", path=schema.TRAIN_SERIES_CSV)
    both = set(train["study_id"]) & set(test["study_id"])
    for study in sorted(both):
        problems.add(pk.SPLIT_CONFLICT, f"study {study} is listed in both {schema.TRAIN_SERIES_CSV} "
                     f"and {schema.TEST_SERIES_CSV}; kept as train", study_id=study)
    test = test.loc[~test["study_id"].isin(both)]
    frames = [f for f in (train, test) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else train


def _study_tasks(root: Path, csv_studies: dict[str, set[int]], problems: Problems) -> list[scan.StudyFolder]:
    tasks: list[scan.StudyFolder] = []
    seen: set[int] = set()
    for split in SPLITS:
        found, rows = scan.list_studies(root, IMAGES_DIR[split], split)
        problems.extend(rows)
        for task in found:
            if task.study_id in seen or (split == "test" and task.study_id in csv_studies["train"]):
                problems.add(pk.SPLIT_CONFLICT, f"{IMAGES_DIR[split]}/{task.name}: study "
                             f"{task.study_id} is also a train study; its test folder is not read",
                             path=f"{IMAGES_DIR[split]}/{task.name}", study_id=task.study_id)
                continue
            seen.add(task.study_id)
            tasks.append(task)
    return tasks


def _instances_table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(INSTANCE_DTYPES))
    frame = frame.astype(INSTANCE_DTYPES)
    return frame.sort_values(["study_id", "series_id", "spatial_rank"]).reset_index(drop=True)


def _series_table(series_csv: pd.DataFrame, disk: pd.DataFrame, csv_studies: dict[str, set[int]],
                  disk_studies: dict[str, set[int]], problems: Problems) -> pd.DataFrame:
    merged = series_csv.merge(disk, on=["study_id", "series_id"], how="outer",
                              suffixes=("", "_disk"), indicator=True)
    merged["in_csv"] = merged["_merge"] != "right_only"
    merged["on_disk"] = merged["_merge"] != "left_only"
    merged["split"] = merged["split"].fillna(merged["split_disk"])
    on_disk_any = disk_studies["train"] | disk_studies["test"]
    for split in SPLITS:
        for study in sorted(csv_studies[split] - on_disk_any):
            problems.add(pk.STUDY_NOT_ON_DISK, f"study {study} is in the CSVs but has no folder "
                         f"{IMAGES_DIR[split]}/{study}/ (images not downloaded?)",
                         path=f"{IMAGES_DIR[split]}/{study}", study_id=study)
        for study in sorted(disk_studies[split] - csv_studies["train"] - csv_studies["test"]):
            problems.add(pk.STUDY_NOT_IN_CSV, f"{IMAGES_DIR[split]}/{study}: study folder on disk "
                         "that no CSV lists", path=f"{IMAGES_DIR[split]}/{study}", study_id=study)
    for row in merged.itertuples():
        folder = f"{IMAGES_DIR[row.split]}/{row.study_id}/{row.series_id}"
        if row.in_csv and not row.on_disk and row.study_id in on_disk_any:
            problems.add(pk.SERIES_NOT_ON_DISK, f"series {row.series_id} is in the CSVs but {folder}/ "
                         "does not exist", path=folder, study_id=row.study_id, series_id=row.series_id)
        elif row.on_disk and not row.in_csv and row.study_id in csv_studies["train"] | csv_studies["test"]:
            problems.add(pk.SERIES_NOT_IN_CSV, f"{folder}: series folder not listed in "
                         "*_series_descriptions.csv; no description or plane",
                         path=folder, study_id=row.study_id, series_id=row.series_id)
    merged["n_instances"] = merged["n_instances"].fillna(0).astype("int64")
    merged["mixed_shapes"] = merged["mixed_shapes"].fillna(False).astype(bool)
    merged = merged.astype({"rows": "Int64", "cols": "Int64", "pixel_spacing_row": "float64",
                            "pixel_spacing_col": "float64", "series_description": "object",
                            "plane": "object"})
    merged["series_description"] = merged["series_description"].where(merged["series_description"].notna(), None)
    merged["plane"] = merged["plane"].where(merged["plane"].notna(), None)
    return merged[list(SERIES_COLUMNS)].sort_values(["study_id", "series_id"]).reset_index(drop=True)


def _unlabelled_studies(root: Path, labels: pd.DataFrame, csv_train: set[int], disk_train: set[int],
                        problems: Problems) -> None:
    """A train study (series CSV or coordinates CSV) without a train.csv row:
    one row each, unless train.csv is absent (test-only root) or holds no row at all
    (reported once as empty_csv)."""
    if labels.empty:
        return
    for study in sorted(csv_train - set(labels["study_id"])):
        where = f"{IMAGES_DIR['train']}/{study}" if study in disk_train else None
        problems.add(pk.STUDY_NOT_IN_LABELS, f"train study {study} is listed in the CSVs"
                     f"{' and has images in ' + where + '/' if where else ''} but has no row in "
                     f"{schema.TRAIN_CSV}; it has no labels", path=where or schema.TRAIN_CSV, study_id=study)


def _coords_table(coords: pd.DataFrame, series: pd.DataFrame, instances: pd.DataFrame,
                  labels: pd.DataFrame, disk_train: set[int], near_origin_px: float,
                  problems: Problems) -> pd.DataFrame:
    key = ["study_id", "series_id", "instance_number"]
    geo_cols = ["rows", "cols", "pixel_spacing_row", "pixel_spacing_col", "ipp_x", "ipp_y", "ipp_z",
                "iop_rx", "iop_ry", "iop_rz", "iop_cx", "iop_cy", "iop_cz", "path"]
    inst = instances.drop_duplicates(key)[key + geo_cols]
    out = coords.merge(series[["study_id", "series_id", "plane", "on_disk"]], on=["study_id", "series_id"],
                       how="left", indicator="series_match").merge(inst, on=key, how="left", indicator="instance_match")
    codes = labels[["study_id", "condition", "level", "severity_code"]]
    out = out.merge(codes, on=["study_id", "condition", "level"], how="left")
    out["severity_code"] = out["severity_code"].fillna(schema.IGNORE_INDEX).astype("int8")
    x, y = out["x"].to_numpy(float), out["y"].to_numpy(float)
    rs, cs = out["pixel_spacing_row"].to_numpy(float), out["pixel_spacing_col"].to_numpy(float)
    ipp = out[["ipp_x", "ipp_y", "ipp_z"]].to_numpy(float)
    r_dir = out[["iop_rx", "iop_ry", "iop_rz"]].to_numpy(float)
    c_dir = out[["iop_cx", "iop_cy", "iop_cz"]].to_numpy(float)
    patient = ipp + (x * cs)[:, None] * r_dir + (y * rs)[:, None] * c_dir
    out["px"], out["py"], out["pz"] = patient[:, 0], patient[:, 1], patient[:, 2]
    has_instance = (out["instance_match"] == "both").to_numpy()
    rows, cols = out["rows"].to_numpy(float), out["cols"].to_numpy(float)
    out["in_image"] = has_instance & (x >= 0) & (y >= 0) & (x < cols) & (y < rows)
    out["near_origin"] = np.hypot(x, y) < near_origin_px
    out["geometry_ok"] = has_instance & np.isfinite(patient).all(axis=1)
    for row in out.itertuples():
        where = f"{schema.COORDS_CSV}: study {row.study_id} series {row.series_id} instance " \
                f"{row.instance_number} {row.condition} {row.level}"
        path = row.path if isinstance(row.path, str) else schema.COORDS_CSV
        ids = dict(path=path, study_id=row.study_id, series_id=row.series_id)
        if row.series_match == "left_only":
            problems.add(pk.COORD_UNKNOWN_SERIES, f"{where}: series is neither in a CSV nor on disk; "
                         "flagged", **ids)
        elif row.instance_match != "both" and row.on_disk:
            problems.add(pk.COORD_NO_INSTANCE, f"{where}: instance file "
                         f"{IMAGES_DIR['train']}/{row.study_id}/{row.series_id}/{row.instance_number}.dcm "
                         "not found or unreadable; flagged", **ids)
        elif row.instance_match == "both" and not row.in_image:
            problems.add(pk.COORD_OUTSIDE_IMAGE, f"{where}: (x={row.x:g}, y={row.y:g}) lies outside the "
                         f"{int(row.cols)}x{int(row.rows)} (cols x rows) image {row.path}; flagged", **ids)
        if row.instance_match == "both" and not row.geometry_ok:
            problems.add(pk.COORD_NO_GEOMETRY, f"{where}: {row.path} lacks ImagePositionPatient, "
                         "ImageOrientationPatient or PixelSpacing: no patient position (px, py, pz NaN, "
                         "geometry_ok false); the pixel annotation is kept", **ids)
        if row.near_origin:
            problems.add(pk.COORD_NEAR_ORIGIN, f"{where}: (x={row.x:g}, y={row.y:g}) is within "
                         f"{near_origin_px:g} px of (0, 0), a misplaced click; flagged", **ids)
    out = out.astype({"rows": "Int64", "cols": "Int64", "plane": "object"})
    out["plane"] = out["plane"].where(out["plane"].notna(), None)
    return out[list(COORD_COLUMNS)].reset_index(drop=True)


def _studies_table(csv_studies: dict[str, set[int]], disk_studies: dict[str, set[int]],
                   series: pd.DataFrame, labels: pd.DataFrame, coords: pd.DataFrame,
                   quarantine: pd.DataFrame) -> pd.DataFrame:
    split_of: dict[int, str] = {}
    for split in reversed(SPLITS):  # train wins over test
        for study in csv_studies[split] | disk_studies[split]:
            split_of[study] = split
    ids = sorted(split_of)
    frame = pd.DataFrame({"study_id": np.array(ids, dtype=np.int64),
                          "split": [split_of[s] for s in ids]})
    counts = series.groupby("study_id").size()
    frame["n_series"] = frame["study_id"].map(counts).fillna(0).astype("int64")
    for plane in schema.PLANES:
        have = set(series.loc[series["plane"] == plane, "study_id"])
        frame[f"has_{plane}"] = frame["study_id"].isin(have)
    graded = labels.loc[labels["severity_code"] != schema.IGNORE_INDEX].groupby("study_id").size()
    frame["n_graded"] = frame["study_id"].map(graded).fillna(0).astype("int64")
    frame["n_coords"] = frame["study_id"].map(coords.groupby("study_id").size()).fillna(0).astype("int64")
    frame["on_disk"] = frame["study_id"].isin(disk_studies["train"] | disk_studies["test"])
    per_study = quarantine.dropna(subset=["study_id"]).groupby("study_id").size()
    frame["n_problems"] = frame["study_id"].map(per_study).fillna(0).astype("int64")
    return frame[list(STUDY_COLUMNS)]


def index_metrics(index: IndexTables) -> dict:
    """Counts for metrics/ingest.json: per split, coordinates, and quarantine per kind."""
    def per_split(frame: pd.DataFrame) -> dict[str, int]:
        return {s: int((frame["split"] == s).sum()) for s in SPLITS}
    kinds = index.quarantine["kind"].value_counts()
    return {
        "studies": per_split(index.studies),
        "series": per_split(index.series),
        "instances": per_split(index.instances),
        "studies_on_disk": int(index.studies["on_disk"].sum()),
        "label_rows": len(index.labels),
        "coords": len(index.coords),
        "coords_in_image": int(index.coords["in_image"].sum()),
        "coords_near_origin": int(index.coords["near_origin"].sum()),
        "quarantine": {"total": len(index.quarantine), **{k: int(kinds.get(k, 0)) for k in pk.KINDS}},
    }


def write_metrics(index: IndexTables, path: Path) -> dict:
    """Write ``index_metrics(index)``: headline to ``path``, the rest beside it; returns the full dict."""
    from lsdc import headline

    metrics = index_metrics(index)
    headline.write("ingest", metrics, path)
    return metrics
