"""Every annotated point against the detector boxes as the pipeline named them: issue 12's
figure (b), "points right and within 5 mm", with levels named the way ROI extraction names
them (a sagittal series as a whole and across planes, axial slices by their mapped level and
sides by ImageOrientationPatient), not each slice on its own.

A point is `right` when a box on its own slice (series and instance) carries its level and
side and lies within `within_mm` (3-D, patient mm). `wrong_level`: the nearest box on the
slice within `within_mm` carries another level or side; `silent` when that box's name was
not in doubt (status 'ok'). Sagittal points count on every slice of the series the pipeline
read (a slice outside its lateral window is a miss); axial points only on the slices the
detector saw (the pipeline looks at one slice per level and its neighbours, not at all).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.rois import report

WITHIN_MM = 5.0
CHECK_COLUMNS = ("study_id", "plane", "level", "side", "dist_mm", "right", "wrong_level", "silent")


def check(named: pd.DataFrame, coords: pd.DataFrame, within_mm: float = WITHIN_MM) -> pd.DataFrame:
    """One row per usable annotated point of a study in `named` whose series the pipeline
    read for the point's plane (a foramen annotated on a sag_t2 series of a study without
    sag_t1 is not counted; axial: only on slices the detector saw); CHECK_COLUMNS."""
    pts = report.usable_points(coords)
    named = named.assign(side=named["side"].fillna("").astype(str))
    read = set(zip(named["study_id"], named["series_id"], named["plane"]))
    seen = set(zip(named["series_id"], named["instance_number"]))
    keys = list(zip(pts["study_id"], pts["series_id"], pts["plane"]))
    keep = np.array([k in read for k in keys], bool)
    axial = (pts["plane"] == "ax_t2").to_numpy()
    keep &= ~axial | np.array([k in seen for k in zip(pts["series_id"], pts["instance_number"])], bool)
    pts = pts[keep]
    boxes = dict(tuple(named.groupby(["series_id", "instance_number"]))) if len(named) else {}
    rows = []
    for p in pts.itertuples():
        b = boxes.get((p.series_id, p.instance_number))
        dist, wrong, silent = np.inf, False, False
        if b is not None:
            d = np.sqrt((b["px"] - p.px) ** 2 + (b["py"] - p.py) ** 2 + (b["pz"] - p.pz) ** 2).to_numpy(float)
            own = ((b["level"] == p.level) & (b["side"] == p.side)).to_numpy()
            if own.any():
                dist = float(d[own].min())
            k = int(np.argmin(d))
            if dist > within_mm and d[k] <= within_mm and not own[k]:
                wrong, silent = True, b["status"].iloc[k] == "ok"
        rows.append((p.study_id, p.plane, p.level, p.side, dist, dist <= within_mm, wrong, bool(silent)))
    return pd.DataFrame(rows, columns=list(CHECK_COLUMNS))


def summary(checked: pd.DataFrame) -> dict:
    """Points, share right within 5 mm, wrong levels/sides and the silent ones: overall and per plane."""
    def cell(d: pd.DataFrame) -> dict:
        n = len(d)
        return {"points": int(n), "right_within": round(float(d["right"].mean()), 4) if n else None,
                "wrong_level": int(d["wrong_level"].sum()), "silent": int(d["silent"].sum())}

    out = cell(checked)
    out["by_plane"] = {p: cell(checked[checked["plane"] == p]) for p in schema.PLANES}
    return out


def metrics(named: pd.DataFrame, coords: pd.DataFrame, train: set[int], detector_val: set[int] | None) -> dict:
    """summary() of the train studies, and again of the detectors' validation studies alone."""
    checked = check(named[named["study_id"].isin(train)], coords)
    out = summary(checked)
    if detector_val:
        out["detector_val_fold"] = summary(checked[checked["study_id"].isin(detector_val)])
    return out
