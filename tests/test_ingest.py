"""lsdc.ingest: index tables of a tiny hand-made RSNA root, and one test per bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.data import get_testdata_file

from lsdc import headline, schema
from lsdc.ingest import NotRsnaRootError, build_index
from lsdc.ingest import problems as pk
from lsdc.ingest.build import index_metrics
from tests.rsna_layout import PLANE_SHAPES, make_root, series_dir, write_slice

TRAIN, TEST = (1001, 1002), (2001,)
N_SLICES = 3


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "rsna", TRAIN, TEST, slices=N_SLICES)


def ingest(root: Path, **kwargs):
    return build_index(root, workers=0, near_origin_px=10.0, **kwargs)


def only(index, kind: str) -> pd.DataFrame:
    """Quarantine rows of one kind, asserting no row of another kind appeared."""
    q = index.quarantine
    assert set(q["kind"]) <= {kind}, q[["kind", "reason"]].to_string()
    return q[q["kind"] == kind]


def assert_complete(index, n_instances: int = (len(TRAIN) + len(TEST)) * 3 * N_SLICES) -> None:
    assert len(index.instances) == n_instances
    assert len(index.labels) == 25 * len(TRAIN)
    assert set(index.studies["study_id"]) >= set(TRAIN) | set(TEST)


def test_clean_root_has_no_problems_and_full_tables(root, tmp_path):
    index = ingest(root)
    assert index.quarantine.empty
    assert_complete(index)
    s = index.studies.set_index("study_id")
    assert s.loc[1001, "n_graded"] == 24 and s.loc[1002, "n_graded"] == 25
    assert s.loc[2001, "split"] == "test" and s.loc[2001, "n_graded"] == 0
    assert s[["has_sag_t1", "has_sag_t2", "has_ax_t2", "on_disk"]].all().all()
    assert (s["n_series"] == 3).all() and (s["n_problems"] == 0).all()
    missing = index.labels[index.labels["severity_code"] == schema.IGNORE_INDEX]
    assert len(missing) == 1 and missing["severity"].isna().all()
    assert index.labels["severity_code"].dtype == np.int8
    # axial instance numbers run against space (z up): rank 0 is the highest instance number
    inst = index.instances
    axial = inst[(inst["series_id"] == 10012)].sort_values("spatial_rank")
    assert axial["instance_number"].tolist() == [3, 2, 1] and axial["geometry_ok"].all()
    assert axial["normal_pos"].tolist() == [-30.0, -26.0, -22.0]
    assert inst["frame_of_reference_uid"].isna().all()  # optional tag, absent here: null, not "None"
    for _, group in inst.groupby("series_id"):
        assert group.sort_values("normal_pos")["spatial_rank"].tolist() == list(range(len(group)))
    assert (inst["transfer_syntax"][inst["series_id"] == 10011] == "1.2.840.10008.1.2.5").all()
    assert inst["path"].iloc[0] == "train_images/1001/10010/1.dcm"
    assert (root / inst["path"].iloc[0]).is_file()
    c = index.coords
    assert len(c) == 50 and c["in_image"].all() and not c["near_origin"].any()
    assert (c["plane"] == c["condition"].map(schema.PLANE_OF_CONDITION)).all()
    # pixel -> patient: sag_t2 slice 2 of study 1001 has IPP (-6, -10, 20), R=(0,1,0), C=(0,0,-1)
    row = c[(c["study_id"] == 1001) & (c["level"] == "L1/L2") & (c["condition"] == schema.CONDITIONS[0])]
    assert row[["px", "py", "pz"]].to_numpy().tolist() == [[-6.0, -10.0 + 16 * 0.5, 20.0 - 20 * 0.5]]
    sev = index.labels.set_index(["study_id", "condition", "level"])["severity_code"]
    joined = sev.loc[list(zip(c["study_id"], c["condition"], c["level"]))].to_numpy()
    assert np.array_equal(joined, c["severity_code"].to_numpy())
    paths = index.write(tmp_path / "index")
    assert sorted(p.name for p in paths) == sorted(f"{t}.parquet" for t in index.tables())
    back = pd.read_parquet(tmp_path / "index" / "instances.parquet")
    assert len(back) == len(inst) and back["geometry_ok"].dtype == bool


def test_workers_give_the_same_tables(root):
    serial, parallel = ingest(root), build_index(root, workers=2)
    for name, frame in serial.tables().items():
        pd.testing.assert_frame_equal(frame, parallel.tables()[name], obj=name)


def test_unknown_series_description(root):
    path = root / schema.TRAIN_SERIES_CSV
    frame = pd.read_csv(path)
    frame.loc[0, "series_description"] = "Coronal STIR"
    frame.to_csv(path, index=False)
    index = ingest(root)
    row = only(index, pk.UNKNOWN_DESCRIPTION).iloc[0]
    assert row["series_id"] == 10010 and "Coronal STIR" in row["reason"] and schema.TRAIN_SERIES_CSV in row["reason"]
    s = index.series.set_index("series_id")
    assert s.loc[10010, "plane"] is None and s.loc[10011, "plane"] == "sag_t2"
    assert_complete(index)
    assert not index.studies.set_index("study_id").loc[1001, "has_sag_t1"]


def test_study_and_series_in_csv_but_not_on_disk(root):
    shutil.rmtree(root / schema.TRAIN_IMAGES / "1002")
    shutil.rmtree(series_dir(root, 1001, "ax_t2"))
    index = ingest(root)
    q = index.quarantine
    assert q["kind"].value_counts().to_dict() == {pk.STUDY_NOT_ON_DISK: 1, pk.SERIES_NOT_ON_DISK: 1}
    study_row = q[q["kind"] == pk.STUDY_NOT_ON_DISK].iloc[0]
    assert study_row["study_id"] == 1002 and "train_images/1002" in study_row["reason"]
    assert q[q["kind"] == pk.SERIES_NOT_ON_DISK].iloc[0]["series_id"] == 10012
    assert len(index.instances) == (len(TRAIN) + len(TEST)) * 3 * N_SLICES - 4 * N_SLICES
    assert not index.studies.set_index("study_id").loc[1002, "on_disk"]
    assert not index.series.set_index("series_id").loc[10012, "on_disk"]
    assert len(index.labels) == 50 and len(index.coords) == 50
    assert not index.coords.loc[index.coords["study_id"] == 1002, "in_image"].any()


def test_folders_on_disk_but_not_in_csv(root):
    shutil.copytree(series_dir(root, 1001, "sag_t1"), root / schema.TRAIN_IMAGES / "1001" / "777")
    shutil.copytree(root / schema.TRAIN_IMAGES / "1002", root / schema.TRAIN_IMAGES / "3003")
    index = ingest(root)
    q = index.quarantine
    assert q["kind"].value_counts().to_dict() == {pk.SERIES_NOT_IN_CSV: 1, pk.STUDY_NOT_IN_CSV: 1}
    assert q.loc[q["kind"] == pk.SERIES_NOT_IN_CSV, "path"].item() == "train_images/1001/777"
    assert q.loc[q["kind"] == pk.STUDY_NOT_IN_CSV, "study_id"].item() == 3003
    extra = index.series[index.series["series_id"] == 777].iloc[0]
    assert extra["on_disk"] and not extra["in_csv"] and extra["series_description"] is None
    assert_complete(index, (len(TRAIN) + len(TEST)) * 3 * N_SLICES + 4 * N_SLICES)


def test_truncated_empty_and_non_dicom_files(root):
    d = series_dir(root, 1001, "sag_t2")  # RLE series
    data = (d / "1.dcm").read_bytes()
    (d / "1.dcm").write_bytes(data[: len(data) // 2])
    (d / "2.dcm").write_bytes(b"")
    (d / "9.dcm").write_text("<html>not an image</html>")
    index = ingest(root)
    counts = index.quarantine["kind"].value_counts().to_dict()
    # the 5 canal coordinates of study 1001 sit on the now empty instance 2
    assert counts == {pk.TRUNCATED: 1, pk.EMPTY_FILE: 1, pk.NOT_DICOM: 1, pk.COORD_NO_INSTANCE: 5}
    q = index.quarantine.drop_duplicates("kind").set_index("kind")
    assert "instance file train_images/1001/10011/2.dcm not found" in q.loc[pk.COORD_NO_INSTANCE, "reason"]
    assert q.loc[pk.TRUNCATED, "path"] == "train_images/1001/10011/1.dcm"
    for kind, name in ((pk.TRUNCATED, "1.dcm"), (pk.EMPTY_FILE, "2.dcm"), (pk.NOT_DICOM, "9.dcm")):
        assert f"train_images/1001/10011/{name}" in q.loc[kind, "reason"]
        assert str(root) not in q.loc[kind, "reason"]  # paths are relative to the root
    assert_complete(index, (len(TRAIN) + len(TEST)) * 3 * N_SLICES - 2)
    assert index.series.set_index("series_id").loc[10011, "n_instances"] == 1


def test_a_file_cut_inside_its_header_is_truncated_not_no_pixel_data(root):
    """Issue 16.6: cut to 200 bytes (inside the file meta of an MR image object)."""
    d = series_dir(root, 1001, "sag_t1")
    (d / "1.dcm").write_bytes((d / "1.dcm").read_bytes()[:200])
    index = ingest(root)
    row = only(index, pk.TRUNCATED).iloc[0]
    assert row["path"] == "train_images/1001/10010/1.dcm" and "MR Image Storage" in row["reason"]
    assert "train_images/1001/10010/1.dcm" in row["reason"]


def test_study_in_the_series_csv_and_on_disk_but_not_in_train_csv(root):
    """Issue 16.2: its labels cannot appear, but the study must not vanish silently."""
    frame = pd.read_csv(root / schema.TRAIN_CSV, dtype=str, keep_default_na=False)
    frame[frame["study_id"] != "1002"].to_csv(root / schema.TRAIN_CSV, index=False)
    index = ingest(root)
    row = only(index, pk.STUDY_NOT_IN_LABELS).iloc[0]
    assert row["study_id"] == 1002 and row["path"] == "train_images/1002"
    assert "no row in train.csv" in row["reason"] and "train_images/1002/" in row["reason"]
    assert len(index.labels) == 25 and set(index.labels["study_id"]) == {1001}
    s = index.studies.set_index("study_id")
    assert s.loc[1002, "split"] == "train" and s.loc[1002, "n_problems"] == 1


def test_header_only_train_csv_is_reported_once(root):
    """Issue 16.3: a train.csv with its header and no row gives one empty_csv row (the run
    goes on: the images and coordinates are still indexed, e.g. for inference)."""
    header = (root / schema.TRAIN_CSV).read_text().splitlines()[0]
    (root / schema.TRAIN_CSV).write_text(header + "\n")
    index = ingest(root)
    row = only(index, pk.EMPTY_CSV).iloc[0]
    assert row["path"] == schema.TRAIN_CSV and "header but no data rows" in row["reason"]
    assert index.labels.empty and len(index.instances) == (len(TRAIN) + len(TEST)) * 3 * N_SLICES
    assert index_metrics(index)["quarantine"][pk.EMPTY_CSV] == 1


def test_header_only_coordinates_csv_is_reported(root):
    header = (root / schema.COORDS_CSV).read_text().splitlines()[0]
    (root / schema.COORDS_CSV).write_text(header + "\n")
    index = ingest(root)
    assert only(index, pk.EMPTY_CSV)["path"].tolist() == [schema.COORDS_CSV]
    assert index.coords.empty and len(index.labels) == 50


def test_bad_and_path_like_ids_never_escape_the_root(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write_slice(outside / "1.dcm")
    images = root / schema.TRAIN_IMAGES
    shutil.copytree(images / "1002", images / "abc")
    os.symlink(outside, images / "1001" / "555")  # numeric series folder linking out of the root
    os.symlink(outside.parent, images / "4004")  # numeric study folder linking out of the root
    path = root / schema.TRAIN_SERIES_CSV
    frame = pd.read_csv(path, dtype=str)
    extra = pd.DataFrame([{"study_id": "../../etc", "series_id": "1", "series_description": "Axial T2"}])
    pd.concat([frame, extra]).to_csv(path, index=False)
    index = ingest(root)
    q = index.quarantine
    assert q["kind"].value_counts().to_dict() == {pk.BAD_ID: 2, pk.PATH_ESCAPE: 2}
    reasons = " | ".join(q["reason"])
    assert "'abc'" in reasons and "'../../etc'" in reasons and "train_images/4004" in reasons
    assert not index.instances["path"].str.contains("abc|555|4004|\\.\\.").any()
    assert_complete(index)


def test_coordinates_outside_image_and_near_origin(root):
    path = root / schema.COORDS_CSV
    frame = pd.read_csv(path)
    frame.loc[0, ["x", "y"]] = [500.0, 3.0]  # outside the 32x40 sag_t2 image
    frame.loc[1, ["x", "y"]] = [5.0, 5.0]  # a misplaced click
    frame.to_csv(path, index=False)
    index = ingest(root)
    q = index.quarantine.set_index("kind")
    assert set(q.index) == {pk.COORD_OUTSIDE_IMAGE, pk.COORD_NEAR_ORIGIN}
    assert "x=500" in q.loc[pk.COORD_OUTSIDE_IMAGE, "reason"]
    assert schema.COORDS_CSV in q.loc[pk.COORD_NEAR_ORIGIN, "reason"]
    c = index.coords
    assert c["in_image"].tolist() == [False] + [True] * 49
    assert c["near_origin"].tolist() == [False, True] + [False] * 48
    assert len(c) == 50


def test_duplicate_and_conflicting_csv_rows(root):
    for name in (schema.TRAIN_CSV, schema.COORDS_CSV, schema.TRAIN_SERIES_CSV):
        frame = pd.read_csv(root / name, dtype=str, keep_default_na=False)
        pd.concat([frame, frame.iloc[[0]]]).to_csv(root / name, index=False)
    frame = pd.read_csv(root / schema.TRAIN_CSV, dtype=str, keep_default_na=False)
    conflict = frame.iloc[[1]].copy()
    conflict.iloc[0, 1] = "Severe" if conflict.iloc[0, 1] != "Severe" else "Moderate"
    pd.concat([frame, conflict]).to_csv(root / schema.TRAIN_CSV, index=False)
    index = ingest(root)
    q = index.quarantine
    assert q["kind"].value_counts().to_dict() == {pk.DUPLICATE_CSV_ROW: 3, pk.CONFLICTING_CSV_ROW: 1}
    dup = q[(q["kind"] == pk.DUPLICATE_CSV_ROW) & (q["path"] == schema.TRAIN_CSV)].iloc[0]
    assert "line 4 repeats line 2" in dup["reason"]
    assert "line 5" in q.loc[q["kind"] == pk.CONFLICTING_CSV_ROW, "reason"].item()
    assert_complete(index)
    assert len(index.coords) == 50 and len(index.series) == 9
    original = index.labels[(index.labels["study_id"] == 1002)]["severity"].iloc[0]
    assert original == "Normal/Mild"  # the first row wins


def test_mixed_shapes_series(root):
    d = series_dir(root, 2001, "ax_t2", split="test")
    write_slice(d / "1.dcm", rows=30, cols=32, instance=1, ipp=(-20, -10, -22), iop=(1, 0, 0, 0, 1, 0))
    index = ingest(root)
    row = only(index, pk.MIXED_SHAPES).iloc[0]
    assert row["series_id"] == 20012 and "24x32 (2 files)" in row["reason"] and "30x32 (1 files)" in row["reason"]
    s = index.series.set_index("series_id").loc[20012]
    assert s["mixed_shapes"] and (s["rows"], s["cols"]) == PLANE_SHAPES["ax_t2"]
    assert_complete(index)


def test_missing_thickness_is_fine_a_series_without_ipp_falls_back(root):
    d = series_dir(root, 1002, "sag_t1")
    write_slice(d / "1.dcm", instance=1, ipp=None, thickness=None)
    write_slice(d / "2.dcm", instance=2, ipp=None)
    write_slice(d / "3.dcm", instance=3, ipp=None)
    index = ingest(root)
    q = index.quarantine
    row = q[q["kind"] == pk.MISSING_GEOMETRY].iloc[0]
    assert row["series_id"] == 10020 and "3 of 3 files lack ImagePositionPatient (1.dcm, 2.dcm, 3.dcm)" in row["reason"]
    assert "ordered by instance number" in row["reason"]
    # the 10 foramina of study 1002 sit on its instance 2: pixel annotation kept, no patient position
    assert q["kind"].value_counts().to_dict() == {pk.MISSING_GEOMETRY: 1, pk.COORD_NO_GEOMETRY: 10}
    inst = index.instances[index.instances["series_id"] == 10020].sort_values("instance_number")
    assert not inst["geometry_ok"].any()
    assert inst["normal_pos"].tolist() == [1.0, 2.0, 3.0] and inst["spatial_rank"].tolist() == [0, 1, 2]
    assert np.isnan(inst["slice_thickness"].iloc[0]) and np.isnan(inst["ipp_x"].iloc[1])
    assert index.instances.loc[index.instances["series_id"] != 10020, "geometry_ok"].all()
    assert_complete(index)


def test_one_file_without_geometry_stays_a_one_file_problem(root):
    """Issue 16.7: one file of a series lacking IPP must not flip the others' spatial ranks
    nor their geometry_ok; its coordinates are flagged (no patient position)."""
    d = series_dir(root, 1001, "ax_t2")  # instance numbers run against space: 3, 2, 1
    clean = ingest(root).instances
    write_slice(d / "2.dcm", rows=24, cols=32, instance=2, ipp=None, iop=(1, 0, 0, 0, 1, 0),
                description="Axial T2")
    index = ingest(root)
    q = index.quarantine
    assert q["kind"].value_counts().to_dict() == {pk.MISSING_GEOMETRY: 1, pk.COORD_NO_GEOMETRY: 10}
    row = q[q["kind"] == pk.MISSING_GEOMETRY].iloc[0]
    assert row["series_id"] == 10012 and "1 of 3 files lack ImagePositionPatient (2.dcm)" in row["reason"]
    inst = index.instances[index.instances["series_id"] == 10012].set_index("instance_number")
    before = clean[clean["series_id"] == 10012].set_index("instance_number")
    assert inst["spatial_rank"].to_dict() == before["spatial_rank"].to_dict() == {3: 0, 2: 1, 1: 2}
    assert inst["geometry_ok"].to_dict() == {3: True, 2: False, 1: True}
    assert inst.loc[1, "normal_pos"] == before.loc[1, "normal_pos"]
    assert inst.loc[2, "normal_pos"] == pytest.approx(before.loc[2, "normal_pos"])  # placed between
    c = index.coords
    on_it = (c["series_id"] == 10012) & (c["instance_number"] == 2)
    assert on_it.sum() == 10 and not c.loc[on_it, "geometry_ok"].any() and c.loc[on_it, "px"].isna().all()
    assert c.loc[~on_it, "geometry_ok"].all() and c["in_image"].all()  # the pixel x, y stay valid
    no_geo = q[q["kind"] == pk.COORD_NO_GEOMETRY]
    assert (no_geo["path"] == "train_images/1001/10012/2.dcm").all()
    assert_complete(index)


def test_duplicate_slice_positions_name_the_files(root):
    d = series_dir(root, 1001, "sag_t1")
    write_slice(d / "1.dcm", instance=1, ipp=(-6.0, -10.0, 20.0))  # same IPP as instance 2
    index = ingest(root)
    row = only(index, pk.DUPLICATE_POSITION).iloc[0]
    assert row["series_id"] == 10010 and row["path"] == "train_images/1001/10010"
    assert "(2.dcm = 1.dcm)" in row["reason"] or "(1.dcm = 2.dcm)" in row["reason"]
    assert_complete(index)


@pytest.mark.parametrize("remove,missing", [
    ((schema.TRAIN_CSV,), "train.csv"),
    ((schema.TRAIN_SERIES_CSV, schema.TEST_SERIES_CSV), "*_series_descriptions.csv"),
])
def test_not_an_rsna_root_fails_naming_what_is_missing(root, remove, missing):
    for name in remove:
        (root / name).unlink()
    with pytest.raises(NotRsnaRootError, match=missing.replace("*", r"\*").replace(".", r"\.")):
        ingest(root)


def test_not_an_rsna_root_cli_exit_code(tmp_path, capsys):
    from lsdc import cli
    from lsdc.params import Data, Params, Runtime

    params = Params(data=Data(root=str(tmp_path)), runtime=Runtime(workers=0))
    args = cli.stage_args("ingest", "--out-dir", str(tmp_path / "index"), "--metrics", str(tmp_path / "m.json"),
                          "--no-tracking")
    assert cli.run_stage("ingest", params, args) == 2
    assert "missing train.csv" in capsys.readouterr().err
    assert not (tmp_path / "index").exists()


def test_csv_only_root_reports_missing_images_once_per_study(tmp_path):
    root = make_root(tmp_path / "csv_only", TRAIN, TEST, images=False)
    index = ingest(root)
    q = only(index, pk.STUDY_NOT_ON_DISK)
    assert sorted(q["study_id"]) == [*TRAIN, *TEST]
    assert index.instances.empty and len(index.series) == 9 and not index.series["on_disk"].any()
    assert len(index.labels) == 50 and len(index.coords) == 50
    assert not index.coords["in_image"].any() and index.coords["px"].isna().all()
    assert (index.coords["plane"] == index.coords["condition"].map(schema.PLANE_OF_CONDITION)).all()


def test_test_only_root_needs_allow_test_only(tmp_path):
    root = make_root(tmp_path / "kaggle", train=(), test=TEST)
    for name in (schema.TRAIN_CSV, schema.COORDS_CSV, schema.TRAIN_SERIES_CSV):
        (root / name).unlink()
    with pytest.raises(NotRsnaRootError, match="train.csv"):
        ingest(root)
    index = ingest(root, allow_test_only=True)
    assert index.quarantine.empty
    assert index.studies["split"].tolist() == ["test"] and len(index.instances) == 3 * N_SLICES
    assert index.labels.empty and index.coords.empty


def test_real_world_files_read_and_unreadable_quarantined(root):
    d = series_dir(root, 2001, "sag_t1", split="test")
    shutil.rmtree(d)
    d.mkdir()
    good = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "emri_small_RLE.dcm",
            "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm"]
    bad = {"MR_truncated.dcm": pk.TRUNCATED, "no_meta.dcm": pk.NOT_DICOM}
    for i, name in enumerate([*good, *bad], start=1):
        shutil.copy(get_testdata_file(name), d / f"{i}.dcm")
    index = ingest(root)
    q = index.quarantine
    # MR_small* carry InstanceNumber 1 (files 2, 3 differ from it) and one same IPP; emri files
    # hold 10 frames, carry InstanceNumber 1 and no geometry: those three are placed by instance
    # number, the three MR_small keep their (shared) position
    assert q["kind"].value_counts().to_dict() == {
        pk.TRUNCATED: 1, pk.NOT_DICOM: 1, pk.MULTI_FRAME: 3, pk.INSTANCE_MISMATCH: 5,
        pk.MISSING_GEOMETRY: 1, pk.DUPLICATE_POSITION: 1}
    assert "(1.dcm = 2.dcm = 3.dcm)" in q.loc[q["kind"] == pk.DUPLICATE_POSITION, "reason"].item()
    assert "3 of 6 files lack" in q.loc[q["kind"] == pk.MISSING_GEOMETRY, "reason"].item()
    assert q.loc[q["kind"] == pk.TRUNCATED, "path"].item().endswith("/7.dcm")
    inst = index.instances[index.instances["series_id"] == 20010].sort_values("instance_number")
    assert inst["instance_number"].tolist() == [1, 2, 3, 4, 5, 6]
    assert set(inst["transfer_syntax"]) == {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.5",
                                            "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80"}
    assert_complete(index, (len(TRAIN) + len(TEST)) * 3 * N_SLICES - N_SLICES + 6)


def test_stage_main_writes_tables_metrics_and_quarantine_csv(root, tmp_path, capsys):
    from lsdc import cli
    from lsdc.params import Data, Params, Runtime

    (series_dir(root, 1001, "sag_t1") / "1.dcm").write_bytes(b"")  # not an annotated slice
    params = Params(data=Data(root=str(root)), runtime=Runtime(workers=0))
    args = cli.stage_args("ingest", "--out-dir", str(tmp_path / "index"),
                          "--metrics", str(tmp_path / "metrics" / "ingest.json"), "--no-tracking")
    assert cli.run_stage("ingest", params, args) == 0
    head = json.loads((tmp_path / "metrics" / "ingest.json").read_text())
    assert head == {"studies": {"train": 2, "test": 1}, "quarantine": {"total": 1}}  # headline only
    metrics = headline.load(tmp_path / "metrics" / "ingest.json")
    assert metrics["studies"] == {"train": 2, "test": 1}
    assert metrics["instances"] == {"train": 17, "test": 9}
    assert metrics["coords"] == 50 and metrics["quarantine"]["total"] == 1
    assert metrics["quarantine"][pk.EMPTY_FILE] == 1 and set(pk.KINDS) < set(metrics["quarantine"])
    q = pd.read_csv(tmp_path / "index" / "quarantine.csv")
    assert q["path"].tolist() == ["train_images/1001/10010/1.dcm"]
    assert "1 quarantine rows" in capsys.readouterr().out


@pytest.mark.slow  # MLflow import + sqlite schema creation: ~12 s of CPU
def test_stage_main_logs_an_mlflow_run(root, tmp_path, monkeypatch):
    import mlflow

    from lsdc import cli
    from lsdc.params import Data, Params, Runtime

    monkeypatch.setenv("LSDC_TRACKING_URI", f"sqlite:///{tmp_path}/store.db")
    (series_dir(root, 1001, "sag_t1") / "1.dcm").write_bytes(b"")
    params = Params(data=Data(root=str(root)), runtime=Runtime(workers=0))
    args = cli.stage_args("ingest", "--out-dir", str(tmp_path / "index"), "--metrics", str(tmp_path / "ingest.json"))
    assert cli.run_stage("ingest", params, args) == 0
    runs = mlflow.search_runs(experiment_names=[params.tracking.experiment], output_format="list")
    assert len(runs) == 1 and runs[0].data.tags["stage"] == "ingest"
    assert runs[0].data.params["data.root"] == str(root)
    assert runs[0].data.params["ingest.near_origin_px"] == "10.0"
    m = runs[0].data.metrics
    assert m["studies/train"] == 2 and m["instances/train"] == 17 and m["quarantine/empty_file"] == 1
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id)}
    assert {"quarantine.csv", "ingest.json"} <= artifacts


def test_ingest_of_a_tiny_synthetic_dataset_is_clean(tmp_path):
    """The built-in generator writes clean data: nothing quarantined but its deliberate
    quirks, one instance per file and one coordinate row per CSV row."""
    generate = pytest.importorskip("lsdc.synth.generate", reason="synthetic generator not available")
    from lsdc.params import Synth

    synth = Synth(n_train=2, n_test=1, image_scale=0.25, sag_slices=(5, 6), axial_per_level=(1, 1))
    root = tmp_path / "synthetic"
    generate.generate(synth, root, workers=0, progress=False)
    index = ingest(root)
    coords_csv = pd.read_csv(root / schema.COORDS_CSV)
    near = int((np.hypot(coords_csv["x"], coords_csv["y"]) < 10.0).sum())
    q = index.quarantine["kind"].value_counts().to_dict()
    # the generator imitates two real quirks on purpose: misplaced clicks near (5, 5) and
    # axial series mixing two slice sizes; nothing else may be flagged
    mixed = int(index.series["mixed_shapes"].sum())
    assert q == {k: v for k, v in {pk.COORD_NEAR_ORIGIN: near, pk.MIXED_SHAPES: mixed}.items() if v}
    assert set(index.series.loc[index.series["mixed_shapes"], "plane"]) <= {"ax_t2"}
    assert len(index.instances) == len(list(root.glob("*_images/*/*/*.dcm")))
    assert len(index.coords) == len(coords_csv) and index.coords["in_image"].all()
    assert len(index.labels) == 25 * len(pd.read_csv(root / schema.TRAIN_CSV))
    assert index.instances["geometry_ok"].all() and index.series["in_csv"].all()
    assert index.series["on_disk"].all() and index.studies["on_disk"].all()
    assert sorted(index.studies["split"]) == ["test", "train", "train"]
