"""The level-naming table (issue 12, item 4): stage on a tiny stress set with stand-in
detectors, the bins, silent shifts, mirrored axial sides, the README block."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json

import pandas as pd
import pytest

from lsdc import headline, report
from lsdc.detect import naming_eval
from lsdc.params import Naming, Params, Synth
from lsdc.stages import evaluate_naming as stage
from naming_fixtures import TruthBoxes

TINY = dataclasses.replace(Params(), synth=Synth(image_scale=0.3, sag_slices=(9, 11), axial_per_level=(2, 2)),
                           naming=Naming(studies=4, seed=11))


@pytest.fixture(scope="module")
def stress_set(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("naming")
    ps, index_dir, folds = naming_eval.build_stress_set(TINY, scratch / "set")
    return ps, index_dir, folds, scratch


def _measure(stress_set, source, name):
    ps, index_dir, folds, scratch = stress_set
    return naming_eval.measure_set(TINY, ps, index_dir, folds, scratch / name, source)


def test_stress_set_is_the_stress_profile(stress_set):
    ps, _, folds, _ = stress_set
    assert ps.synth.stress and ps.synth.n_train == 4 and ps.synth.seed == 11
    assert set(pd.read_parquet(folds)["fold"]) == {TINY.detect.export.val_fold}  # every study validates


def test_perfect_boxes_name_every_level_without_silent_shifts(stress_set):
    m = _measure(stress_set, TruthBoxes(), "perfect")
    assert m["alone"]["series"] >= 8 and m["alone"]["min_bin_right"] == 1.0
    for plane in ("sag_t1", "sag_t2"):
        d = m["detected"][plane]
        assert d["slices"] > 0 and d["all"]["share"] == 1.0 and d["min_bin_right"] == 1.0
        assert d["points_right_within"] == 1.0 and d["silent"] == 0
    assert m["detected"]["min_bin_right"] == 1.0 and m["silent_shifts"] == 0
    sides = m["sides"]
    assert sides["mirrored_row"]["found"] > 0 and sides["not_mirrored"]["found"] > 0  # seed 11 draws both
    assert all(v["side_right"] == 1.0 for v in sides.values() if v["found"])
    head, details = headline.split("naming", m)
    mirrored = {k: {"side_right": 1.0} for k in ("mirrored_row", "mirrored_col") if sides[k]["found"]}
    assert head == {"alone": {"min_bin_right": 1.0}, "detected": {"min_bin_right": 1.0}, "silent_shifts": 0,
                    **({"sides": mirrored} if mirrored else {})}
    assert "scenarios" in details["alone"]


def test_missed_l5s1_is_flagged_never_silent(stress_set):
    m = _measure(stress_set, TruthBoxes(drop=("L5/S1",)), "drop")
    for plane in ("sag_t1", "sag_t2"):
        d = m["detected"][plane]
        assert d["all"]["share"] == 0.0  # every slice loses L5/S1 and the rest are guesses
        assert d["slices_doubt"] == d["slices"] and d["silent"] == 0
    assert m["silent_shifts"] == 0


class _NothingFound:
    def points(self, plane, images, spacings, sides=None, midlines=None):
        from lsdc.rois.detectors import empty_points

        return empty_points()


def test_stage_writes_headline_and_details(stress_set, tmp_path, monkeypatch):
    monkeypatch.setattr(stage.tracking, "stage_run", lambda *a, **k: contextlib.nullcontext())
    monkeypatch.setattr(stage.tracking, "log_metrics", lambda *a, **k: None)
    monkeypatch.setattr(stage.tracking, "log_artifact", lambda *a, **k: None)
    ps, index_dir, folds, _ = stress_set
    monkeypatch.setattr(naming_eval, "build_stress_set", lambda p, scratch, workers=0: (ps, index_dir, folds))
    monkeypatch.setattr(naming_eval, "YoloBoxes", lambda *a, **k: TruthBoxes())
    monkeypatch.setattr(naming_eval, "YoloDetectors", lambda *a, **k: _NothingFound())
    out = tmp_path / "metrics" / "naming.json"
    args = argparse.Namespace(models_dir=tmp_path / "models", scratch=tmp_path / "scratch", metrics=out)
    assert stage.main(TINY, args) == 0
    head = json.loads(out.read_text())
    assert head["silent_shifts"] == 0 and head["alone"]["min_bin_right"] == 1.0
    # the pipeline measure ran ROI extraction on the stress studies: nothing found, every crop imputed
    pipe = headline.load(out)["pipeline"]
    assert pipe["crops"] > 0 and pipe["silent"] == 0 and head["silent_shifts_pipeline"] == 0
    assert headline.load(out)["detected"]["sag_t2"]["all"]["share"] == 1.0


# ---------------------------------------------------------------- bins and counting

def test_bins_edges_and_minimum():
    bends = pd.DataFrame({"series_id": [1, 2], "condition": ["Spinal Canal Stenosis"] * 2,
                          "bend": [15.0, 45.0], "study_id": [10, 20]})
    images = pd.DataFrame({"stem": ["a", "b", "c"], "series_id": [1, 2, 3], "study_id": [10, 20, 20],
                           "rows": [256, 300, 200], "cols": [256, 300, 200],
                           "pixel_spacing_row": [1.0, 1.0, 1.5], "pixel_spacing_col": [1.0, 1.0, 1.5]})
    points = pd.DataFrame({"stem": ["a", "b", "c"], "condition": ["Spinal Canal Stenosis"] * 3})
    bins = naming_eval.slice_bins(images, points, bends).set_index("stem")
    assert bins.loc["a"].tolist() == ["15-30", "<260"]  # 15 deg belongs to the upper bin; 256 mm
    assert bins.loc["b"].tolist() == [">45", "300-340"]
    assert bins.loc["c"].tolist() == [">45", "300-340"]  # incomplete chain: its study's bend; 1.5 x 200
    frame = bins.reset_index().assign(ok=[True, False, True])
    table = naming_eval.share_by_bin(frame, "ok")
    assert table["all"] == {"n": 3, "share": pytest.approx(0.6667)}
    assert table["bend"][">45"]["share"] == 0.5 and table["bend"]["<15"] == {"n": 0, "share": None}
    assert naming_eval.min_over_bins(table) == 0.5  # empty bins are left out


def test_silent_shift_only_on_an_ok_slice():
    truth = pd.DataFrame({"stem": ["s"] * 2, "level": ["L4/L5", "L5/S1"], "x": [50.0, 52.0], "y": [100.0, 130.0],
                          "pixel_spacing_row": 1.0, "pixel_spacing_col": 1.0})
    pred = pd.DataFrame({"stem": ["s", "s", "t"], "level": ["L3/L4", "L4/L5", "L3/L4"], "x": [50.5, 52.0, 0.0],
                         "y": [101.0, 129.0, 0.0], "status": ["ok", "ok", "ok"]})
    assert naming_eval.silent_shifts(truth, pred, 5.0).to_dict() == {"s": 2}  # both named one level up
    assert naming_eval.silent_shifts(truth, pred.assign(status="ambiguous"), 5.0).empty
    far = pred.assign(x=pred["x"] + 20)  # nowhere near a true point: a localisation miss, not a shift
    assert naming_eval.silent_shifts(truth, far, 5.0).empty


def test_mirror_kind_from_orientation():
    images = pd.DataFrame({"stem": ["u", "r", "c"], "study_id": 1, "series_id": [1, 2, 3], "instance_number": 1,
                           "rows": 64, "cols": 64, "pixel_spacing_row": 1.0, "pixel_spacing_col": 1.0})
    iop = {1: (1, 0, 0, 0, 1, 0), 2: (-1, 0, 0, 0, 1, 0), 3: (1, 0, 0, 0, -1, 0)}
    instances = pd.DataFrame([{"study_id": 1, "series_id": s, "instance_number": 1, "ipp_x": 0.0, "ipp_y": 0.0,
                               "ipp_z": 0.0, **dict(zip(("iop_rx", "iop_ry", "iop_rz", "iop_cx", "iop_cy", "iop_cz"),
                                                        map(float, v)))} for s, v in iop.items()])
    assert naming_eval.mirror_kind(images, instances).to_dict() == {
        "u": "not_mirrored", "r": "mirrored_row", "c": "mirrored_col"}


# ---------------------------------------------------------------- the README block

def _cell(n, share):
    return {"n": n, "share": share}


def _naming_metrics():
    bins = {"bend": {b: _cell(5, 1.0) for b in ("<15", "15-30", "30-45", ">45")},
            "fov": {b: _cell(5, 1.0) for b in ("<260", "260-300", "300-340", ">=340")}}
    alone_bins = {k: {b: {"n": 4, "right": 1.0, "doubt": 0.0, "silent": 0} for b in v} for k, v in bins.items()}
    scen = {"true": {"all": {"n": 16, "right": 1.0, "doubt": 0.0, "silent": 0}, **alone_bins},
            "drop_l5s1": {"all": {"n": 16, "right": 0.0, "doubt": 1.0, "silent": 0}, **alone_bins}}
    det = {"slices": 20, "silent": 1, "min_bin_right": 0.9, "all": _cell(20, 0.95), **bins}
    det["fov"] = {**bins["fov"], "<260": _cell(10, 0.9)}
    return {"studies": 30, "within_mm": 5.0, "alone": {"min_bin_right": 1.0, "silent": 0, "scenarios": scen},
            "detected": {"min_bin_right": 0.9, "sag_t1": det, "sag_t2": {**det, "silent": 0}},
            "silent_shifts": 1,
            "pipeline": {"crops": 300, "within": 0.95, "silent": 2, "flagged": 5,
                         "by_plane": {"sag_t2": {"within": 0.96}, "sag_t1": {"within": 0.94}, "ax_t2": {"within": 0.95}}},
            "sides": {"mirrored_row": {"points": 10, "found": 9, "side_right": 1.0, "series": 2},
                      "mirrored_col": {"points": 0, "found": 0, "side_right": None, "series": 0},
                      "not_mirrored": {"points": 40, "found": 40, "side_right": 0.975, "series": 8}}}


def test_naming_block_renders_the_table(tmp_path):
    headline.write("naming", _naming_metrics(), tmp_path / "naming.json")
    headline.write("detectors", {"loc_right_within": 0.892, "loc_median_mm": 0.3}, tmp_path / "detectors/sag_t1.json")
    headline.write("rois", {"distance_mm": {"within_5mm": 0.981}}, tmp_path / "rois.json")
    text = report.naming_block(tmp_path)
    assert "30 generated `stress` studies" in text
    assert "| field of view, mm <260 | 100.0 % (4) | 90.0 % (10) | 90.0 % (10) |" in text
    assert "| **all** | 100.0 % (16) | 95.0 % (20) | 95.0 % (20) |" in text
    assert "silent level shifts (a wrong level without a doubt flag): **1** (**misses** 0)" in text
    assert "mirrored row 100.0 % (9 points, 2 series)" in text and "not mirrored 97.5 %" in text
    assert ("centre crops within 5 mm of their point 95.0 % (sag_t2 96.0 %, sag_t1 94.0 %, ax_t2 95.0 %); "
            "crops centred on another level's structure: **2 silent** (**misses** 0), 5 flagged as imputed, of 300") in text
    alone = next(x for x in text.splitlines() if "each slice named alone" in x)
    assert "sag_t1 89.2 %" in alone and "97 %" not in alone  # a diagnostic: (b)'s target is on the pipeline's names
    assert "within 5 mm of the crop centre 98.1 % (meets 97 %)" in text


def test_naming_block_without_metrics_says_not_measured(tmp_path):
    text = report.naming_block(tmp_path)
    assert text.startswith("Not measured yet") and "metrics/naming.json" in text
    assert "|" not in text  # no table, no other rows either without their files
