import json

import numpy as np
import pandas as pd
import pytest

from lsdc import schema
from lsdc.detect import naming_check
from lsdc.detect.anatomy import AMBIGUOUS, OK, assign_levels, assign_sides, top_per_class
from spine_chains import chain, random_chains

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


def test_weak_thoracic_boxes_above_l1l2_are_dropped():
    xy = spine(n_above=2)
    order = np.random.default_rng(0).permutation(len(xy))
    conf = np.r_[np.full(5, 0.8), 0.2, 0.15]  # the detector was taught to ignore thoracic discs
    a = assign_levels(xy[order], conf[order], SP)
    inv = {int(o): i for i, o in enumerate(order)}
    assert a.status == OK
    assert a.chosen == {lv: inv[k] for k, lv in enumerate(["L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2"])}


def test_six_equally_strong_boxes_are_ambiguous_not_counted_blindly():
    a = assign_levels(spine(n_above=1), np.full(6, 0.8), SP)
    assert a.status == AMBIGUOUS and any("more than the 5 lumbar" in n for n in a.notes)


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
    mirrored = assign_sides(xy, [0.7, 0.8, 0.9], SP, left_on_larger_col=False)
    assert mirrored.chosen == {"left": 0, "right": 1}
    one = assign_sides(xy[1:2], [0.7], SP, midline_x=115.0, left_on_larger_col=False)
    assert one.chosen == {"right": 0}


def test_single_side_box_uses_midline():
    a = assign_sides(np.array([[150.0, 120.0]]), [0.7], SP, midline_x=115.0)
    assert a.chosen == {"left": 0} and a.status == AMBIGUOUS


def test_top_per_class():
    a = top_per_class([0, 0, 1], [0.2, 0.6, 0.3], ("a", "b", "c"))
    assert a.chosen == {"a": 1, "b": 2} and a.status == AMBIGUOUS


def _names(a, truth):
    return {lv: truth[i] for lv, i in a.chosen.items()}


LEVELS = list(schema.LEVELS)


@pytest.mark.parametrize("spacings", [(22.0, 22.0, 22.0, 22.0), (44.0, 44.0, 44.0, 44.0), (22.0, 26.0, 30.0, 34.0)])
@pytest.mark.parametrize("sense", [1.0, -1.0])
def test_strongly_lordotic_spine_is_named_right(spacings, sense):
    mm = chain(50.0, spacings, tilt_deg=35.0, sense=sense)
    assert naming_check.bend_deg(mm) == pytest.approx(50.0, abs=0.5)
    a = assign_levels(mm[::-1] / 0.5, np.full(5, 0.9), SP)  # px at 0.5 mm, L5/S1 first
    assert a.status == OK, a.notes
    assert _names(a, LEVELS[::-1]) == {lv: lv for lv in LEVELS}


def test_lordotic_spine_the_old_line_consensus_rejected():
    # 16 mm off a straight line: the old 12 mm line test dropped a real disc here
    mm = chain(51.0, (40.0, 42.0, 44.0, 44.0), tilt_deg=40.0, turns=(10.0, 30.0, 11.0))
    assert naming_check.max_offline_mm(mm) > 12.0
    a = assign_levels(mm / 0.5, np.full(5, 0.9), SP)
    assert a.status == OK and _names(a, LEVELS) == {lv: lv for lv in LEVELS}


def test_missed_l5s1_is_flagged_never_silently_shifted():
    mm = chain(30.0, (33.0, 33.0, 33.0, 33.0))[:4]  # L1/L2..L4/L5: L5/S1 missed
    a = assign_levels(mm / 0.5, np.full(4, 0.9), SP)
    assert a.status == AMBIGUOUS
    assert any("nothing shows the lowest box is L5/S1" in n for n in a.notes)
    # the caller's evidence (another plane, a sacrum detection) would anchor it
    assert assign_levels(mm / 0.5, np.full(4, 0.9), SP, lowest_is_l5s1=True).status == OK


@pytest.mark.parametrize("turn", [0.0, 20.0, 40.0, 70.0])
def test_extra_box_below_l5s1_is_flagged(turn):
    mm = chain(25.0, (33.0, 33.0, 33.0, 33.0), tilt_deg=20.0)
    last = mm[4] - mm[3]
    t = np.deg2rad(turn)
    extra = mm[4] + 0.8 * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ last
    a = assign_levels(np.vstack([mm, extra]) / 0.5, np.full(6, 0.9), SP)
    assert a.status == AMBIGUOUS, (turn, a)


def test_weak_extra_box_below_l5s1_is_left_out_but_the_count_stays_in_doubt():
    """A weak box below the discs (a sacral line) is not counted, so every level is named
    right; a faint true L5/S1 would look the same, so the count is flagged, never silent."""
    mm = chain(25.0, (33.0, 33.0, 33.0, 33.0), tilt_deg=20.0)
    extra = mm[4] + 0.8 * (mm[4] - mm[3])
    a = assign_levels(np.vstack([mm, extra]) / 0.5, np.r_[np.full(5, 0.9), 0.2], SP)
    assert a.status == AMBIGUOUS and _names(a, LEVELS + [None]) == {lv: lv for lv in LEVELS}


