"""metrics/rois.json: coverage of the ROI store and, on train studies, how close each
crop centre lies to the annotated point (the only place coordinates are read)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import index as ingest_index
from lsdc import schema
from lsdc.rois import DETECTED, IMPUTED, MISSING

log = logging.getLogger(__name__)

WITHIN_MM = 5.0


def coverage(index: pd.DataFrame) -> dict:
    """Studies total / fully detected, crops by source overall, per plane and per level."""
    src = index["source"].astype(str)
    per_study = src.eq(DETECTED).groupby(index["study_id"]).all()
    out = {
        "studies": {
            "total": int(index["study_id"].nunique()),
            "train": int(index.loc[index["split"] == "train", "study_id"].nunique()),
            "test": int(index.loc[index["split"] == "test", "study_id"].nunique()),
            "fully_detected": int(per_study.sum()),
            "with_missing": int(src.eq(MISSING).groupby(index["study_id"]).any().sum()),
        },
        "crops": _counts(src),
        "by_plane": {},
    }
    for plane in schema.PLANES:
        sel = index["plane"] == plane
        entry = _counts(src[sel])
        entry["by_level"] = {schema.slug(lv): _counts(src[sel & (index["level"] == lv)]) for lv in schema.LEVELS}
        out["by_plane"][plane] = entry
    return out


def _counts(src: pd.Series) -> dict:
    n = int(len(src))
    c = {s: int(src.eq(s).sum()) for s in (DETECTED, IMPUTED, MISSING)}
    return {"total": n, **c, "detected_share": round(c[DETECTED] / n, 4) if n else None}


def structure_key(condition: str) -> tuple[str, str | None]:
    """Annotated condition -> the (plane, side) of the crop showing that structure."""
    side = schema.Label(condition, schema.LEVELS[0]).side
    return schema.PLANE_OF_CONDITION[condition], side


def usable_points(coords: pd.DataFrame) -> pd.DataFrame:
    """Annotated points with a patient position, inside their image, not a misplaced click,
    of a known condition and level; with the plane and side ('' for the canal) of their crop."""
    pts = coords.copy()
    keep = pts[["px", "py", "pz"]].notna().all(axis=1)
    for flag, want in (("in_image", True), ("near_origin", False)):
        if flag in pts:
            keep &= pts[flag].fillna(not want).astype(bool) == want
    pts = pts[keep & pts["condition"].isin(schema.CONDITIONS) & pts["level"].isin(schema.LEVELS)]
    keys = [structure_key(c) for c in pts["condition"]]
    return pts.assign(plane=[k[0] for k in keys], side=[k[1] or "" for k in keys])


def distances(index: pd.DataFrame, coords: pd.DataFrame) -> pd.DataFrame:
    """One row per usable annotated point of a train study in the store: the 3-D distance
    (mm) to its crop centre at slice offset 0 (inf when the crop is missing)."""
    pts = usable_points(coords)
    pts = pts[pts["study_id"].isin(index.loc[index["split"] == "train", "study_id"])]
    centre = index[index["slice_offset"] == 0].assign(side=lambda d: d["side"].fillna("").astype(str))
    centre = centre[["study_id", "plane", "level", "side", "px", "py", "pz", "source"]]
    merged = pts.merge(centre, on=["study_id", "plane", "level", "side"], how="left", suffixes=("_true", ""))
    d = np.sqrt(sum((merged[f"p{a}"] - merged[f"p{a}_true"]) ** 2 for a in "xyz")).to_numpy(float)
    merged["distance_mm"] = np.where(np.isfinite(d), d, np.inf)
    return merged[["study_id", "plane", "level", "side", "condition", "source", "distance_mm"]]


def distance_summary(dist: pd.DataFrame) -> dict:
    """Median, 95th percentile (over located points) and share within 5 mm (over all)."""
    def summary(d: np.ndarray) -> dict:
        finite = d[np.isfinite(d)]
        return {
            "n": int(len(d)),
            "located": int(len(finite)),
            "median": round(float(np.median(finite)), 3) if len(finite) else None,
            "p95": round(float(np.percentile(finite, 95)), 3) if len(finite) else None,
            "within_5mm": round(float(np.mean(d <= WITHIN_MM)), 4) if len(d) else None,
        }

    out = summary(dist["distance_mm"].to_numpy(float))
    out["by_plane"] = {p: summary(dist.loc[dist["plane"] == p, "distance_mm"].to_numpy(float))
                       for p in schema.PLANES}
    out["by_source"] = {s: summary(dist.loc[dist["source"] == s, "distance_mm"].to_numpy(float))
                        for s in (DETECTED, IMPUTED)}
    return out


def build_metrics(index: pd.DataFrame, coords_path: Path | None, extra: dict | None = None,
                  detector_val: set[int] | None = None) -> dict:
    """Coverage and distances; `detector_val`: the studies that validated the detectors (their
    distances again apart: the detectors never trained on them)."""
    metrics = coverage(index)
    if coords_path is not None and Path(coords_path).exists():
        dist = distances(index, ingest_index.read_table(Path(coords_path).parent, "coords"))
        metrics["distance_mm"] = distance_summary(dist)
        if detector_val:
            val = distance_summary(dist[dist["study_id"].isin(detector_val)])
            metrics["distance_mm"]["detector_val_fold"] = {k: val[k] for k in ("n", "within_5mm", "by_plane")}
    else:
        log.info("no coordinates table (%s): distance metrics skipped", coords_path)
    metrics.update(extra or {})
    return metrics
