"""Issue 16: `extract-rois` and `predict-study` survive every file-level defect that ingest
survives, and report each skipped file with the kind ingest gives it.

One phantom study (rois_fixtures) gets the ingest corruption fixtures: files truncated
(half, at 152, 200 and 900 bytes), empty, not DICOM, without pixel data, without
ImagePositionPatient, at a duplicate position, and pydicom's real-world test files
(truncated, no file meta, multi-frame RLE, JPEG 2000 of another size). A second study
has a sagittal series without any ImagePositionPatient and an axial series of empty files.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.data import get_testdata_file

from lsdc import schema
from lsdc.ingest import problems as pk
from lsdc.ingest.build import build_index
from lsdc.predict import study as predict_study
from lsdc.rois import MISSING
from lsdc.rois import extract as rois_stage
from lsdc.rois.slots import study_slots
from predict_fixtures import build, load_params
from rois_fixtures import BlobDetectors, make_root

A, B = 301, 302  # test studies: A file defects, B series-wide defects
SAG_T1, SAG_T2, AX_T2 = (A * 10 + k for k in range(3))
B_SAG_T2, B_AX_T2 = B * 10 + 1, B * 10 + 2


def _rewrite(path: Path, **changes) -> None:
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def corrupt(root: Path) -> dict[str, str]:
    """Apply the defects; returns {file relative to its study folder: kind ingest gives it}
    for every file that cannot be read."""
    images = root / schema.TEST_IMAGES
    t1, t2 = images / str(A) / str(SAG_T1), images / str(A) / str(SAG_T2)
    unreadable = {}
    data = (t1 / "1.dcm").read_bytes()
    (t1 / "1.dcm").write_bytes(data[: len(data) // 2])
    (t1 / "2.dcm").write_bytes(b"")
    for name, cut in (("3.dcm", 152), ("4.dcm", 200), ("5.dcm", 900)):
        (t1 / name).write_bytes((t1 / name).read_bytes()[:cut])
    _rewrite(t1 / "6.dcm", PixelData=None)
    _rewrite(t1 / "7.dcm", ImagePositionPatient=None)  # readable: one file without geometry
    (t1 / "14.dcm").write_text("<html>not an image</html>")
    unreadable.update({f"{SAG_T1}/{n}.dcm": k for n, k in (
        (1, pk.TRUNCATED), (2, pk.EMPTY_FILE), (3, pk.TRUNCATED), (4, pk.TRUNCATED), (5, pk.TRUNCATED),
        (6, pk.NO_PIXELS), (14, pk.NOT_DICOM))})
    _rewrite(t2 / "8.dcm", ImagePositionPatient=pydicom.dcmread(t2 / "9.dcm").ImagePositionPatient)
    for name, source in (("10.dcm", "MR_truncated.dcm"), ("11.dcm", "no_meta.dcm"),
                         ("12.dcm", "emri_small_RLE.dcm"), ("13.dcm", "MR_small_jp2klossless.dcm")):
        shutil.copy(get_testdata_file(source), t2 / name)
    unreadable.update({f"{SAG_T2}/10.dcm": pk.TRUNCATED, f"{SAG_T2}/11.dcm": pk.NOT_DICOM})
    for path in (images / str(B) / str(B_SAG_T2)).glob("*.dcm"):
        _rewrite(path, ImagePositionPatient=None)
    for path in (images / str(B) / str(B_AX_T2)).glob("*.dcm"):
        path.write_bytes(b"")
        unreadable[f"{B_AX_T2}/{path.name}"] = pk.EMPTY_FILE
    return unreadable


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    models = build(tmp_path_factory)  # the predict tests' fold checkpoints (16-px crops)
    base = tmp_path_factory.mktemp("bad_input")
    root = base / "root"
    make_root(root, [dict(split="train", study=101, x0=1.0), dict(split="test", study=A, x0=0.5),
                     dict(split="test", study=B, x0=-0.5)])
    build_index(root).write(base / "clean_index")  # the index before the files were damaged
    unreadable = corrupt(root)
    index = build_index(root)
    index.write(base / "index")
    return models, base, root, unreadable, index


def test_ingest_quarantines_each_damaged_file_with_its_kind(setting):
    _, _, _, unreadable, index = setting
    q = index.quarantine
    files = q[q["kind"].isin([pk.EMPTY_FILE, pk.NOT_DICOM, pk.TRUNCATED, pk.NO_PIXELS])]
    got = {p.split("/", 2)[2]: k for p, k in zip(files["path"], files["kind"])}
    assert got == unreadable
    dup = q[q["kind"] == pk.DUPLICATE_POSITION]
    assert dup["series_id"].tolist() == [SAG_T2] and "8.dcm" in dup["reason"].item() and "9.dcm" in dup["reason"].item()
    geo = q[q["kind"] == pk.MISSING_GEOMETRY].set_index("series_id")["reason"]
    assert "(7.dcm)" in geo[SAG_T1] and "13 of 13 files" in geo[B_SAG_T2]
    inst = index.instances.set_index("path")
    t1 = inst[inst["series_id"] == SAG_T1]
    assert t1["geometry_ok"].sum() == len(t1) - 1  # only 7.dcm lacks geometry
    assert not inst.loc[inst["series_id"] == B_SAG_T2, "geometry_ok"].any()


@pytest.mark.parametrize("which", ["clean_index", "index"])
def test_extract_rois_survives_and_counts_the_unreadable_files(setting, which, tmp_path, caplog):
    """With the index of the undamaged root every damaged file is met while decoding; with
    the index of the damaged root ingest has left them out. Either way every study gets all
    its rows, and the crops of B's sagittal T2 (no IPP) are marked and warned about."""
    models, base, root, unreadable, _ = setting
    p = load_params(root)
    with caplog.at_level(logging.WARNING):
        metrics = rois_stage.run(p, index_dir=base / which, out_dir=tmp_path / "rois",
                                 metrics_path=tmp_path / "rois.json", sheets_dir=tmp_path / "sheets",
                                 detectors=BlobDetectors(p.detect))
    index = pd.read_parquet(tmp_path / "rois" / "index.parquet")
    n_slots = len(study_slots(p.rois))
    assert index.groupby("study_id").size().to_dict() == {101: n_slots, A: n_slots, B: n_slots}
    expected = len(unreadable) - 1 if which == "clean_index" else 0  # 14.dcm was never indexed
    assert metrics["unreadable_slices"] == expected
    problems = pd.read_csv(tmp_path / "rois" / "problems.csv", dtype={"file": str})
    # files are named relative to the data root, as in ingest's quarantine
    listed = {f.split("/", 2)[-1]: k for f, k in zip(problems["file"], problems["kind"])  # test_images/<study>/
              if isinstance(f, str)}  # rows without a file: geometry decisions (levels in doubt, frames)
    if which == "clean_index":  # every damaged file met while decoding is listed with its reason
        assert {f: k for f, k in unreadable.items() if f in listed} == {f: listed[f] for f in unreadable if f in listed}
        assert len(set(unreadable) & set(listed)) == expected
    assert listed.get(f"{SAG_T2}/13.dcm") == "off_plane_slice"  # the axial file inside a sagittal series
    assert sum(metrics["problems"].values()) == len(problems)
    b = index[(index["study_id"] == B) & (index["plane"] == "sag_t2")]
    assert (b["source"] != MISSING).all() and not b["geometry_ok"].any() and b["px"].isna().all()
    placed = index[index["source"] != MISSING]
    finite = np.isfinite(placed[["px", "py", "pz"]].to_numpy()).all(axis=1)
    assert (placed["geometry_ok"].to_numpy() == finite).all()
    assert placed.loc[placed["study_id"] == 101, "geometry_ok"].all()
    assert (index.loc[(index["study_id"] == B) & (index["plane"] == "ax_t2"), "source"] == MISSING).all()
    assert any(f"series {B_SAG_T2} (sag_t2)" in r.message and "lack IPP" in r.message for r in caplog.records)


