from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from detect_fixtures import COLS, ROWS, SPACING, write_index
from lsdc import params as params_mod
from lsdc import schema
from lsdc.detect.export import export_plane
from lsdc.detect.labels import from_yolo

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def _params(root, **over):
    base = {"data.root": str(root), "runtime.workers": 0, "detect.export.imgsz": 64}
    return params_mod.load(PARAMS, {**base, **over})


@pytest.mark.parametrize("mode", ["levels", "anatomy"])
def test_export_one_line_per_point_with_class(tmp_path, mode):
    root, index, folds = write_index(tmp_path, n_studies=4)
    p = _params(root, **{"detect.export.classes": mode})
    out = tmp_path / "yolo"
    counts = export_plane("sag_t2", p, index, folds, out)
    assert counts["images"] == {"train": 2, "val": 2} and counts["points"] == {"train": 10, "val": 10}
    coords = pd.read_parquet(index / "coords.parquet")
    for _, img in pd.read_parquet(out / "images.parquet").iterrows():
        lines = (out / "labels" / img["split"] / f"{img['stem']}.txt").read_text().splitlines()
        assert len(lines) == 5
        rows = np.array([[float(v) for v in line.split()] for line in lines])
        expect = coords[coords["study_id"] == img["study_id"]].sort_values("level")
        want_cls = [schema.LEVELS.index(lv) for lv in expect["level"]] if mode == "levels" else [0] * 5
        assert rows[:, 0].astype(int).tolist() == want_cls
        back = from_yolo(rows[:, 1:], COLS, ROWS)
        np.testing.assert_allclose(back[:, :2], expect[["x", "y"]].to_numpy(), atol=1e-3)
        np.testing.assert_allclose(back[0, 2:], [12.0 / SPACING[1], 12.0 / SPACING[0]], atol=1e-3)
        png = cv2.imread(str(out / "images" / img["split"] / f"{img['stem']}.png"), cv2.IMREAD_GRAYSCALE)
        assert png.shape == (64, round(COLS * 64 / ROWS)) and png.dtype == np.uint8 and png.max() == 255


def test_no_validation_study_in_training_split(tmp_path):
    root, index, folds = write_index(tmp_path, n_studies=6)
    out = tmp_path / "yolo"
    export_plane("sag_t2", _params(root), index, folds, out)
    images = pd.read_parquet(out / "images.parquet")
    val_studies = set(pd.read_parquet(folds).query("fold == 0")["study_id"])
    train_files = {f.stem for f in (out / "images" / "train").glob("*.png")}
    assert train_files and not any(int(s.split("_")[0]) in val_studies for s in train_files)
    assert set(images.loc[images["split"] == "val", "study_id"]) == val_studies
    text = (out / "dataset.yaml").read_text()
    assert "path: ." in text and "disc" in text


def test_export_without_annotations_fails_clearly(tmp_path):
    root, index, folds = write_index(tmp_path, n_studies=2)
    with pytest.raises(ValueError, match="no usable ax_t2"):
        export_plane("ax_t2", _params(root), index, folds, tmp_path / "yolo")


def test_sagittal_points_completed_from_neighbouring_slices():
    from lsdc.detect.export import complete_points

    pts = pd.DataFrame({
        "series_id": [1, 1, 1, 1], "stem": ["a", "a", "b", "c"], "instance_number": [5, 5, 6, 9],
        "spatial_rank": [0, 0, 1, 4], "condition": ["Left Neural Foraminal Narrowing"] * 4,
        "level": ["L1/L2", "L2/L3", "L3/L4", "L4/L5"], "x": [1.0, 2.0, 3.0, 4.0], "y": [0.0] * 4,
        "completed": False,
    })
    out = complete_points(pts, 1)
    added = out[out["completed"]].sort_values(["stem", "level"])
    assert list(zip(added["stem"], added["level"], added["x"])) == [
        ("a", "L3/L4", 3.0), ("b", "L1/L2", 1.0), ("b", "L2/L3", 2.0)]  # c is 3 slices away: untouched
    assert (added["instance_number"].to_numpy() == [5, 6, 6]).all()


def test_sag_t1_slice_side_is_the_annotated_side_not_the_series_median_guess():
    """Scoliosis moves the spine off the series centre: a slice right of the series' median
    can still show the patient's left foramina. Its side is the side read on it."""
    from lsdc.detect.export import build_tables

    p = params_mod.load(PARAMS, {"detect.export.complete_slices": 0})
    xs = [-20.0, -10.0, 0.0, 10.0, 20.0]  # slice centres along patient x (+ = left)
    instances = pd.DataFrame({
        "study_id": 1, "series_id": 11, "instance_number": range(1, 6), "path": [f"{i}.dcm" for i in range(1, 6)],
        "spatial_rank": range(5), "ipp_x": xs, "cols": 100, "rows": 100, "pixel_spacing_col": 1.0,
        "pixel_spacing_row": 1.0, "iop_rx": 0.0, "iop_cx": 0.0})
    left, right = "Left Neural Foraminal Narrowing", "Right Neural Foraminal Narrowing"
    coords = pd.DataFrame({
        "study_id": 1, "series_id": 11, "instance_number": [2, 2, 4], "condition": [left, left, right],
        "level": ["L4/L5", "L5/S1", "L4/L5"], "x": 50.0, "y": [40.0, 60.0, 40.0], "plane": "sag_t1",
        "rows": 100, "cols": 100, "pixel_spacing_row": 1.0, "pixel_spacing_col": 1.0})
    folds = pd.DataFrame({"study_id": [1], "fold": [0]})
    images, _ = build_tables(coords, instances, folds, "sag_t1", p)
    # instance 2 lies right of the median (x -10) but its reader annotated left foramina
    assert images.set_index("instance_number")["slice_side"].to_dict() == {2: "left", 4: "right"}


def test_a_mirrored_series_is_exported_turned_back_with_its_labels(tmp_path):
    """Study 2003 is stored mirrored: its PNG and its labels are those of the same anatomy
    stored the usual way (lsdc.orientation), so the detector learns one orientation."""
    root, index, folds = write_index(tmp_path, n_studies=4, mirrored=(3,))
    plain_root, plain_index, _ = write_index(tmp_path / "plain", n_studies=4)
    out, plain = tmp_path / "yolo", tmp_path / "plain_yolo"
    export_plane("sag_t2", _params(root), index, folds, out)
    export_plane("sag_t2", _params(plain_root), plain_index, folds, plain)
    images = pd.read_parquet(out / "images.parquet").set_index("study_id")
    assert images.loc[2003, "flipped_cols"] and not images.loc[2002, "flipped_cols"]
    assert not images[["transposed", "flipped_rows"]].any().any()
    stem, split = images.loc[2003, "stem"], images.loc[2003, "split"]
    mirrored_coords = pd.read_parquet(index / "coords.parquet").query("study_id == 2003")
    plain_coords = pd.read_parquet(plain_index / "coords.parquet").query("study_id == 2003")
    np.testing.assert_allclose(mirrored_coords["x"], COLS - 1 - plain_coords["x"])  # stored mirrored
    assert (out / "labels" / split / f"{stem}.txt").read_text() == (plain / "labels" / split / f"{stem}.txt").read_text()
    got = pd.read_parquet(out / "points.parquet").query("stem == @stem").sort_values("level")
    np.testing.assert_allclose(got["x"], plain_coords.sort_values("level")["x"], atol=1e-9)
    png = [cv2.imread(str(d / "images" / split / f"{stem}.png"), cv2.IMREAD_GRAYSCALE) for d in (out, plain)]
    np.testing.assert_array_equal(png[0], png[1])
