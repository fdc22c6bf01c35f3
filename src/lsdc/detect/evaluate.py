"""Localisation in millimetres: for every ground-truth point of the validation slices,
the point the pipeline assigned to the same level/side (after the anatomy step) and
its distance.

Measures: share of points right and within `within_mm`, median and 95th-percentile
error (mm, over points whose level/side was found), wrong-class rate (a point of
another level/side lies within `within_mm` of the truth while the right one does not),
slices with a missing level/side, and slices with a duplicated one (two different
levels/sides placed on the same structure, closer than `within_mm`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lsdc.detect import infer
from lsdc.params import Detect

log = logging.getLogger(__name__)


def _key(df: pd.DataFrame) -> pd.Series:
    return df["level"].fillna("").astype(str) + "|" + df["side"].fillna("").astype(str)


def match_points(gt: pd.DataFrame, pred: pd.DataFrame, within_mm: float = 5.0) -> pd.DataFrame:
    """gt with, per point: dist_mm (to the nearest prediction of the same level/side on its
    slice; NaN when none), right (dist_mm <= within_mm), missing (no such prediction) and
    wrong_class (only a prediction of another level/side lies within within_mm)."""
    gt = gt.assign(key=_key(gt)).reset_index(drop=True)
    pred = pred.assign(key=_key(pred)).reset_index(drop=True)
    pred_by_stem = dict(tuple(pred.groupby("stem"))) if len(pred) else {}
    dist = np.full(len(gt), np.nan)
    wrong = np.zeros(len(gt), bool)
    for i, g in gt.iterrows():
        p = pred_by_stem.get(g["stem"])
        if p is None:
            continue
        d = np.hypot((p["x"].to_numpy() - g["x"]) * g["pixel_spacing_col"],
                     (p["y"].to_numpy() - g["y"]) * g["pixel_spacing_row"])
        same = (p["key"] == g["key"]).to_numpy()
        if same.any():
            dist[i] = d[same].min()
        if not (same & (d <= within_mm)).any() and (~same & (d <= within_mm)).any():
            wrong[i] = True
    return gt.assign(dist_mm=dist, right=dist <= within_mm, missing=np.isnan(dist), wrong_class=wrong)


def evaluate_points(gt: pd.DataFrame, pred: pd.DataFrame, within_mm: float = 5.0) -> dict:
    """gt: stem, level, side, x, y, pixel_spacing_row, pixel_spacing_col (one row per point);
    pred: stem, level, side, x, y (px of the same original slice)."""
    gt = match_points(gt, pred, within_mm)
    pred = pred.assign(key=_key(pred)).reset_index(drop=True)
    pred_by_stem = dict(tuple(pred.groupby("stem"))) if len(pred) else {}
    dist, right, wrong = gt["dist_mm"].to_numpy(), gt["right"].to_numpy(), gt["wrong_class"].to_numpy()
    found = ~gt["missing"].to_numpy()
    dup = 0
    spacing = gt.groupby("stem")[["pixel_spacing_row", "pixel_spacing_col"]].first()
    for stem, p in pred_by_stem.items():
        if stem not in spacing.index or len(p) < 2:
            continue
        sr, sc = spacing.loc[stem]
        xy = p[["x", "y"]].to_numpy() * [sc, sr]
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        other = p["key"].to_numpy()[:, None] != p["key"].to_numpy()[None, :]
        dup += bool((other & (d < within_mm)).any())
    n_slices = gt["stem"].nunique()
    return {
        "loc_points": int(len(gt)),
        "loc_slices": int(n_slices),
        "loc_within_mm": float(within_mm),
        "loc_right_within": float(right.mean()) if len(gt) else float("nan"),
        "loc_median_mm": float(np.nanmedian(dist)) if found.any() else float("nan"),
        "loc_p95_mm": float(np.nanpercentile(dist, 95)) if found.any() else float("nan"),
        "loc_wrong_class_rate": float(wrong.mean()) if len(gt) else float("nan"),
        "loc_missing_rate": float((~found).mean()) if len(gt) else float("nan"),
        "loc_slices_all_right": float(gt.groupby("stem")["right"].all().mean()) if n_slices else float("nan"),
        "loc_slices_missing": int(gt.groupby("stem")["missing"].any().sum()),
        "loc_slices_duplicated": int(dup),
    }


def read_export(yolo_dir: Path, images: pd.DataFrame) -> tuple[list[np.ndarray], list[tuple[float, float]], np.ndarray]:
    """The exported slices (PNG at export size) of `images`, their pixel spacing at that
    size (row, col mm) and their export scale (export px per original px)."""
    arrays, spacings, scales = [], [], []
    for r in images.itertuples():
        path = yolo_dir / "images" / r.split / f"{r.stem}.png"
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(f"{path}: exported slice missing or unreadable")
        s = img.shape[1] / r.cols  # export scale (same on both axes)
        arrays.append(img)
        spacings.append((r.pixel_spacing_row / s, r.pixel_spacing_col / s))
        scales.append(s)
    return arrays, spacings, np.asarray(scales, float)


def to_original(pts: pd.DataFrame, images: pd.DataFrame, scales: np.ndarray) -> pd.DataFrame:
    """Points of infer.points_table on exported slices -> original-slice px, with their stem."""
    pts = pts.copy()
    scale = np.asarray(scales)[pts["image"].to_numpy(int)] if len(pts) else np.zeros(0)
    pts["x"], pts["y"] = pts["x"] / scale, pts["y"] / scale
    pts["stem"] = images["stem"].to_numpy()[pts["image"].to_numpy(int)] if len(pts) else []
    return pts


def predict_export(model, yolo_dir: Path, images: pd.DataFrame, plane: str, cfg: Detect,
                   device: str = "cpu") -> pd.DataFrame:
    """Predicted points on exported slices (PNG at export size), in original-slice px."""
    arrays, spacings, scales = read_export(yolo_dir, images)
    sides = list(images["slice_side"]) if plane == "sag_t1" else None
    pts = infer.predict_points(model, arrays, spacings, plane, cfg, sides=sides, device=device)
    return to_original(pts, images, scales)


# ultralytics' fitness: the weights of precision, recall, mAP50, mAP50-95 it picks best.pt by
FITNESS = {"metrics/precision(B)": 0.0, "metrics/recall(B)": 0.0, "metrics/mAP50(B)": 0.1, "metrics/mAP50-95(B)": 0.9}


def best_epoch_metrics(results_csv: Path) -> dict:
    """mAP50, mAP50-95, precision, recall of the epoch best.pt was taken from (ultralytics' fitness)."""
    curves = pd.read_csv(results_csv)
    curves.columns = [c.strip() for c in curves.columns]
    missing = [c for c in FITNESS if c not in curves]
    if missing:
        raise ValueError(f"{results_csv}: per-epoch curves lack {missing}")
    fitness = sum(w * curves[c].fillna(0.0) for c, w in FITNESS.items())
    row = curves.loc[fitness.idxmax()]
    return {"best_epoch": int(row["epoch"]), "mAP50": float(row["metrics/mAP50(B)"]),
            "mAP50-95": float(row["metrics/mAP50-95(B)"]), "precision": float(row["metrics/precision(B)"]),
            "recall": float(row["metrics/recall(B)"])}


def evaluate_plane(weights: Path, yolo_dir: Path, results_csv: Path, plane: str, cfg: Detect,
                   device: str = "cpu") -> dict:
    """All measurements of one trained detector: its best epoch's mAP and localisation in mm."""
    from lsdc.detect import infer

    model = infer.load_detector(weights)
    loc, _ = evaluate_split(model, yolo_dir, plane, cfg, device=device)
    return {"plane": plane, "classes": cfg.export.classes, **best_epoch_metrics(results_csv), **loc}


def evaluate_split(model, yolo_dir: Path, plane: str, cfg: Detect, split: str = "val",
                   device: str = "cpu") -> tuple[dict, pd.DataFrame]:
    """Localisation metrics of the detector on one split of an exported plane dataset."""
    images = pd.read_parquet(yolo_dir / "images.parquet")
    images = images[images["split"] == split].reset_index(drop=True)
    points = pd.read_parquet(yolo_dir / "points.parquet")
    points = points[points["split"] == split]
    if "completed" in points:  # measure on the readers' own clicks only
        points = points[~points["completed"].astype(bool)]
    if images.empty:
        raise ValueError(f"{yolo_dir / 'images.parquet'}: no {split} images to evaluate")
    pred = predict_export(model, yolo_dir, images, plane, cfg, device)
    gt = points.merge(images[["stem", "pixel_spacing_row", "pixel_spacing_col"]], on="stem")
    if plane == "ax_t2":
        gt = gt.assign(level=None)
    metrics = evaluate_points(gt, pred, cfg.evaluate.within_mm)
    metrics["loc_ambiguous_slices"] = int(pred.loc[pred["status"] != "ok", "stem"].nunique()) if len(pred) else 0
    return metrics, pred
