"""Is each crop on its own level? Crop centres against every annotated point of the same
structure (plane and side) of the study, so that a crop centred on another level's disc or
foramen is told apart from one that merely missed by a few millimetres.

A crop is `wrong_level` when the annotated point nearest to its centre belongs to another
level and lies within `hit_mm` (the crop sits on that other structure). A wrong level with
source 'detected' is a silent shift: the pipeline used a guessed level as if known. With
source 'imputed' the doubt was flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.rois import DETECTED, IMPUTED, report

HIT_MM = 10.0  # a crop centre this close to another level's point sits on that structure


def nearest_levels(index: pd.DataFrame, coords: pd.DataFrame, hit_mm: float = HIT_MM) -> pd.DataFrame:
    """One row per centre crop (slice offset 0) of a study with annotations: its level, the
    level of the nearest annotated point of its plane and side, that distance (mm), the
    distance to its own level's point, and wrong_level."""
    pts = coords[coords["condition"].isin(schema.CONDITIONS) & coords["level"].isin(schema.LEVELS)]
    pts = pts[pts[["px", "py", "pz"]].notna().all(axis=1)]
    keys = [report.structure_key(c) for c in pts["condition"]]
    pts = pts.assign(plane=[k[0] for k in keys], side=[k[1] or "" for k in keys])
    crops = index[(index["slice_offset"] == 0) & index[["px", "py", "pz"]].notna().all(axis=1)]
    crops = crops.assign(side=crops["side"].fillna("").astype(str))
    pair = crops[["crop_index", "study_id", "plane", "side", "level", "source", "px", "py", "pz"]].merge(
        pts[["study_id", "plane", "side", "level", "px", "py", "pz"]], on=["study_id", "plane", "side"],
        suffixes=("", "_true"))
    if pair.empty:
        return pd.DataFrame(columns=["crop_index", "plane", "level", "source", "nearest_level", "nearest_mm",
                                     "own_mm", "wrong_level"])
    pair["d"] = np.sqrt(sum((pair[a] - pair[f"{a}_true"]) ** 2 for a in ("px", "py", "pz")))
    pair = pair.sort_values(["crop_index", "d"], kind="stable")
    nearest = pair.drop_duplicates("crop_index").set_index("crop_index")
    own = pair[pair["level"] == pair["level_true"]].drop_duplicates("crop_index").set_index("crop_index")["d"]
    out = nearest[["plane", "level", "source"]].assign(
        nearest_level=nearest["level_true"], nearest_mm=nearest["d"], own_mm=own.reindex(nearest.index))
    out["wrong_level"] = (out["nearest_level"] != out["level"]) & (out["nearest_mm"] <= hit_mm)
    return out.reset_index()


def summary(checked: pd.DataFrame, within_mm: float = 5.0) -> dict:
    """Per plane and overall: crops, share within `within_mm` of their own point, wrong
    levels that were silent (detected) and flagged (imputed)."""
    def cell(d: pd.DataFrame) -> dict:
        n = len(d)
        wrong = d["wrong_level"].astype(bool)
        return {"crops": int(n),
                "within": round(float((d["own_mm"] <= within_mm).mean()), 4) if n else None,
                "silent": int((wrong & (d["source"] == DETECTED)).sum()),
                "flagged": int((wrong & (d["source"] == IMPUTED)).sum())}

    out = cell(checked)
    out["by_plane"] = {p: cell(checked[checked["plane"] == p]) for p in schema.PLANES}
    return out
