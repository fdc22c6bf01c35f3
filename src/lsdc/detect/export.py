"""`yolo_export@plane` stage: one plane's annotated slices as a YOLO dataset.

For every annotated instance of the plane's conditions: the slice windowed to uint8
with the series' own percentiles, resized so its longest side is `detect.export.imgsz`, and
a label file with one box per annotated point (square, `detect.export.box_mm[plane]` mm via
PixelSpacing). Studies of fold `detect.export.val_fold` form the validation split.

Writes data/interim/yolo/<plane>/:
  images/{train,val}/<stem>.png, labels/{train,val}/<stem>.txt
  dataset.yaml   ultralytics dataset; `path: .` = the yaml's own folder (train resolves it)
  images.parquet one row per image: stem, split, study/series/instance, rows, cols,
                 pixel spacing, slice_side (sagittal: side of the midline the slice is on; sag_t1: the side
                 annotated on it, else the side of the series' median slice)
  points.parquet one row per annotated point: stem, condition, level, side, x, y (px of
                 the slice at its original size, in the canonical orientation), class
Slices are exported in the canonical orientation of lsdc.orientation (a mirrored series is
turned back), as ROI extraction shows them to the detector; images.parquet's rows, cols and
pixel spacing are those of the turned slice, and its columns transposed, flipped_rows and
flipped_cols say how it was turned.
  export.json    counts
"""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from lsdc import dicom, index, orientation, schema
from lsdc.detect import labels as lab
from lsdc.folds import load_folds
from lsdc.params import Params

log = logging.getLogger(__name__)

TURN_COLUMNS = ("transposed", "flipped_rows", "flipped_cols")  # images.parquet: the slice's lsdc.orientation.Steps



def plane_points(coords: pd.DataFrame, plane: str) -> pd.DataFrame:
    """Usable annotated points of a plane: its own conditions, inside the image, not near (0, 0)."""
    conditions = [c for c, p in schema.PLANE_OF_CONDITION.items() if p == plane]
    keep = coords["plane"].eq(plane) & coords["condition"].isin(conditions)
    for flag, want in (("in_image", True), ("near_origin", False)):
        if flag in coords:
            keep &= coords[flag].fillna(not want).astype(bool) == want
    return coords[keep].copy()


def slice_sides(instances: pd.DataFrame) -> pd.Series:
    """Sagittal slices: 'left' if the slice centre lies on the patient-left (+x) side of the
    series' median slice, else 'right' (index aligned with `instances`)."""
    cx = (
        instances["ipp_x"]
        + instances["cols"] / 2 * instances["pixel_spacing_col"] * instances["iop_rx"]
        + instances["rows"] / 2 * instances["pixel_spacing_row"] * instances["iop_cx"]
    )
    mid = cx.groupby(instances["series_id"]).transform("median")
    return pd.Series(np.where(cx > mid, "left", "right"), index=instances.index)


def _resize(img: np.ndarray, imgsz: int) -> np.ndarray:
    scale = imgsz / max(img.shape)
    size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _export_series(task: dict) -> list[str]:
    """Read one series, window it, write its annotated slices; return the stems written."""
    paths = [Path(task["root"]) / p for p in task["paths"]]
    series = dicom.read_series(paths, sort=False, skip_unreadable=True)  # a damaged file: warned, skipped
    images = dicom.normalise_uint8(series.slices)
    by_instance = {h.instance_number: img for h, img in zip(series.headers, images)}
    out, written = Path(task["out"]), []
    for stem, instance, split, text, turn in task["slices"]:
        img = by_instance.get(instance)
        if img is None:
            log.warning("%s: instance %s not readable, skipped", task["series_dir"], instance)
            continue
        img = orientation.apply_image(img, orientation.Steps(*turn))
        cv2.imwrite(str(out / "images" / split / f"{stem}.png"), _resize(img, task["imgsz"]))
        (out / "labels" / split / f"{stem}.txt").write_text(text)
        written.append(stem)
    return written


