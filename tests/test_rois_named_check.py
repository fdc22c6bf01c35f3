"""Figure (b) with the pipeline's names (lsdc.rois.named_check): annotated points against
the detector boxes as ROI extraction named them, on hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lsdc.rois import named_check
from lsdc.rois.study import NAMED_COLUMNS

CANAL, FORAMEN_L, ZONE_R = "Spinal Canal Stenosis", "Left Neural Foraminal Narrowing", "Right Subarticular Stenosis"


def _coord(study, series, inst, condition, level, p):
    return {"study_id": study, "series_id": series, "instance_number": inst, "condition": condition,
            "level": level, "px": p[0], "py": p[1], "pz": p[2], "in_image": True, "near_origin": False}


def _box(study, plane, series, inst, level, side, p, status="ok"):
    return (study, plane, series, inst, level, side, *p, 0.9, status)


def _check(boxes, coords):
    return named_check.check(pd.DataFrame(boxes, columns=list(NAMED_COLUMNS)), pd.DataFrame(coords))


def test_a_point_is_right_only_with_its_own_level_on_its_own_slice_within_5_mm():
    coords = [_coord(1, 10, 4, CANAL, "L4/L5", (0, 0, 0)),
              _coord(1, 10, 4, CANAL, "L5/S1", (0, 0, -30)),
              _coord(1, 10, 5, CANAL, "L3/L4", (0, 0, 30))]
    boxes = [_box(1, "sag_t2", 10, 4, "L4/L5", None, (0, 3, 0)),  # 3 mm: right
             _box(1, "sag_t2", 10, 4, "L5/S1", None, (0, 0, -24)),  # 6 mm: too far
             _box(1, "sag_t2", 10, 6, "L3/L4", None, (0, 0, 30))]  # right place, another slice
    out = _check(boxes, coords).set_index("level")
    assert out.loc["L4/L5", "right"] and np.isclose(out.loc["L4/L5", "dist_mm"], 3.0)
    assert not out.loc["L5/S1", "right"] and np.isclose(out.loc["L5/S1", "dist_mm"], 6.0)
    assert not out.loc["L3/L4", "right"] and np.isinf(out.loc["L3/L4", "dist_mm"])


def test_another_level_on_the_point_is_a_wrong_level_silent_only_when_not_in_doubt():
    coords = [_coord(1, 10, 4, CANAL, "L4/L5", (0, 0, 0)), _coord(2, 20, 4, CANAL, "L4/L5", (0, 0, 0))]
    boxes = [_box(1, "sag_t2", 10, 4, "L3/L4", None, (0, 1, 0), "ok"),
             _box(2, "sag_t2", 20, 4, "L3/L4", None, (0, 1, 0), "ambiguous")]
    out = _check(boxes, coords).set_index("study_id")
    assert out["wrong_level"].all() and not out["right"].any()
    assert out.loc[1, "silent"] and not out.loc[2, "silent"]
    s = named_check.summary(_check(boxes, coords))
    assert s["by_plane"]["sag_t2"] == {"points": 2, "right_within": 0.0, "wrong_level": 2, "silent": 1}


def test_sides_must_match_and_only_the_planes_series_and_seen_axial_slices_count():
    coords = [_coord(1, 11, 3, FORAMEN_L, "L1/L2", (15, 0, 60)),  # named 'right': wrong side
              _coord(1, 10, 4, FORAMEN_L, "L2/L3", (15, 0, 30)),  # on the sag_t2 series: not counted
              _coord(1, 12, 7, ZONE_R, "L2/L3", (-8, 0, 30)),  # axial slice the detector saw
              _coord(1, 12, 8, ZONE_R, "L3/L4", (-8, 0, 0))]  # axial slice it never saw: not counted
    boxes = [_box(1, "sag_t2", 10, 4, "L2/L3", None, (0, 0, 30)),
             _box(1, "sag_t1", 11, 3, "L1/L2", "right", (15, 0, 60)),
             _box(1, "ax_t2", 12, 7, "L2/L3", "right", (-8, 1, 30))]
    out = _check(boxes, coords)
    assert list(zip(out["plane"], out["level"], out["right"])) == [("sag_t1", "L1/L2", False),
                                                                    ("ax_t2", "L2/L3", True)]
    assert out.iloc[0]["wrong_level"] and out.iloc[0]["silent"]


def test_metrics_report_the_detectors_validation_studies_apart():
    coords = [_coord(1, 10, 4, CANAL, "L4/L5", (0, 0, 0)), _coord(2, 20, 4, CANAL, "L4/L5", (0, 0, 0))]
    boxes = [_box(1, "sag_t2", 10, 4, "L4/L5", None, (0, 0, 0)), _box(2, "sag_t2", 20, 4, "L4/L5", None, (0, 9, 0))]
    named = pd.DataFrame(boxes, columns=list(NAMED_COLUMNS))
    m = named_check.metrics(named, pd.DataFrame(coords), train={1, 2}, detector_val={2})
    assert m["right_within"] == 0.5 and m["detector_val_fold"]["right_within"] == 0.0
    assert named_check.metrics(named, pd.DataFrame(coords), train={1}, detector_val=None)["points"] == 1