def test_predict_study_survives_and_lists_the_skipped_slices(setting, tmp_path):
    models, _, root, unreadable, _ = setting
    p = load_params(root)
    reports = {}
    for study in (A, B):
        reports[study] = predict_study.run_study(
            root / schema.TEST_IMAGES / str(study), p, models_dir=models.paths.models_dir, out_dir=tmp_path,
            labels_path=models.paths.labels, detectors=BlobDetectors(p.detect))
        on_disk = json.loads((tmp_path / f"{study}.json").read_text())
        assert len(on_disk["labels"]) == 25 and on_disk["skipped_slices"] == reports[study]["skipped_slices"]
    skipped = {d["file"]: d["kind"] for r in reports.values() for d in r["skipped_slices"]}
    # the same files, each with the kind ingest gives it; plus the axial sample file inside the
    # sagittal series, which extraction drops as a slice of another orientation (a localiser)
    assert skipped == {**unreadable, f"{SAG_T2}/13.dcm": "off_plane_slice"}
    for d in reports[A]["skipped_slices"]:
        assert d["reason"].startswith(d["file"]) and str(root) not in d["reason"]
    assert reports[B]["crops_without_geometry"] == sum(s.plane == "sag_t2" for s in study_slots(p.rois))
    assert "no readable ax_t2 series" in reports[B]["notes"]
    table = predict_study.format_table({**reports[A], "json": "x"})
    assert f"slice skipped: {SAG_T1}/3.dcm (truncated_file)" in table
