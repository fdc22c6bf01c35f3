"""The synthetic dataset on disk: layout, CSV schemas, DICOM tags, coordinates, geometry,
determinism and the oracle. One tiny dataset is generated per session."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import MRImageStorage, RLELossless

from lsdc import metrics, schema
from lsdc.synth import anatomy, generate, targets
from synth_fixtures import dicom_point, headers, plane_distance, plane_normal, tiny


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "data"
    synth = tiny()
    summary = generate.generate(synth, out, workers=1, progress=False)
    return out, synth, summary


def _csv(root: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(root / name)


def test_csv_columns_and_dtypes(dataset):
    root, synth, _ = dataset
    train = _csv(root, schema.TRAIN_CSV)
    assert tuple(train.columns) == schema.TRAIN_COLUMNS
    assert train["study_id"].dtype == np.int64 and train["study_id"].is_monotonic_increasing
    assert len(train) == synth.n_train
    values = train[list(schema.LABEL_COLUMNS)].stack().dropna()
    assert set(values) <= set(schema.SEVERITIES) and len(values) > 0
    test_labels = _csv(root, schema.TEST_LABELS_CSV)
    assert tuple(test_labels.columns) == schema.TRAIN_COLUMNS and len(test_labels) == synth.n_test
    assert set(train["study_id"]).isdisjoint(test_labels["study_id"])
    coords = _csv(root, schema.COORDS_CSV)
    assert tuple(coords.columns) == schema.COORDS_COLUMNS
    assert [coords[c].dtype for c in ("study_id", "series_id", "instance_number", "x", "y")] == [np.int64] * 3 + [
        np.float64] * 2
    assert pd.api.types.is_string_dtype(coords["condition"]) and pd.api.types.is_string_dtype(coords["level"])
    assert set(coords["condition"]) <= set(schema.CONDITIONS) and set(coords["level"]) <= set(schema.LEVELS)
    keys = list(coords[["study_id", "series_id", "instance_number"]].itertuples(index=False))
    assert keys == sorted(keys)
    for name in (schema.TRAIN_SERIES_CSV, schema.TEST_SERIES_CSV):
        series = _csv(root, name)
        assert tuple(series.columns) == schema.SERIES_COLUMNS
        assert set(series["series_description"]) <= set(schema.PLANE_OF_DESCRIPTION)
        assert series["series_id"].is_unique
        counts = series.groupby("study_id").size()
        assert counts.min() >= 2 and counts.max() <= 6


def test_submission_files(dataset):
    root, synth, _ = dataset
    test_ids = _csv(root, schema.TEST_LABELS_CSV)["study_id"].tolist()
    sample = _csv(root, schema.SAMPLE_SUBMISSION_CSV)
    assert tuple(sample.columns) == schema.SUBMISSION_COLUMNS
    assert sample["row_id"].tolist() == [r for s in test_ids for r in schema.study_row_ids(s)]
    assert np.allclose(sample[list(schema.PROB_COLUMNS)].to_numpy(), 1 / 3, atol=1e-6)
    oracle = _csv(root, schema.TEST_ORACLE_CSV)
    assert oracle["row_id"].tolist() == sample["row_id"].tolist()
    assert np.allclose(oracle[list(schema.PROB_COLUMNS)].sum(axis=1), 1.0)
    assert set(_csv(root, schema.TEST_SERIES_CSV)["study_id"]) == set(test_ids)
    # the train split's oracle (evaluate's out-of-fold skill): one row per train study and label
    train_ids = _csv(root, schema.TRAIN_CSV)["study_id"].tolist()
    train_oracle = _csv(root, schema.TRAIN_ORACLE_CSV)
    assert train_oracle["row_id"].tolist() == [r for s in train_ids for r in schema.study_row_ids(s)]
    assert np.allclose(train_oracle[list(schema.PROB_COLUMNS)].sum(axis=1), 1.0)


def test_train_csv_carries_the_label_draw(dataset):
    root, synth, _ = dataset
    draw = generate.draw_split_labels(synth, "train")
    _, codes = metrics.labels_from_frame(_csv(root, schema.TRAIN_CSV))
    assert np.array_equal(codes, draw.grades)
    _, test_codes = metrics.labels_from_frame(_csv(root, schema.TEST_LABELS_CSV))
    assert np.array_equal(test_codes, generate.draw_split_labels(synth, "test").grades)


def test_label_frequencies_at_a_few_hundred_studies():
    """Wiring of the label draw into train.csv strings at 400 studies (no pixels)."""
    synth = tiny(n_train=400)
    draw = generate.draw_split_labels(synth, "train")
    frame = generate.grade_frame(np.arange(400) + 1, draw.grades)
    real = np.array(targets.COLUMN_COUNTS)[:5, :3]  # spinal canal columns
    target = real.sum(axis=0) / real.sum()  # all levels pooled
    spinal = frame[[c for c in schema.LABEL_COLUMNS if c.startswith("spinal")]].to_numpy().ravel()
    shares = np.array([(spinal == s).sum() for s in schema.SEVERITIES]) / np.isin(spinal, schema.SEVERITIES).sum()
    assert np.allclose(shares, target, atol=0.04)
    overall = frame[list(schema.LABEL_COLUMNS)].to_numpy().ravel()
    normal = (overall == schema.SEVERITIES[0]).sum() / np.isin(overall, schema.SEVERITIES).sum()
    assert abs(normal - 0.774) < 0.04
    assert 0 < pd.isna(overall).sum() < 0.05 * overall.size


def test_layout_and_dicom_tags(dataset):
    root, _, summary = dataset
    n_files = 0
    for split, csv in (("train", schema.TRAIN_SERIES_CSV), ("test", schema.TEST_SERIES_CSV)):
        series = _csv(root, csv)
        images = root / generate.IMAGES_DIR[split]
        on_disk = {(int(p.parent.name), int(p.name)) for p in images.glob("*/*") if p.is_dir()}
        assert on_disk == set(zip(series["study_id"], series["series_id"]))
        for row in series.itertuples(index=False):
            files = sorted((images / str(row.study_id) / str(row.series_id)).glob("*.dcm"))
            assert len(files) >= 2
            for f in files:
                ds = pydicom.dcmread(f)
                assert ds.file_meta.TransferSyntaxUID == RLELossless
                assert ds.SOPClassUID == MRImageStorage and ds.Modality == "MR"
                assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 12, 0)
                assert ds.PhotometricInterpretation == "MONOCHROME2"
                assert ds.SeriesDescription == row.series_description
                assert int(ds.InstanceNumber) == int(f.stem)
                assert ds.StudyInstanceUID == str(row.study_id)
                assert ds.SeriesInstanceUID == f"{row.study_id}.{row.series_id}"
                assert len(ds.PixelSpacing) == 2 and len(ds.ImagePositionPatient) == 3
                assert len(ds.ImageOrientationPatient) == 6
                pixels = ds.pixel_array
                assert pixels.shape == (ds.Rows, ds.Columns) and pixels.dtype == np.uint16
                assert 0 < pixels.max() < 4096
                n_files += 1
    assert n_files == summary["train"]["files"] + summary["test"]["files"]


def _axial_like(h) -> bool:
    """An axial slice, not a localiser of another orientation inside an axial series."""
    return abs(plane_normal(h)[2]) > 0.8


def test_orientations_and_instance_order(dataset):
    root, _, _ = dataset
    series = _csv(root, schema.TRAIN_SERIES_CSV)
    for row in series.itertuples(index=False):
        hs = headers(root / schema.TRAIN_IMAGES / str(row.study_id) / str(row.series_id))
        iop = np.array([h.ImageOrientationPatient for h in hs], dtype=float)
        if row.series_description.startswith("Sagittal"):
            # rows along anterior-posterior (mirrored series run posterior -> anterior), columns head -> feet
            assert np.allclose(np.abs(iop), [0, 1, 0, 0, 0, 1], atol=0.25)
            assert np.all(iop[:, 5] < -0.9)
            xs = [float(h.ImagePositionPatient[0]) for h in sorted(hs, key=lambda h: int(h.InstanceNumber))]
            assert np.all(np.diff(xs) > 0) or np.all(np.diff(xs) < 0)  # a stack across left-right
        else:
            axial = np.array([_axial_like(h) for h in hs])
            assert axial.sum() >= len(hs) - 1  # at most one localiser
            iop = iop[axial]
            # rows along left-right, columns along anterior-posterior (either sense when mirrored),
            # planes within the largest block angle (25 degrees plus jitter) of the patient's axial
            assert np.all(np.abs(iop[:, 0]) > 0.9) and np.all(np.abs(iop[:, 4]) > 0.7)
            normals = np.cross(iop[:, :3], iop[:, 3:])
            assert np.all(np.abs(normals[:, 2]) > np.cos(np.radians(32)))


def test_coordinates_inside_on_the_right_plane_and_side(dataset):
    root, _, _ = dataset
    coords = _csv(root, schema.COORDS_CSV)
    series_csv = _csv(root, schema.TRAIN_SERIES_CSV)
    descriptions = dict(zip(series_csv["series_id"], series_csv["series_description"]))
    assert len(coords) > 0
    points = {}
    for row in coords.itertuples(index=False):
        path = root / schema.TRAIN_IMAGES / str(row.study_id) / str(row.series_id) / f"{row.instance_number}.dcm"
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert 0 <= row.x <= ds.Columns - 1 and 0 <= row.y <= ds.Rows - 1
        plane = schema.PLANE_OF_DESCRIPTION[descriptions[row.series_id]]
        wanted = schema.PLANE_OF_CONDITION[row.condition]
        studies_series = set(series_csv.loc[series_csv["study_id"] == row.study_id, "series_description"])
        if schema.DESCRIPTION_OF_PLANE[wanted] in studies_series:
            assert plane == wanted, row
        if row.x > 12 or row.y > 12:  # not a misplaced click
            points[(row.study_id, row.condition, row.level)] = (dicom_point(path, row.x, row.y), row.x)
    checked = 0
    canal_c, left_f, right_f, left_s, right_s = schema.CONDITIONS
    for (study, condition, level), (p, _x) in points.items():
        canal = points.get((study, canal_c, level))
        if condition == left_f and canal:
            assert p[0] > canal[0][0] + 8  # patient left = +x
            checked += 1
        if condition == right_f and canal:
            assert p[0] < canal[0][0] - 8
        if condition == left_s:
            right = points.get((study, right_s, level))
            if right:
                assert p[0] > right[0][0] + 5  # patient left = +x, whatever the image's orientation
                checked += 1
    assert checked >= 5


def test_geometry_round_trip_sagittal_point_to_axial_level(dataset):
    """A canal point on the mid-sagittal slice maps through the DICOM geometry to the axial
    slice nearest that disc, i.e. the slice of the same level."""
    root, synth, _ = dataset
    jobs, _, _ = generate.jobs_for(synth, None)
    plans = {j.study_id: generate.make_plan(j) for j in jobs if j.split == "train"}
    coords = _csv(root, schema.COORDS_CSV)
    canal = coords[(coords["condition"] == schema.CONDITIONS[0]) & (coords["x"] > 12)]
    checked = 0
    for row in canal.itertuples(index=False):
        study = plans[row.study_id]
        spine, level = study.spine, schema.LEVELS.index(row.level)
        sag = root / schema.TRAIN_IMAGES / str(row.study_id) / str(row.series_id) / f"{row.instance_number}.dcm"
        p = dicom_point(sag, row.x, row.y)
        truth = spine.to_patient(spine.canal_point(level))
        assert np.linalg.norm(p - truth) < 8.0  # within half a sagittal slice gap
        for ax in study.of_plane("ax_t2"):
            hs = headers(root / schema.TRAIN_IMAGES / str(row.study_id) / str(ax.series_id))
            nearest = min((h for h in hs if _axial_like(h)), key=lambda h: abs(plane_distance(h, p)))
            # the canal at each disc (not the disc centre: a block angled at most 25 degrees meets a
            # strongly lordotic L5/S1 disc obliquely, so its centre can sit nearer another plane)
            disc_points = [spine.to_patient(spine.canal_point(lv)) for lv in range(len(anatomy.GRADED_DISCS))]
            dist = [abs(plane_distance(nearest, d)) for d in disc_points]
            if abs(plane_distance(nearest, p)) < 8:  # this axial series covers the point's level
                assert int(np.argmin(dist)) == level
                checked += 1
    assert checked >= len(canal) // 2


def test_oracle_beats_constant_prior(dataset):
    _, _, summary = dataset
    assert summary["score_oracle"]["total"] < summary["score_constant_prior"]["total"]
    root = dataset[0]
    _, train_codes = metrics.labels_from_frame(_csv(root, schema.TRAIN_CSV))
    ids = _csv(root, schema.TRAIN_CSV)["study_id"].to_numpy()
    train_oracle = metrics.probs_from_submission(_csv(root, schema.TRAIN_ORACLE_CSV), ids)
    assert summary["score_oracle_train"]["total"] == pytest.approx(
        metrics.competition_score(train_codes, train_oracle).total, rel=1e-6)
    assert summary["train"]["coordinate_rows"] > 0 and summary["test"]["files"] > 0


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_byte_identical_whatever_the_workers(tmp_path):
    synth = tiny(n_train=2, n_test=1, image_scale=0.25, sag_slices=(13, 13), axial_per_level=(2, 2))
    generate.generate(synth, tmp_path / "a", workers=1, progress=False)
    generate.generate(synth, tmp_path / "b", workers=2, progress=False)
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert len(a) > 60 and a == b
    generate.generate(tiny(n_train=2, n_test=1, image_scale=0.25, seed=12, sag_slices=(13, 13),
                           axial_per_level=(2, 2)), tmp_path / "c", workers=1, progress=False)
    c = _digest(tmp_path / "c")
    assert c[schema.TRAIN_CSV] != a[schema.TRAIN_CSV] and set(c.values()).isdisjoint(a.values())
