"""The level-naming and side table on a stress dataset (issue 12, item 4): `lsdc evaluate-naming`.

The stage generates its own small stress-profile dataset (lsdc.synth with
`synth.stress`, `naming.studies` studies from `naming.seed`), ingests it, exports every
study's annotated slices of the three planes as validation slices (lsdc.detect.export)
and measures:

- alone (a): the naming step with boxes at the true annotated points of every sagittal
  series (lsdc.detect.naming_check: the five canal points of a Sagittal T2/STIR series,
  one side's five foramina of a Sagittal T1 series) -> share of series named all right,
  by bend and field-of-view bin, per scenario (true points, L5/S1 dropped, a disc-like
  box below L5/S1, a thoracic box above L1/L2); silent = named wrong with status 'ok'.
- detected (b): the detectors' boxes on the exported sagittal slices through the same
  anatomy step as evaluate_detector -> share of slices with every annotated point's level
  right and within `detect.evaluate.within_mm`, by the same bins (sag_t1 slices whose
  export side, the series-median guess `slice_side`, is not the annotated side are
  counted apart as slices_side_wrong); a silent shift is a point
  named with a level while it sits within `within_mm` of the true point of another level
  (and of none of its own) on a slice whose status is 'ok'.
- pipeline: ROI extraction itself (series-level naming, levels across planes) on the
  stress studies with the trained detectors: share of centre crops within `within_mm` of
  their own point per plane, and crops centred on another level's structure, silent
  (source detected) or flagged (imputed) (lsdc.rois.level_check).
- sides: the axial detector's left/right on slices turned to the viewer's orientation
  from their ImageOrientationPatient (lsdc.orientation, as everywhere) -> share of subarticular
  points whose nearest detection (within `within_mm`) has the right side, on series
  mirrored by their row direction, by their column direction, and not mirrored.

Boxes come from a `BoxSource`: the trained detectors (`YoloBoxes`) in the stage, stand-ins
in the tests. A slice's bins: the bend of its own series' chain of five points (the
study's mean bend when that chain is incomplete) and the series' field of view
(naming_check's convention: the larger pixel spacing times the larger image side).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from lsdc import index, orientation, schema
from lsdc.detect import evaluate as det_eval
from lsdc.detect import export, infer, naming_check
from lsdc.params import Detect, Params
from lsdc.rois.detectors import YoloDetectors

log = logging.getLogger(__name__)

SAGITTAL = ("sag_t1", "sag_t2")
BIN_KINDS = {"bend": naming_check.BEND_BINS, "fov": naming_check.FOV_BINS}
MIRROR_KINDS = ("mirrored_row", "mirrored_col", "not_mirrored")  # axial slices mirrored by the row / the column direction, or not


class BoxSource(Protocol):
    """Raw boxes of exported slices. `truth` (image: index into `arrays`, level, side, x, y
    in export px) holds the annotated points of each slice's series and side, for
    stand-ins; a trained detector ignores it."""

    def boxes(self, plane: str, arrays: Sequence[np.ndarray], truth: pd.DataFrame) -> list[infer.Boxes]: ...


class YoloBoxes:
    """The trained detectors `<models_dir>/<plane>.pt`, loaded on first use."""

    def __init__(self, models_dir: str | Path, cfg: Detect, device: str = "cpu", batch: int = 32):
        self.models_dir, self.cfg, self.device, self.batch = Path(models_dir), cfg, device, batch

    def boxes(self, plane, arrays, truth):
        from lsdc.detect import labels

        model = infer.load_detector(self.models_dir / f"{plane}.pt")
        names = tuple(model.names[k] for k in sorted(model.names))
        expected = labels.class_names(plane, self.cfg.export.classes)
        if names != expected:
            raise ValueError(f"{self.models_dir / plane}.pt: detector classes {names} do not match "
                             f"detect.export.classes={self.cfg.export.classes!r} (expected {expected})")
        return infer.detect_boxes(model, arrays, self.cfg, self.batch, self.device)


# ---------------------------------------------------------------- the stress set

def stress_params(p: Params, root: Path) -> Params:
    """p with the stress dataset under `root` as data.root and synth switched to the naming set."""
    synth = dataclasses.replace(p.synth, seed=p.naming.seed, n_train=p.naming.studies, n_test=1, stress=True)
    return dataclasses.replace(p, synth=synth, data=dataclasses.replace(p.data, root=str(root)))


def build_stress_set(p: Params, scratch: Path, workers: int = 0) -> tuple[Params, Path, Path]:
    """Generate, ingest and give every train study the validation fold; (params, index dir,
    folds file) under `scratch` (replaced completely)."""
    from lsdc.ingest.build import build_index
    from lsdc.synth import generate

    if scratch.exists():
        shutil.rmtree(scratch)
    ps = stress_params(p, scratch / "data")
    generate.generate(ps.synth, ps.data.root, workers=workers, progress=False)
    tables = build_index(Path(ps.data.root), workers=workers, near_origin_px=p.ingest.near_origin_px)
    index_dir, folds_path = scratch / "index", scratch / "folds.parquet"
    tables.write(index_dir)
    train = tables.studies.loc[tables.studies["split"] == "train", "study_id"]
    pd.DataFrame({"study_id": train.to_numpy(), "fold": p.detect.export.val_fold}).to_parquet(folds_path, index=False)
    return ps, index_dir, folds_path


# ---------------------------------------------------------------- bins

def _bin(value: float, bins) -> str | None:
    return None if not np.isfinite(value) else naming_check._bin(value, bins)


def fov_mm(rows: float, cols: float, sp_row: float, sp_col: float) -> float:
    return float(max(sp_row, sp_col) * max(rows, cols))


def series_bends(coords: pd.DataFrame) -> pd.DataFrame:
    """Bend (deg) of every complete sagittal chain: series_id, condition, study_id, bend."""
    rows = []
    for ch in naming_check.chains_from_table(coords):
        series, cond = ch.key.split("/")[:2]
        rows.append((int(series), cond, naming_check.bend_deg(ch.mm)))
    out = pd.DataFrame(rows, columns=["series_id", "condition", "bend"])
    study = coords.drop_duplicates("series_id").set_index("series_id")["study_id"]
    return out.assign(study_id=out["series_id"].map(study))


def slice_bins(images: pd.DataFrame, points: pd.DataFrame, bends: pd.DataFrame) -> pd.DataFrame:
    """stem -> bend bin and fov bin of every exported sagittal slice (see module doc)."""
    cond = points.drop_duplicates("stem").set_index("stem")["condition"]
    own = bends.set_index(["series_id", "condition"])["bend"]
    by_study = bends.groupby("study_id")["bend"].mean()
    out = []
    for r in images.itertuples():
        bend = own.get((r.series_id, cond.get(r.stem)), np.nan)
        if not np.isfinite(bend):
            bend = by_study.get(r.study_id, np.nan)
        fov = fov_mm(r.rows, r.cols, r.pixel_spacing_row, r.pixel_spacing_col)
        out.append((r.stem, _bin(bend, naming_check.BEND_BINS), _bin(fov, naming_check.FOV_BINS)))
    return pd.DataFrame(out, columns=["stem", "bend", "fov"])


def share_by_bin(frame: pd.DataFrame, value: str) -> dict:
    """{'all': {n, share}, 'bend': {bin: {n, share}}, 'fov': {...}} of a boolean column."""
    def cell(rows: pd.DataFrame) -> dict:
        return {"n": int(len(rows)), "share": round(float(rows[value].mean()), 4) if len(rows) else None}

    return {"all": cell(frame), **{kind: {label: cell(frame[frame[kind] == label]) for *_, label in bins}
                                   for kind, bins in BIN_KINDS.items()}}


def min_over_bins(table: dict, key: str = "share") -> float | None:
    """Smallest share over the bend and fov bins that hold any series / slice."""
    values = [c[key] for kind in BIN_KINDS for c in table[kind].values() if c["n"] and c[key] is not None]
    return min(values) if values else None


# ---------------------------------------------------------------- (a) the naming step alone

def naming_alone(coords: pd.DataFrame, cfg: Detect, seed: int) -> dict:
    """naming_check on every complete sagittal chain, with the stage's anatomy settings."""
    a = cfg.anatomy
    chains = naming_check.chains_from_table(coords)
    report = naming_check.evaluate(chains, naming_check.SCENARIOS, seed, spacing_mm=a.disc_spacing_mm,
                                   max_turn_deg=a.max_turn_deg, max_ratio=a.max_ratio,
                                   max_tilt_deg=a.max_tilt_deg, weak_ratio=a.weak_ratio)
    true = report["true"]
    return {"series": len(chains),
            "min_bin_right": min_over_bins(true, "right"),
            "silent": int(sum(report[sc]["all"]["silent"] for sc in report)),
            "scenarios": report}


