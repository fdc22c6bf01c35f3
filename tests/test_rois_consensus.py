"""Levels of a sagittal series from all its slices at once (lsdc.rois.consensus): one slice
that misses a faint L5/S1 must not name the series one level too high as if known."""

import numpy as np
import pandas as pd

from lsdc import schema
from lsdc.detect.anatomy import AMBIGUOUS, OK
from lsdc.params import DetectAnatomy
from lsdc.rois import consensus

# disc centres in patient (x, y, z) mm, L1/L2 first; T12/L1 above, the usual ~33 mm apart
DISCS = {lv: np.array([0.0, 5.0 * k, -100.0 - 33.0 * k]) for k, lv in enumerate(schema.LEVELS)}
T12 = np.array([0.0, -5.0, -67.0])


def _rows(slices):
    """slices: list of [(point, conf, per-slice level)] -> (det frame, points mm)."""
    rows, pts = [], []
    for i, boxes in enumerate(slices):
        for point, conf, level in boxes:
            rows.append((i, level, None, 0.0, 0.0, conf, OK, ""))
            pts.append(point)
    det = pd.DataFrame(rows, columns=["image", "level", "side", "x", "y", "conf", "status", "notes"])
    return det, np.array(pts, float)


def test_a_slice_that_missed_l5s1_is_renamed_by_the_series():
    full = [(DISCS[lv], 0.8, lv) for lv in schema.LEVELS]
    # this slice missed L5/S1 and counted T12/L1 as L1/L2: every name one level too high
    shifted = [(T12, 0.5, "L1/L2")] + [(DISCS[lv], 0.8, schema.LEVELS[k + 1]) for k, lv in enumerate(schema.LEVELS[:4])]
    det, pts = _rows([full, full, shifted, full])
    levels = consensus.series_levels(pts, det["image"].to_numpy(), det["conf"].to_numpy(), DetectAnatomy())
    assert levels.ok and sorted(levels.reference) == sorted(schema.LEVELS)
    np.testing.assert_allclose(levels.reference["L5/S1"], DISCS["L5/S1"])
    out = consensus.rename(det, pts, levels, "test")
    named = out[out["image"] == 2]
    assert sorted(named["level"]) == sorted(schema.LEVELS[:4])  # T12/L1 is no lumbar level: dropped
    for row_id, row in named.iterrows():
        np.testing.assert_allclose(pts[row_id], DISCS[row["level"]])
    assert (out["status"] == OK).all()


def test_a_faint_l5s1_seen_on_some_slices_puts_the_series_in_doubt():
    """The mid slices see T12/L1 to L4/L5 clearly and no L5/S1; slices beside them see L5/S1
    faintly: counting from the lowest clear disc would shift every level silently."""
    clear = [(T12, 0.6, "L1/L2")] + [(DISCS[lv], 0.75, schema.LEVELS[k + 1]) for k, lv in enumerate(schema.LEVELS[:4])]
    faint = [(DISCS["L5/S1"], 0.1, "L5/S1"), (DISCS["L4/L5"], 0.1, "L4/L5")]
    det, pts = _rows([faint, clear, clear, clear, faint])
    levels = consensus.series_levels(pts, det["image"].to_numpy(), det["conf"].to_numpy(), DetectAnatomy())
    assert not levels.ok
    out = consensus.rename(det, pts, levels, "test")
    assert (out["status"] == AMBIGUOUS).all() and "in doubt" in out["notes"].iloc[0]


def test_rows_without_geometry_keep_their_own_naming():
    det, pts = _rows([[(DISCS[lv], 0.8, lv) for lv in schema.LEVELS]])
    pts[0] = np.nan
    levels = consensus.series_levels(pts, det["image"].to_numpy(), det["conf"].to_numpy(), DetectAnatomy())
    out = consensus.rename(det, pts, levels, "test")
    assert len(out) == 5 and out["level"].iloc[0] == "L1/L2" and out["notes"].iloc[0] == ""


def _shifted(ref: dict[str, np.ndarray], by: int) -> dict[str, np.ndarray]:
    """A guess counted `by` levels too high: each level's name on the structure `by` below."""
    names = list(schema.LEVELS)
    return {names[k - by]: ref[lv] for k, lv in enumerate(names) if k - by >= 0}


def test_same_anchor_compares_the_structure_counted_as_l5s1():
    foramen = {lv: p + np.array([20.0, 6.0, 2.0]) for lv, p in DISCS.items()}  # beside and behind the disc
    assert consensus.same_anchor(DISCS, foramen, 14.0)
    gap = {lv: p for lv, p in foramen.items() if lv != "L2/L3"}  # a missed level above does not matter
    assert consensus.same_anchor(DISCS, gap, 14.0)
    assert not consensus.same_anchor(DISCS, _shifted(DISCS, 1), 14.0)  # L5/S1 missed: counted from L4/L5
    assert not consensus.same_anchor(DISCS, {"L1/L2": DISCS["L1/L2"], "L2/L3": DISCS["L2/L3"]}, 14.0)


def test_vote_takes_the_guess_most_chains_share():
    wrong = _shifted(DISCS, 1)  # the canal chain lost a faint L5/S1
    pick, agreeing = consensus.vote({"sag_t2": wrong, "sag_t1 left": DISCS, "sag_t1 right": DISCS}, 14.0)
    assert pick == "sag_t1 left" and agreeing == ["sag_t1 left", "sag_t1 right"]
    pick, agreeing = consensus.vote({"sag_t2": DISCS, "sag_t1 left": wrong, "sag_t1 right": DISCS}, 14.0)
    assert pick == "sag_t2" and agreeing == ["sag_t2", "sag_t1 right"]
    # no two agree: the first (the canal chain) is kept, alone
    pick, agreeing = consensus.vote({"sag_t2": DISCS, "sag_t1 left": wrong, "sag_t1 right": _shifted(DISCS, 2)}, 14.0)
    assert pick == "sag_t2" and agreeing == ["sag_t2"]
    assert consensus.vote({"sag_t2": {}}, 14.0) == ("", [])
