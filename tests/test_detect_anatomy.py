import numpy as np

from lsdc.detect.anatomy import AMBIGUOUS, OK, assign_levels, assign_sides, top_per_class

SP = (0.5, 0.5)  # mm per px (row, col)


def spine(n_above=0, step_mm=35.0, x0=100.0, y_l5s1=400.0):
    """Disc centres (px) from L5/S1 upwards with a gentle lordotic curve."""
    k = np.arange(5 + n_above)
    y = y_l5s1 - k * step_mm / SP[0]
    x = x0 + 0.002 * (y - 250.0) ** 2 / 10
    return np.stack([x, y], 1)


def test_five_discs_bottom_is_l5s1():
    xy = spine()
    a = assign_levels(xy, np.full(5, 0.9), SP)
    assert a.status == OK
    assert a.chosen == {"L5/S1": 0, "L4/L5": 1, "L3/L4": 2, "L2/L3": 3, "L1/L2": 4}


def test_thoracic_boxes_above_l1l2_are_dropped():
    xy = spine(n_above=2)
    order = np.random.default_rng(0).permutation(len(xy))
    a = assign_levels(xy[order], np.full(len(xy), 0.8), SP)
    inv = {int(o): i for i, o in enumerate(order)}
    assert a.status == OK
    assert a.chosen == {lv: inv[k] for k, lv in enumerate(["L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2"])}


def test_missing_disc_counts_a_gap_and_is_ambiguous():
    xy = np.delete(spine(), 2, axis=0)  # no L3/L4
    a = assign_levels(xy, np.full(4, 0.9), SP)
    assert a.chosen == {"L5/S1": 0, "L4/L5": 1, "L2/L3": 2, "L1/L2": 3}
    assert a.status == AMBIGUOUS and any("L3/L4" in n for n in a.notes)


def test_spurious_box_off_axis_is_rejected():
    xy = np.vstack([spine(), [[100.0 + 60 / SP[1], 330.0]]])  # 60 mm anterior, between two discs
    a = assign_levels(xy, np.r_[np.full(5, 0.6), 0.95], SP)
    assert 5 in a.rejected
    assert a.chosen["L5/S1"] == 0 and a.chosen["L1/L2"] == 4 and a.status == OK


def test_duplicate_box_on_one_disc_is_merged():
    xy = np.vstack([spine(), spine()[1] + [2.0, 3.0]])
    a = assign_levels(xy, np.r_[np.full(5, 0.6), 0.9], SP)
    assert a.chosen["L4/L5"] == 5 and a.chosen["L3/L4"] == 2 and len(a.chosen) == 5


def test_too_few_boxes_reported_not_forced():
    a = assign_levels(spine()[:2], np.full(2, 0.9), SP)
    assert a.status == AMBIGUOUS and set(a.chosen) == {"L5/S1", "L4/L5"}
    assert assign_levels(np.zeros((0, 2)), np.zeros(0), SP).status == AMBIGUOUS


def test_sides_larger_column_is_patient_left():
    xy = np.array([[80.0, 120.0], [150.0, 118.0], [10.0, 10.0]])
    a = assign_sides(xy, [0.7, 0.8, 0.9], SP)
    assert a.chosen == {"left": 1, "right": 0} and a.status == OK


def test_single_side_box_uses_midline():
    a = assign_sides(np.array([[150.0, 120.0]]), [0.7], SP, midline_x=115.0)
    assert a.chosen == {"left": 0} and a.status == AMBIGUOUS


def test_top_per_class():
    a = top_per_class([0, 0, 1], [0.2, 0.6, 0.3], ("a", "b", "c"))
    assert a.chosen == {"a": 1, "b": 2} and a.status == AMBIGUOUS