# ---------------------------------------------------------------- (b) and sides: detections

def _truth(images: pd.DataFrame, points: pd.DataFrame, coords: pd.DataFrame, plane: str,
           scales: np.ndarray) -> pd.DataFrame:
    """Annotated points for the stand-ins, in export px: sagittal slices get every point of
    their series and side (condition), axial slices their own points."""
    if plane == "ax_t2":
        t = points[["stem", "level", "side", "x", "y"]]
    else:
        cond = points.drop_duplicates("stem")[["stem", "condition"]]
        t = images[["stem", "series_id", *export.TURN_COLUMNS]].merge(cond, on="stem").merge(
            coords[["series_id", "condition", "level", "x", "y", "rows", "cols"]], on=["series_id", "condition"])
        xy = [orientation.apply_xy(r.x, r.y, orientation.Steps(r.transposed, r.flipped_rows, r.flipped_cols),
                                   r.rows, r.cols) for r in t.itertuples()]
        t = t.assign(x=[float(a) for a, _ in xy], y=[float(b) for _, b in xy])
        t = t.assign(side=[None if plane == "sag_t2" else ("left" if c.startswith("Left") else "right")
                           for c in t["condition"]])[["stem", "level", "side", "x", "y"]]
    position = pd.Series(np.arange(len(images)), index=images["stem"].to_numpy())
    image = t["stem"].map(position).to_numpy(int)
    s = np.asarray(scales, float)[image]
    return pd.DataFrame({"image": image, "level": t["level"].to_numpy(), "side": t["side"].to_numpy(),
                         "x": t["x"].to_numpy(float) * s, "y": t["y"].to_numpy(float) * s})