def complete_points(pts: pd.DataFrame, max_slices: int, same_level: bool = False) -> pd.DataFrame:
    """Add to every annotated slice the points of the same condition (so the same side)
    annotated on slices of its series at most `max_slices` away, for levels it lacks.

    Readers click each structure on whichever slice shows it best, so a slice's own clicks
    are a partial set; the neighbouring slice shows the same structure at almost the same
    in-plane position. With `same_level` (axial: the detector does not see levels) a point
    is added only to a slice already carrying a point of its level. Added rows have
    completed=True (the nearest slice wins); they are training labels, not evaluated.
    """
    slices = pts.drop_duplicates("stem")[["series_id", "stem", "spatial_rank", "instance_number"]]
    cand = pts.drop(columns=["stem", "instance_number"]).merge(
        slices, on="series_id", suffixes=("_src", ""))
    cand = cand[(cand["spatial_rank_src"] - cand["spatial_rank"]).abs().between(1, max_slices)]
    have = set(zip(pts["stem"], pts["condition"], pts["level"]))
    new = np.array([(s, c, lv) not in have for s, c, lv in zip(cand["stem"], cand["condition"], cand["level"])],
                   dtype=bool)
    if same_level:
        levels = set(zip(pts["stem"], pts["level"]))
        new &= np.array([(st, lv) in levels for st, lv in zip(cand["stem"], cand["level"])], dtype=bool)
    cand = cand[new]
    cand = cand.assign(dist=(cand["spatial_rank_src"] - cand["spatial_rank"]).abs())
    cand = cand.sort_values(["stem", "condition", "level", "dist"]).drop_duplicates(["stem", "condition", "level"])
    cand = cand.assign(completed=True).drop(columns=["spatial_rank_src", "dist"])
    return pd.concat([pts, cand[pts.columns]], ignore_index=True)


def to_canonical(pts: pd.DataFrame, instances: pd.DataFrame, plane: str) -> pd.DataFrame:
    """Points, image size and pixel spacing in the canonical orientation of their slice
    (lsdc.orientation: what ROI extraction shows the detector), plus the slice's `turn`
    (transpose, flip rows, flip cols) that the exported PNG gets."""
    key = ["study_id", "series_id", "instance_number"]
    geo = instances.drop_duplicates(key).set_index(key)
    steps = {k: orientation.canonical_steps(dicom.SliceGeometry.from_instance_row(r._asdict()), plane)
             for k, r in zip(geo.index, geo.itertuples(index=False))}
    turn = [steps.get(k, orientation.NONE) for k in zip(*(pts[c] for c in key))]
    pts = pts.copy()
    xy = [orientation.apply_xy(x, y, t, r, c) for x, y, t, r, c in zip(pts["x"], pts["y"], turn, pts["rows"], pts["cols"])]
    pts["x"], pts["y"] = [float(a) for a, _ in xy], [float(b) for _, b in xy]
    tr = np.array([t.transpose for t in turn], bool)
    for a, b in (("rows", "cols"), ("pixel_spacing_row", "pixel_spacing_col")):
        pts[a], pts[b] = np.where(tr, pts[b], pts[a]), np.where(tr, pts[a], pts[b])
    pts["turn"] = [(t.transpose, t.flip_rows, t.flip_cols) for t in turn]
    return pts


