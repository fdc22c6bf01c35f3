import numpy as np

from lsdc import params as params_mod
from lsdc.detect.infer import Boxes, points_table


def _cfg(mode):
    return params_mod.Detect(export=params_mod.DetectExport(classes=mode))


def test_points_table_levels_by_anatomy_with_slice_side():
    y = 200 - np.arange(6) * 70.0  # L5/S1 at the bottom, one thoracic disc above L1/L2
    boxes = Boxes(np.stack([np.full(6, 100.0), y], 1), np.full(6, 0.8), np.zeros(6, int))
    pts = points_table([boxes], "sag_t1", _cfg("anatomy"), [(0.5, 0.5)], sides=["left"])
    assert sorted(pts["level"]) == ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]
    assert (pts["side"] == "left").all() and pts.loc[pts["level"] == "L5/S1", "y"].item() == 200.0


def test_points_table_axial_sides_and_levels_mode():
    boxes = Boxes(np.array([[60.0, 50.0], [20.0, 52.0]]), np.array([0.9, 0.8]), np.array([0, 1]))
    anat = points_table([boxes], "ax_t2", _cfg("anatomy"), [(0.5, 0.5)])
    assert dict(zip(anat["side"], anat["x"])) == {"left": 60.0, "right": 20.0}
    assert anat["level"].isna().all()
    # notebook classes: class 0 = right, 1 = left, whatever the position
    lev = points_table([boxes], "ax_t2", _cfg("levels"), [(0.5, 0.5)])
    assert dict(zip(lev["side"], lev["x"])) == {"right": 60.0, "left": 20.0}


def test_one_parasagittal_slice_never_anchors_its_foramen_count():
    """Five clear foramina on a sag_t1 slice may be T12/L1..L4/L5 (L5/S1 lies further out):
    named bottom-up as a guess, in doubt; the same five discs on a sag_t2 slice are anchored."""
    boxes = Boxes(np.stack([np.full(5, 100.0), 200 - np.arange(5) * 70.0], 1), np.full(5, 0.8), np.zeros(5, int))
    t1 = points_table([boxes], "sag_t1", _cfg("anatomy"), [(0.5, 0.5)], sides=["left"])
    t2 = points_table([boxes], "sag_t2", _cfg("anatomy"), [(0.5, 0.5)])
    assert sorted(t1["level"]) == sorted(t2["level"]) and len(t1) == 5
    assert (t2["status"] == "ok").all() and (t1["status"] == "ambiguous").all()
    assert "parasagittal slice does not anchor" in t1["notes"].iloc[0]