def detect_plane(source: BoxSource, yolo_dir: Path, plane: str, cfg: Detect, coords: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(images, annotated points incl. completed ones, named points) of one exported plane,
    in px of the exported slices at their original size (canonical orientation)."""
    images = pd.read_parquet(yolo_dir / "images.parquet")
    points = pd.read_parquet(yolo_dir / "points.parquet").merge(
        images[["stem", "pixel_spacing_row", "pixel_spacing_col"]], on="stem")
    arrays, spacings, scales = det_eval.read_export(yolo_dir, images)
    boxes = source.boxes(plane, arrays, _truth(images, points, coords, plane, scales))
    sides = list(images["slice_side"]) if plane == "sag_t1" else None
    midlines = [np.shape(a)[1] / 2 for a in arrays]
    pred = det_eval.to_original(infer.points_table(boxes, plane, cfg, spacings, sides, midlines), images, scales)
    return images, points, pred


def _geometry(images: pd.DataFrame, instances: pd.DataFrame) -> pd.DataFrame:
    key = ["study_id", "series_id", "instance_number"]
    cols = [c for c in index.GEOMETRY_COLUMNS if c not in ("pixel_spacing_row", "pixel_spacing_col")]
    return images.merge(instances[key + cols], on=key, how="left")


def mirror_kind(images: pd.DataFrame, instances: pd.DataFrame) -> pd.Series:
    """stem -> 'mirrored_row' (row direction towards patient right, -x: sides swap),
    'mirrored_col' (column direction towards anterior, -y) or 'not_mirrored', from the
    slice's ImageOrientationPatient."""
    g = _geometry(images, instances)
    kind = np.where(g["iop_rx"] < 0, MIRROR_KINDS[0], np.where(g["iop_cy"] < 0, MIRROR_KINDS[1], MIRROR_KINDS[2]))
    return pd.Series(kind, index=g["stem"].to_numpy())


def silent_shifts(points: pd.DataFrame, pred: pd.DataFrame, within_mm: float) -> pd.Series:
    """Per stem: named points on an 'ok' slice lying within within_mm of the true point of
    another level and of none of their own (points: every annotated point, completed too)."""
    counts: dict[str, int] = {}
    ok = pred[pred["status"] == "ok"] if len(pred) else pred
    truth = dict(tuple(points.groupby("stem")))
    for r in ok.itertuples():
        t = truth.get(r.stem)
        if t is None:
            continue
        d = np.hypot((t["x"].to_numpy() - r.x) * t["pixel_spacing_col"].to_numpy(),
                     (t["y"].to_numpy() - r.y) * t["pixel_spacing_row"].to_numpy())
        near = d <= within_mm
        same = (t["level"] == r.level).to_numpy()
        if near.any() and not (near & same).any():
            counts[r.stem] = counts.get(r.stem, 0) + 1
    return pd.Series(counts, dtype=int)


def detected_levels(source: BoxSource, yolo_dir: Path, plane: str, cfg: Detect, coords: pd.DataFrame,
                    bends: pd.DataFrame) -> dict:
    """(b) for one sagittal plane: slices with every annotated point right and within, by bin."""
    images, points, pred = detect_plane(source, yolo_dir, plane, cfg, coords)
    own = points[~points["completed"].astype(bool)] if "completed" in points else points
    within = cfg.evaluate.within_mm
    # levels only: a sag_t1 slice's side is the export's series-median guess (slice_side),
    # counted apart below, not a naming error
    matched = det_eval.match_points(own.assign(side=None), pred.assign(side=None), within)
    side_of = own.drop_duplicates("stem").set_index("stem")["side"]
    side_wrong = int((images["slice_side"] != images["stem"].map(side_of)).sum()) if plane == "sag_t1" else 0
    per_slice = matched.groupby("stem")["right"].all().rename("all_right").reset_index()
    silent = silent_shifts(points, pred, within)
    status = pred.groupby("stem")["status"].agg(lambda s: bool((s == "ok").all())) if len(pred) else pd.Series(dtype=bool)
    per_slice = per_slice.merge(slice_bins(images, points, bends), on="stem", how="left").assign(
        silent=lambda d: d["stem"].map(silent).fillna(0).astype(int),
        doubt=lambda d: ~d["stem"].map(status).fillna(False).astype(bool))
    table = share_by_bin(per_slice, "all_right")
    return {"slices": int(len(per_slice)), "points": int(len(matched)),
            "min_bin_right": min_over_bins(table),
            "points_right_within": round(float(matched["right"].mean()), 4) if len(matched) else None,
            "slices_doubt": int(per_slice["doubt"].sum()),
            "slices_wrong_with_doubt": int((~per_slice["all_right"] & per_slice["doubt"]).sum()),
            "silent": int(per_slice["silent"].sum()),
            "slices_side_wrong": side_wrong,
            "slices_with_silent": int((per_slice["silent"] > 0).sum()),
            **table}


def side_accuracy(source: BoxSource, yolo_dir: Path, cfg: Detect, coords: pd.DataFrame,
                  instances: pd.DataFrame) -> dict:
    """Axial sides from IOP: per mirror kind, share of subarticular points whose nearest
    detection within `within_mm` names the right side, and share right and within."""
    images, points, pred = detect_plane(source, yolo_dir, "ax_t2", cfg, coords)
    own = points[~points["completed"].astype(bool)] if "completed" in points else points
    own = own.assign(level=None).reset_index(drop=True)
    within = cfg.evaluate.within_mm
    matched = det_eval.match_points(own, pred, within)
    by_stem = dict(tuple(pred.groupby("stem"))) if len(pred) else {}
    side_ok = np.full(len(own), np.nan)
    for i, g in own.iterrows():
        p = by_stem.get(g["stem"])
        if p is None:
            continue
        d = np.hypot((p["x"].to_numpy() - g["x"]) * g["pixel_spacing_col"],
                     (p["y"].to_numpy() - g["y"]) * g["pixel_spacing_row"])
        k = int(np.argmin(d))
        if d[k] <= within:
            side_ok[i] = float(p["side"].iloc[k] == g["side"])
    kinds = mirror_kind(images, instances)
    kind = own["stem"].map(kinds)
    out = {}
    for m in MIRROR_KINDS:
        sel = (kind == m).to_numpy()
        found = sel & ~np.isnan(side_ok)
        out[m] = {"points": int(sel.sum()), "found": int(found.sum()),
                  "side_right": round(float(side_ok[found].mean()), 4) if found.any() else None,
                  "right_within": round(float(matched.loc[sel, "right"].mean()), 4) if sel.any() else None,
                  "series": int(images.loc[(images["stem"].map(kinds) == m).to_numpy(), "series_id"].nunique())}
    return out


# ---------------------------------------------------------------- the whole measurement

def measure(p: Params, scratch: Path, source: BoxSource | None = None, workers: int = 0,
            device: str = "cpu", models_dir: Path | None = None) -> dict:
    """Build the stress set under `scratch` and measure (a), (b) and the sides (module doc).
    `source`: boxes of the exported slices; default the trained detectors in `models_dir`."""
    if source is None:
        if models_dir is None:
            raise ValueError("measure: give a box source or the folder of the trained detectors")
        source = YoloBoxes(models_dir, p.detect, device)
    ps, index_dir, folds = build_stress_set(p, scratch, workers)
    metrics = measure_set(p, ps, index_dir, folds, scratch / "yolo", source)
    if models_dir is not None:
        metrics["pipeline"] = pipeline_levels(ps, index_dir, YoloDetectors(models_dir, p.detect, device=device))
        metrics["silent_shifts_pipeline"] = metrics["pipeline"]["silent"]
    return metrics


def pipeline_levels(ps: Params, index_dir: Path, detectors) -> dict:
    """The pipeline's own levels on the stress set: ROI extraction (lsdc.rois.study, the
    series-level naming and the cross-plane steps) over its train studies, each centre crop
    checked against every annotated point of its structure (lsdc.rois.level_check); and
    every annotated point against the boxes as the pipeline named them (lsdc.rois.named_check)."""
    from lsdc.rois import extract, level_check, named_check, study
    from lsdc.rois.store import rows_frame

    rows, named = [], []
    for task in extract.build_tasks(index_dir):
        if task.split == "train":
            result = study.extract_study(task, ps.data.root, detectors, ps)
            rows += result.rows
            named.append(result.named)
    coords = index.read_table(index_dir, "coords", ("px", "py", "pz", "in_image", "near_origin"))
    checked = level_check.nearest_levels(rows_frame(rows, 0), coords)
    out = level_check.summary(checked, ps.detect.evaluate.within_mm)
    named_table = pd.concat([n for n in named if n is not None and len(n)] or [pd.DataFrame(columns=list(study.NAMED_COLUMNS))],
                            ignore_index=True)
    out["named_points"] = named_check.summary(named_check.check(named_table, coords, ps.detect.evaluate.within_mm))
    return out


def measure_set(p: Params, ps: Params, index_dir: Path, folds: Path, yolo_root: Path, source: BoxSource) -> dict:
    """The measurements on a built stress set (build_stress_set: `ps` its params, with
    data.root); the slices are exported under `yolo_root`/<plane>."""
    from lsdc.detect.export import export_plane

    tables = index.read(index_dir, ("coords", "instances"),
                        extra={"coords": ("in_image", "near_origin", "pixel_spacing_row", "pixel_spacing_col", "rows", "cols"),
                               "instances": index.GEOMETRY_COLUMNS})
    coords, instances = tables["coords"], tables["instances"]
    coords = coords[coords["in_image"].fillna(False).astype(bool) & ~coords["near_origin"].fillna(True).astype(bool)]
    alone = naming_alone(coords, p.detect, p.naming.seed)
    bends = series_bends(coords)
    detected, sides = {}, {}
    for plane in schema.PLANES:
        out = yolo_root / plane
        counts = export_plane(plane, ps, index_dir, folds, out)
        log.info("%s: %d stress slices exported", plane, counts["images"]["val"])
        if plane in SAGITTAL:
            detected[plane] = detected_levels(source, out, plane, p.detect, coords, bends)
        else:
            sides = side_accuracy(source, out, p.detect, coords, instances)
    mins = [d["min_bin_right"] for d in detected.values() if d["min_bin_right"] is not None]
    return {
        "studies": int(p.naming.studies),
        "within_mm": float(p.detect.evaluate.within_mm),
        "alone": alone,
        "detected": {"min_bin_right": min(mins) if mins else None, **detected},
        "silent_shifts": int(alone["silent"] + sum(d["silent"] for d in detected.values())),
        "sides": sides,
    }