def build_tables(
    coords: pd.DataFrame, instances: pd.DataFrame, folds: pd.DataFrame, plane: str, p: Params
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(images, points) tables of the plane's export, before any pixels are read."""
    pts = plane_points(coords, plane)
    fold_of = folds.set_index("study_id")["fold"]
    pts["fold"] = pts["study_id"].map(fold_of)
    no_fold = pts["fold"].isna()
    if no_fold.any():
        log.warning("%s: %d points of studies without a fold skipped", plane, int(no_fold.sum()))
        pts = pts[~no_fold]
    inst = instances.assign(slice_side=slice_sides(instances))
    key = ["study_id", "series_id", "instance_number"]
    pts = pts.merge(inst[key + ["path", "slice_side", "spatial_rank"]], on=key, how="inner")
    pts = to_canonical(pts, inst, plane)
    pts["split"] = np.where(pts["fold"] == p.detect.export.val_fold, "val", "train")
    pts["stem"] = [f"{s}_{r}_{i}" for s, r, i in zip(pts["study_id"], pts["series_id"], pts["instance_number"])]
    pts["completed"] = False
    if p.detect.export.complete_slices > 0:
        pts = complete_points(pts, p.detect.export.complete_slices, same_level=plane == "ax_t2")
    pts["side"] = [lab.point_key(plane, c, lv)[1] for c, lv in zip(pts["condition"], pts["level"])]
    pts["class"] = [lab.class_of_point(plane, p.detect.export.classes, c, lv) for c, lv in zip(pts["condition"], pts["level"])]
    if plane == "sag_t1":  # a foramen slice's side is the side its reader annotated, when it has one;
        # the series-median guess is wrong where scoliosis moves the spine off the series centre
        own = pts[~pts["completed"]].groupby("stem")["side"].agg(lambda s: s.mode().iat[0])
        pts["slice_side"] = pts["stem"].map(own).fillna(pts["slice_side"])
    images = (
        pts.groupby("stem", sort=True)
        .agg(split=("split", "first"), study_id=("study_id", "first"), series_id=("series_id", "first"),
             instance_number=("instance_number", "first"), rows=("rows", "first"), cols=("cols", "first"),
             pixel_spacing_row=("pixel_spacing_row", "first"), pixel_spacing_col=("pixel_spacing_col", "first"),
             slice_side=("slice_side", "first"), path=("path", "first"), turn=("turn", "first"))
        .reset_index()
    )
    points = pts[["stem", "split", "condition", "level", "side", "x", "y", "class", "completed"]].reset_index(drop=True)
    return images, points


def label_text(points: pd.DataFrame, image: pd.Series, box_mm: float) -> str:
    w, h = lab.box_px(box_mm, image["pixel_spacing_row"], image["pixel_spacing_col"])
    yolo = lab.to_yolo(points["x"], points["y"], w, h, image["cols"], image["rows"])
    return lab.format_label_lines(points["class"], yolo)


def export_plane(plane: str, p: Params, index_dir: Path, folds_path: Path, out: Path) -> dict:
    """Write the plane's YOLO dataset to `out` (replaced completely); return counts."""
    tables = index.read(index_dir, ("coords", "instances"),
                        extra={"coords": ("in_image", "near_origin", "pixel_spacing_row", "pixel_spacing_col"),
                               "instances": index.GEOMETRY_COLUMNS})
    coords, instances = tables["coords"], tables["instances"]
    images, points = build_tables(coords, instances, load_folds(folds_path), plane, p)
    if images.empty:
        raise ValueError(f"{index.table_path(index_dir, 'coords')}: no usable {plane} annotations to export")
    if out.exists():
        shutil.rmtree(out)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
    box_mm = getattr(p.detect.export.box_mm, plane)
    pts_by_stem = dict(tuple(points.groupby("stem")))
    tasks = []
    all_paths = instances.groupby("series_id")["path"].apply(list)
    for series_id, group in images.groupby("series_id"):
        slices = [(r.stem, r.instance_number, r.split, label_text(pts_by_stem[r.stem], r._asdict(), box_mm),
                   r.turn)
                  for r in group.itertuples()]
        tasks.append({"root": p.data.root, "paths": all_paths[series_id], "slices": slices,
                      "out": str(out), "imgsz": p.detect.export.imgsz, "series_dir": f"series {series_id}"})
    written: set[str] = set()
    if p.runtime.workers > 0 and len(tasks) > 1:
        with ProcessPoolExecutor(p.runtime.workers) as pool:
            for stems in pool.map(_export_series, tasks):
                written.update(stems)
    else:
        for task in tasks:
            written.update(_export_series(task))
    images = images[images["stem"].isin(written)].drop(columns="path")
    images = images.assign(**{c: [bool(t[k]) for t in images["turn"]] for k, c in enumerate(TURN_COLUMNS)}
                           ).drop(columns="turn")
    points = points[points["stem"].isin(written)]
    images.to_parquet(out / "images.parquet", index=False)
    points.to_parquet(out / "points.parquet", index=False)
    names = lab.class_names(plane, p.detect.export.classes)
    dataset = {"path": ".", "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    (out / "dataset.yaml").write_text(
        "# `path: .` means this file's folder; lsdc train-detector resolves it at train time\n"
        + yaml.safe_dump(dataset, sort_keys=False)
    )
    counts = {
        "plane": plane, "classes": p.detect.export.classes,
        "images": {s: int((images["split"] == s).sum()) for s in ("train", "val")},
        "points": {s: int((points["split"] == s).sum()) for s in ("train", "val")},
        "studies": {s: int(images.loc[images["split"] == s, "study_id"].nunique()) for s in ("train", "val")},
    }
    (out / "export.json").write_text(json.dumps(counts, indent=2) + "\n")
    return counts
