"""The extract_rois stage end to end on the hand-made phantom with a blob-finding
stand-in detector: every study gets every row, missing series and corrupted slices,
leak-freeness, store consistency, distances, imputation and the notebook option."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lsdc import params as params_mod
from lsdc import schema
from lsdc.ingest.build import build_index
from lsdc.rois import extract as stage
from lsdc.rois.slots import study_slots
from rois_fixtures import BlobDetectors, make_root, sagittal_slices

STUDIES = [
    dict(split="train", study=101, x0=1.5),
    dict(split="train", study=102, x0=-2.0, axial_series=2),  # two axial series, one numbered 5031..
    dict(split="train", study=103, x0=0.5),  # gets a corrupted slice after ingest
    dict(split="test", study=201, planes=("sag_t1", "sag_t2")),  # no axial series at all
]
N_ROWS = len(study_slots(params_mod.Params().rois))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    base = tmp_path_factory.mktemp("rois")
    root = base / "root"
    info = make_root(root, STUDIES)
    build_index(root).write(base / "index")
    # corrupt one sag_t2 slice of study 103 after ingest: its header reads, its pixels do not
    victim = sorted((root / schema.TRAIN_IMAGES / "103" / "1031").glob("*.dcm"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 3000])
    return base, root, info


def _params(root: Path, **rois):
    """Default params (not the repo's params.yaml, which others edit) for this root."""
    p = params_mod.Params()
    return replace(p, data=replace(p.data, root=str(root)), runtime=replace(p.runtime, workers=0), rois=replace(p.rois, **rois))


def _run(base: Path, root: Path, name: str, index_dir: Path | None = None, detectors=None,
         folds_path: Path | None = None, **overrides):
    p = _params(root, **overrides)
    out = base / name
    metrics = stage.run(p, index_dir=index_dir or base / "index", out_dir=out / "rois",
                        metrics_path=out / "rois.json", sheets_dir=out / "sheets",
                        detectors=detectors or BlobDetectors(p.detect),
                        folds_path=folds_path or base / "no-folds.parquet")
    index = pd.read_parquet(out / "rois" / "index.parquet")
    crops = np.load(out / "rois" / "crops.npy", mmap_mode="r")
    return metrics, index, crops, out


@pytest.fixture(scope="module")
def result(dataset):
    base, root, _ = dataset
    return _run(base, root, "main")


def test_every_study_gets_every_row_in_the_same_layout(result):
    metrics, index, crops, _ = result
    assert len(index) == len(crops) == len(STUDIES) * N_ROWS
    assert index["study_id"].drop_duplicates().tolist() == [101, 102, 103, 201]  # train then test
    layouts = {sid: list(zip(g["plane"], g["level"], g["side"].fillna("-"), g["slice_offset"]))
               for sid, g in index.groupby("study_id")}
    first = layouts[101]
    assert all(v == first for v in layouts.values()) and len(set(first)) == N_ROWS
    assert metrics["studies"]["total"] == 4 and metrics["rows_per_study"] == N_ROWS


def test_array_and_index_agree(result):
    _, index, crops, _ = result
    assert crops.dtype == np.uint8 and crops.shape[1:] == (64, 64)
    assert index["crop_index"].tolist() == list(range(len(crops)))
    centre = np.asarray(crops[:, 28:36, 28:36]).mean(axis=(1, 2))
    detected0 = (index["source"] == "detected") & (index["slice_offset"] == 0)
    assert (centre[detected0.to_numpy()] > 150).all()  # the blob sits in the middle of its crop
    missing = (index["source"] == "missing").to_numpy()
    assert missing.any() and not np.asarray(crops[missing]).any()
    assert index.loc[missing, "series_id"].isna().all() and index.loc[~missing, "series_id"].notna().all()


def test_missing_series_gives_missing_rows(result):
    _, index, _, _ = result
    ax = index[(index["study_id"] == 201) & (index["plane"] == "ax_t2")]
    assert len(ax) == 30 and (ax["source"] == "missing").all()
    other = index[(index["study_id"] == 201) & (index["plane"] != "ax_t2")]
    assert (other["source"] == "detected").all()


def test_corrupted_slice_is_skipped_and_study_complete(result):
    metrics, index, _, _ = result
    assert metrics["unreadable_slices"] == 1
    study = index[index["study_id"] == 103]
    assert len(study) == N_ROWS and (study["source"] != "missing").all()


def test_crop_centres_match_the_annotations(result, dataset):
    metrics, index, _, _ = result
    d = metrics["distance_mm"]
    assert d["n"] == 3 * 25 and d["within_5mm"] == 1.0 and d["p95"] < 2.0
    _, _, info = dataset
    centre = index[(index["slice_offset"] == 0) & (index["plane"] == "ax_t2")]
    for sid in (101, 102, 103):  # the axial slice of each level: the annotated one
        for _, s_id, inst, condition, level, *_ in info[sid]["coords"]:
            if "Subarticular" not in condition:
                continue
            side = condition.split()[0].lower()
            row = centre[(centre["study_id"] == sid) & (centre["level"] == level) & (centre["side"] == side)]
            assert (int(row["series_id"].iloc[0]), int(row["instance_number"].iloc[0])) == (s_id, inst)


def test_selection_never_reads_labels_or_coordinates(dataset, result):
    base, root, _ = dataset
    _, index, crops, _ = result
    bare = base / "index_without_labels"
    shutil.copytree(base / "index", bare)
    (bare / "coords.parquet").unlink()
    (bare / "labels.parquet").unlink()
    _, index2, crops2, _ = _run(base, root, "bare", index_dir=bare)
    pd.testing.assert_frame_equal(index, index2)
    assert np.array_equal(crops, crops2)
    shuffled = base / "index_shuffled"
    shutil.copytree(base / "index", shuffled)
    coords = pd.read_parquet(shuffled / "coords.parquet")
    coords["level"] = coords["level"].sample(frac=1.0, random_state=0).to_numpy()
    coords[["x", "y", "px", "py", "pz"]] = coords[["x", "y", "px", "py", "pz"]] + 17.0
    coords.to_parquet(shuffled / "coords.parquet")
    _, index3, crops3, _ = _run(base, root, "shuffled", index_dir=shuffled)
    pd.testing.assert_frame_equal(index, index3)
    assert np.array_equal(crops, crops3)


def test_missed_detections_are_imputed_close_to_the_truth(dataset):
    base, root, info = dataset
    p = _params(root)
    metrics, index, _, _ = _run(base, root, "missing_boxes", detectors=BlobDetectors(p.detect, miss=4))
    assert len(index) == len(STUDIES) * N_ROWS
    imputed = index[(index["source"] == "imputed") & (index["slice_offset"] == 0)]
    assert len(imputed) >= 10
    assert metrics["crops"]["imputed"] == int((index["source"] == "imputed").sum())
    by = metrics["distance_mm"]["by_source"]["imputed"]
    assert by["n"] > 0 and by["within_5mm"] >= 0.8 and by["median"] < 4.0


def test_notebook_selection_mixes_sides_and_keeps_every_row(dataset):
    base, root, _ = dataset
    metrics, index, _, _ = _run(base, root, "notebook", selection="notebook")
    assert len(index) == len(STUDIES) * N_ROWS
    t1 = index[(index["plane"] == "sag_t1") & (index["slice_offset"] == 0) & (index["study_id"] == 101)]
    assert t1.groupby("level")["instance_number"].nunique().eq(1).all()  # left and right: one central slice
    assert metrics["distance_mm"]["by_plane"]["sag_t1"]["within_5mm"] < 0.5  # the notebook's slices miss the foramina


def test_contact_sheets_and_metrics_file(result):
    _, _, _, out = result
    sheets = sorted(p.name for p in (out / "sheets").glob("*.png"))
    assert sheets == ["101.png", "102.png", "103.png", "201.png"]
    import json

    from lsdc import headline

    assert set(json.loads((out / "rois.json").read_text())) == {"studies", "crops", "distance_mm"}
    metrics = headline.load(out / "rois.json")
    assert metrics["by_plane"]["ax_t2"]["missing"] == 30
    assert metrics["studies"]["fully_detected"] == 3 and metrics["studies"]["with_missing"] == 1
    assert "_runtime" not in metrics


def test_bad_selection_and_missing_index_fail_clearly(dataset, tmp_path):
    base, root, _ = dataset
    with pytest.raises(ValueError, match="rois.selection"):
        _run(base, root, "bad", selection="random")
    with pytest.raises(FileNotFoundError, match="studies.parquet"):
        _run(base, root, "noindex", index_dir=tmp_path)


class CountingDetectors:
    """BlobDetectors that count the slices each plane's detector is shown."""

    def __init__(self, inner):
        self.inner, self.seen = inner, {p: 0 for p in schema.PLANES}

    def points(self, plane, images, spacings, sides=None, midlines=None):
        self.seen[plane] += len(images)
        return self.inner.points(plane, images, spacings, sides=sides, midlines=midlines)


def test_the_detector_sees_only_the_slices_that_can_matter(dataset, result):
    """Canal slices near the middle, foramen slices to the sides, each level's axial slice
    (neighbours only where a side is missed): fewer detector images, the same crops."""
    base, root, _ = dataset
    p = _params(root)
    counting = CountingDetectors(BlobDetectors(p.detect))
    _, index, crops, _ = _run(base, root, "counted", detectors=counting)
    inst = pd.read_parquet(base / "index" / "instances.parquet")
    slices = inst.merge(pd.read_parquet(base / "index" / "series.parquet")[["series_id", "plane"]], on="series_id")
    per_plane = slices.groupby("plane").size().to_dict()
    assert counting.seen["sag_t2"] < 0.75 * per_plane["sag_t2"]
    assert counting.seen["sag_t1"] < 0.9 * per_plane["sag_t1"]
    assert counting.seen["ax_t2"] <= 0.5 * per_plane["ax_t2"]
    _, full_index, _, _ = result
    # the same crops are placed from detections as when the detector saw every slice
    assert (index["source"] == full_index["source"]).mean() >= 0.95


def test_lateral_window_keeps_slices_by_patient_distance():
    from lsdc.rois.geometry import lateral_x
    from lsdc.rois.series import Series
    from lsdc.rois.study import _lateral_window

    geoms = sagittal_slices("sag_t1", 0.0, n=13, step=4.0)  # patient x -24 .. 24 mm
    series = Series(1, "sag_t1", [np.zeros((8, 8), np.uint8)] * 13, geoms, list(range(1, 14)), [(1.0, 1.0)] * 13)
    keep = _lateral_window(series, 0.0, 6.0, 20.0)
    xs = [lateral_x(geoms[i]) for i in keep]
    assert keep and all(6.0 <= abs(x) <= 20.0 for x in xs) and len(keep) == 8
    assert _lateral_window(series, float("nan"), 0.0, 10.0) is None  # no centre: every slice


def test_the_detectors_validation_studies_are_reported_apart(dataset):
    base, root, _ = dataset
    folds = base / "folds.parquet"
    pd.DataFrame({"study_id": [101, 102, 103], "fold": [0, 1, 2]}).to_parquet(folds)  # val_fold 0: study 101
    metrics, *_ = _run(base, root, "val-fold", folds_path=folds)
    val = metrics["distance_mm"]["detector_val_fold"]
    assert val["n"] == 25 and metrics["distance_mm"]["n"] == 75
    assert val["within_5mm"] == 1.0 and set(val["by_plane"]) == set(schema.PLANES)


def test_the_boxes_as_the_pipeline_named_them_are_written_and_checked(result):
    from lsdc.rois.study import NAMED_COLUMNS

    metrics, _, _, out = result
    named = pd.read_parquet(out / "named_boxes.parquet")  # beside the store folder, not inside it
    assert tuple(named.columns) == NAMED_COLUMNS and set(named["plane"]) == set(schema.PLANES)
    assert set(named.loc[named["plane"] == "sag_t1", "side"]) == {"left", "right"}
    check = metrics["named_points"]
    assert check["silent"] == 0 and check["right_within"] == 1.0
    sag = sum(check["by_plane"][p]["points"] for p in ("sag_t1", "sag_t2"))
    assert sag == 3 * 15 and 0 < check["by_plane"]["ax_t2"]["points"] <= 3 * 10  # axial: slices it saw
