"""Crops on their own level or on another one (lsdc.rois.level_check)."""

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.rois import level_check

Z = {lv: -30.0 * k for k, lv in enumerate(schema.LEVELS)}  # canal points 30 mm apart


def _coords():
    return pd.DataFrame([{"study_id": 1, "condition": "Spinal Canal Stenosis", "level": lv,
                          "px": 0.0, "py": 0.0, "pz": z} for lv, z in Z.items()])


def _crop(i, level, z, source, offset=0, dx=0.0):
    return {"crop_index": i, "study_id": 1, "plane": "sag_t2", "side": None, "level": level,
            "slice_offset": offset, "source": source, "px": dx, "py": 0.0, "pz": z}


def test_a_crop_on_another_level_is_told_apart_from_a_near_miss():
    index = pd.DataFrame([
        _crop(0, "L1/L2", Z["L1/L2"], "detected"),  # right
        _crop(1, "L2/L3", Z["L3/L4"] + 2, "detected"),  # on L3/L4: a silent shift
        _crop(2, "L3/L4", Z["L4/L5"], "imputed"),  # on L4/L5, flagged
        _crop(3, "L4/L5", Z["L4/L5"], "detected", dx=7.0),  # 7 mm off its own disc: a miss, not a shift
        _crop(4, "L5/S1", Z["L5/S1"], "detected"),
        _crop(5, "L5/S1", Z["L1/L2"], "detected", offset=1),  # neighbouring slice crops are not checked
    ])
    checked = level_check.nearest_levels(index, _coords()).set_index("crop_index")
    assert checked["wrong_level"].tolist() == [False, True, True, False, False]
    assert checked.loc[1, "nearest_level"] == "L3/L4" and np.isclose(checked.loc[1, "nearest_mm"], 2.0)
    np.testing.assert_allclose(checked.loc[3, "own_mm"], 7.0)
    s = level_check.summary(checked.reset_index())
    assert (s["crops"], s["silent"], s["flagged"], s["within"]) == (5, 1, 1, 0.4)
    assert s["by_plane"]["sag_t2"]["silent"] == 1 and s["by_plane"]["ax_t2"]["crops"] == 0