def test_weak_boxes_below_a_chain_with_a_thoracic_disc_on_top_still_name_l5s1_right():
    """The trained detector's typical slice: two weak boxes below L5/S1 and T12/L1 above L1/L2."""
    mm = chain(25.0, (33.0, 33.0, 33.0, 33.0), tilt_deg=10.0)  # L1/L2 .. L5/S1
    t12 = mm[0] + (mm[0] - mm[1])
    below = [mm[4] + 0.9 * (mm[4] - mm[3]), mm[4] + 1.7 * (mm[4] - mm[3])]
    conf = np.r_[np.full(6, 0.85), 0.08, 0.09]
    a = assign_levels(np.vstack([mm, t12, *below]) / 0.5, conf, SP)
    assert _names(a, LEVELS + ["T12/L1", None, None]) == {lv: lv for lv in LEVELS}
    assert a.status == AMBIGUOUS  # six confident discs: one plane cannot prove which end is extra


def test_flipped_image_counts_from_the_feet_given_the_head_direction():
    mm = chain(30.0, (33.0, 33.0, 33.0, 33.0))
    flipped = mm * [1, -1] + [0, 600]  # upside-down image: the head is at the bottom
    a = assign_levels(flipped / 0.5, np.full(5, 0.9), SP, head=(0.0, 1.0))
    assert a.status == OK and _names(a, LEVELS) == {lv: lv for lv in LEVELS}


def test_naming_check_on_real_ranges_meets_the_targets():
    rng = np.random.default_rng(3)
    chains = [naming_check.Chain(str(i), mm, float(rng.uniform(220, 400)))
              for i, mm in enumerate(random_chains(800, seed=7))]
    bends = np.array([naming_check.bend_deg(c.mm) for c in chains])
    offs = np.array([naming_check.max_offline_mm(c.mm) for c in chains])
    assert np.percentile(bends, 95) > 48 and np.percentile(offs, 99) > 13  # as hard as real spines
    report = naming_check.evaluate(chains)
    for sc, rep in report.items():
        assert rep["all"]["silent"] == 0, sc
    for label, b in report["true"]["bend"].items():
        assert b["n"] > 100 and b["confirmed"] >= 0.99, (label, b)
    for label, b in report["true"]["fov"].items():
        assert b["n"] > 50 and b["confirmed"] >= 0.99, (label, b)
    assert report["drop_l5s1"]["all"]["doubt"] == 1.0 and report["extra_below"]["all"]["doubt"] == 1.0
    assert report["extra_above"]["all"]["confirmed"] >= 0.99


def test_naming_check_reads_a_coordinates_table(tmp_path):
    mm = chain(30.0, (33.0, 33.0, 33.0, 33.0), origin=(150.0, 250.0))
    px = mm / (300.0 / 512)
    rows = [{"series_id": 7, "condition": "Spinal Canal Stenosis", "level": lv, "x": x, "y": y,
             "rows": 512, "cols": 512} for lv, (x, y) in zip(LEVELS, px)]
    rows.append({"series_id": 8, "condition": "Spinal Canal Stenosis", "level": "L1/L2", "x": 1.0, "y": 1.0,
                 "rows": 512, "cols": 512})  # incomplete: skipped
    path = tmp_path / "coords.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = tmp_path / "naming.json"
    assert naming_check.main(["--coords", str(path), "--fov-mm", "250", "350", "--out", str(out),
                              "--scenarios", "true", "drop_l5s1"]) == 0
    rep = json.loads(out.read_text())
    assert rep["true"]["all"] == {"n": 2, "right": 1.0, "confirmed": 1.0, "doubt": 0.0, "silent": 0}
    assert rep["true"]["fov"]["<260"]["n"] == 1 and rep["true"]["fov"][">=340"]["n"] == 1
    assert rep["drop_l5s1"]["all"]["silent"] == 0


def test_stray_boxes_do_not_buy_a_chain_of_double_links():
    """A regular spine (~36 mm spacing) with weak stray boxes beside its top: a chain reading
    each spacing as two missed discs could take the strays in and would name every level above
    L5/S1 wrong. Measured on a pooled sag_t2 series of the default data (patient y, -z in mm)."""
    yz = np.array([[14.3, 48.1], [-20.9, 63.8], [12.1, 81.5], [-24.1, 92.2], [13.1, 116.9],
                   [14.9, 154.4], [19.0, 190.8], [25.8, 225.2]])
    conf = np.array([0.40, 0.06, 1.95, 0.36, 2.74, 3.27, 4.17, 3.99]) / 6
    a = assign_levels(yz, conf, (1.0, 1.0))
    assert {lv: int(i) for lv, i in a.chosen.items()} == dict(zip(schema.LEVELS, (2, 4, 5, 6, 7)))
