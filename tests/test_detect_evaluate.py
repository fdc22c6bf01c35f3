import numpy as np
import pandas as pd
import pytest

from lsdc.detect.evaluate import evaluate_points


def _gt():
    # one sagittal slice, spacing 0.5 mm (row) x 0.25 mm (col); three levels
    return pd.DataFrame({
        "stem": ["a"] * 3, "level": ["L3/L4", "L4/L5", "L5/S1"], "side": [None] * 3,
        "x": [100.0, 100.0, 100.0], "y": [100.0, 160.0, 220.0],
        "pixel_spacing_row": 0.5, "pixel_spacing_col": 0.25,
    })


def test_known_errors():
    pred = pd.DataFrame({
        "stem": ["a"] * 3, "level": ["L3/L4", "L4/L5", "L5/S1"], "side": [None] * 3,
        "x": [104.0, 100.0, 100.0],  # 4 px * 0.25 = 1 mm
        "y": [100.0, 166.0, 240.0],  # 6 px * 0.5 = 3 mm; 20 px * 0.5 = 10 mm
    })
    m = evaluate_points(_gt(), pred, within_mm=5.0)
    assert m["loc_points"] == 3 and m["loc_right_within"] == pytest.approx(2 / 3)
    assert m["loc_median_mm"] == pytest.approx(3.0)
    assert m["loc_p95_mm"] == pytest.approx(np.percentile([1.0, 3.0, 10.0], 95))
    assert m["loc_wrong_class_rate"] == 0 and m["loc_slices_missing"] == 0
    assert m["loc_slices_all_right"] == 0.0


def test_shifted_labels_are_wrong_class_and_missing():
    # boxes on the right discs but every name shifted up by one: L5/S1 is never named
    pred = pd.DataFrame({
        "stem": ["a"] * 3, "level": ["L2/L3", "L3/L4", "L4/L5"], "side": [None] * 3,
        "x": [100.0, 100.0, 100.0], "y": [100.0, 160.0, 220.0],
    })
    m = evaluate_points(_gt(), pred, within_mm=5.0)
    assert m["loc_right_within"] == 0.0 and m["loc_wrong_class_rate"] == 1.0
    assert m["loc_missing_rate"] == pytest.approx(1 / 3) and m["loc_median_mm"] == pytest.approx(30.0)
    assert m["loc_slices_missing"] == 1 and m["loc_slices_duplicated"] == 0


def test_disc_named_twice_is_duplicated():
    pred = pd.DataFrame({
        "stem": ["a"] * 3, "level": ["L3/L4", "L4/L5", "L5/S1"], "side": [None] * 3,
        "x": [100.0, 100.0, 100.0], "y": [100.0, 160.0, 161.0],
    })
    m = evaluate_points(_gt(), pred, within_mm=5.0)
    assert m["loc_right_within"] == pytest.approx(2 / 3) and m["loc_slices_duplicated"] == 1
    assert m["loc_wrong_class_rate"] == pytest.approx(0.0)  # L5/S1 truth: nothing within 5 mm


def test_sides_keyed_by_side():
    gt = pd.DataFrame({"stem": ["b", "b"], "level": [None, None], "side": ["left", "right"],
                       "x": [150.0, 80.0], "y": [100.0, 100.0],
                       "pixel_spacing_row": 1.0, "pixel_spacing_col": 1.0})
    pred = gt[["stem", "level", "side", "x", "y"]].copy()
    pred["side"] = ["right", "left"]  # swapped
    m = evaluate_points(gt, pred)
    assert m["loc_right_within"] == 0 and m["loc_median_mm"] == pytest.approx(70.0)
