"""`lsdc predict-study` on single study folders of the tiny phantom: the printed table, the
JSON and the PNG, the same grades as the predict stage, typing from tags, and clear errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest

from lsdc import cli, schema
from lsdc.predict import study, submission
from predict_fixtures import build, save_checkpoints
from rois_fixtures import BlobDetectors


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return build(tmp_path_factory)


def _args(run, path, out, series_type=(), strict=False, models_dir=None):
    extra = [a for item in series_type for a in ("--series-type", item)] + (["--strict"] if strict else [])
    return cli.stage_args("predict-study", str(path), "--models-dir", str(models_dir or run.paths.models_dir),
                          "--out", str(out), "--labels", str(run.paths.labels), *extra)


def _main(run, path, out, capsys, **kw) -> tuple[int, str, str]:
    code = cli.run_stage("predict-study", run.params, _args(run, path, out, **kw),
                         detectors=BlobDetectors(run.params.detect))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("study_id", [201, 202])
def test_prints_25_grades_and_writes_json_and_png_equal_to_the_stage(run, tmp_path, capsys, study_id):
    folder = run.root / schema.TEST_IMAGES / str(study_id)
    code, out, _ = _main(run, folder, tmp_path, capsys)
    assert code == 0
    grade_lines = [ln for ln in out.splitlines() if ln.split()[:1] and ln.split()[0] in schema.LABEL_COLUMNS]
    assert len(grade_lines) == 25 and all(ln.split()[1] in schema.SEVERITIES for ln in grade_lines)
    png = tmp_path / f"{study_id}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = json.loads((tmp_path / f"{study_id}.json").read_text())
    assert report["study_id"] == study_id and [r["column"] for r in report["labels"]] == list(schema.LABEL_COLUMNS)
    stage_probs = submission.probs_of(pd.read_csv(run.paths.submission), [study_id])[0]
    ours = np.array([[r[c] for c in schema.PROB_COLUMNS] for r in report["labels"]])
    np.testing.assert_allclose(ours, stage_probs, atol=1e-6)
    assert [r["grade"] for r in report["labels"]] == [schema.SEVERITIES[k] for k in stage_probs.argmax(1)]
    assert {s["typed_from"] for s in report["series"]} == {"csv"}
    n_prior = sum(r["from_prior"] for r in report["labels"])
    assert n_prior == (10 if study_id == 202 else 0)
    assert (out.count("(prior)") == n_prior) and (report["crops"]["missing"] == (10 if study_id == 202 else 0))


def test_unlisted_study_is_typed_from_its_tags_with_the_same_grades(run, tmp_path, capsys):
    folder = tmp_path / "anonymous"
    shutil.copytree(run.root / schema.TEST_IMAGES / "201", folder)
    code, out, _ = _main(run, folder, tmp_path / "out", capsys)
    assert code == 0
    report = json.loads((tmp_path / "out" / "anonymous.json").read_text())
    assert report["study_id"] is None and {s["typed_from"] for s in report["series"]} == {"tag"}
    assert sorted(s["plane"] for s in report["series"]) == sorted(schema.PLANES)
    stage_probs = submission.probs_of(pd.read_csv(run.paths.submission), [201])[0]
    assert [r["grade"] for r in report["labels"]] == [schema.SEVERITIES[k] for k in stage_probs.argmax(1)]


def _relabel_first_file(series_dir, description):
    first = sorted(series_dir.glob("*.dcm"))[0]
    ds = pydicom.dcmread(first)
    ds.SeriesDescription = description
    ds.save_as(first)


def test_series_that_cannot_be_typed_is_reported_or_an_error(run, tmp_path, capsys):
    folder = tmp_path / "study"
    shutil.copytree(run.root / schema.TEST_IMAGES / "201", folder)
    axial = sorted(p for p in folder.iterdir())[-1]
    _relabel_first_file(axial, "Localizer")
    _, typed = study.type_series(folder, run.root, {})
    untyped = [t for t in typed if t.plane is None]
    assert [t.folder for t in untyped] == [axial.name] and "'Localizer'" in untyped[0].reason
    code, _, err = _main(run, folder, tmp_path / "out", capsys, strict=True)
    assert code == 2 and f"{axial.name}: cannot type the series" in err and "--series-type" in err
    _, typed = study.type_series(folder, run.root, study.parse_overrides([f"{axial.name}=Axial T2"]))
    assert [t.plane for t in typed if t.folder == axial.name] == ["ax_t2"]
    with pytest.raises(study.StudyInputError, match="FOLDER=PLANE"):
        study.parse_overrides(["x=coronal"])


def test_folder_without_dicom_fails_clearly(run, tmp_path, capsys):
    (tmp_path / "empty" / "123").mkdir(parents=True)
    code, out, err = _main(run, tmp_path / "empty", tmp_path / "out", capsys)
    assert code == 2 and "no DICOM files" in err and "empty" in err and out == ""
    series = sorted((run.root / schema.TEST_IMAGES / "201").iterdir())[0]
    code, _, err = _main(run, series, tmp_path / "out", capsys)
    assert code == 2 and "pass the study folder" in err


def test_model_files_that_do_not_match_fail_clearly(run, tmp_path, capsys):
    folder = run.root / schema.TEST_IMAGES / "201"
    wrong_size = tmp_path / "wrong_size"
    save_checkpoints(wrong_size, run.keys, 32, run.params, n_folds=1)
    code, _, err = _main(run, folder, tmp_path / "out", capsys, models_dir=wrong_size)
    assert code == 2 and "fold_0.pt: model trained on 32-px crops" in err
    wrong_layout = tmp_path / "wrong_layout"
    save_checkpoints(wrong_layout, [k.replace("/0", "/1") if k.startswith("ax_t2") else k for k in run.keys],
                     16, run.params, n_folds=1)
    code, _, err = _main(run, folder, tmp_path / "out", capsys, models_dir=wrong_layout)
    assert code == 2 and "layout needs 10 channel(s)" in err
    garbage = tmp_path / "garbage" / "classifier"
    garbage.mkdir(parents=True)
    (garbage / "fold_0.pt").write_bytes(b"not a checkpoint")
    code, _, err = _main(run, folder, tmp_path / "out", capsys, models_dir=garbage.parent)
    assert code == 2 and "fold_0.pt: not a loadable classifier checkpoint" in err
    code, _, err = _main(run, folder, tmp_path / "out", capsys, models_dir=tmp_path / "nothing")
    assert code == 2 and "no classifier checkpoints" in err


def test_missing_detector_weights_are_named(run, tmp_path):
    with pytest.raises(study.StudyInputError, match=r"detectors/ax_t2.pt: detector weights not found"):
        study.yolo_detectors(tmp_path, run.params, {"ax_t2"})


def test_a_second_call_builds_no_model_decodes_once_and_gives_the_same_grades(run, tmp_path, monkeypatch):
    """Fold networks are built once per checkpoint file and reused; each call decodes each
    DICOM file once (the overlay draws the slices extraction decoded); a rewritten
    checkpoint is loaded afresh."""
    from lsdc import dicom
    from lsdc.classify import model as model_mod
    from lsdc.predict import ensemble

    folder = run.root / schema.TEST_IMAGES / "201"
    det = BlobDetectors(run.params.detect)
    ensemble.clear_cache()
    first = study.run_study(folder, run.params, run.paths.models_dir, tmp_path / "a", run.paths.labels, detectors=det)
    built, reads = [], []
    real_build, real_read = ensemble.model_from_checkpoint, dicom.read_pixels
    monkeypatch.setattr(ensemble, "model_from_checkpoint", lambda ck: built.append(1) or real_build(ck))
    monkeypatch.setattr(model_mod, "model_from_checkpoint", lambda ck: built.append(1) or real_build(ck))
    monkeypatch.setattr(dicom, "read_pixels", lambda p: reads.append(str(p)) or real_read(p))
    second = study.run_study(folder, run.params, run.paths.models_dir, tmp_path / "b", run.paths.labels, detectors=det)
    assert built == []
    n_files = sum(s["files"] for s in second["series"])
    assert len(reads) == len(set(reads)) == n_files
    assert [r["grade"] for r in second["labels"]] == [r["grade"] for r in first["labels"]]
    np.testing.assert_array_equal([[r[c] for c in schema.PROB_COLUMNS] for r in second["labels"]],
                                  [[r[c] for c in schema.PROB_COLUMNS] for r in first["labels"]])
    ckpt = sorted((run.paths.models_dir / "classifier").glob("fold_*.pt"))[0]
    copy = tmp_path / "models"
    shutil.copytree(run.paths.models_dir, copy)
    study.run_study(folder, run.params, copy, tmp_path / "c", run.paths.labels, detectors=det)
    n_folds = len(second["models"])
    assert len(built) == n_folds  # another folder: its files are built once
    (copy / "classifier" / ckpt.name).write_bytes((copy / "classifier" / ckpt.name).read_bytes())
    os.utime(copy / "classifier" / ckpt.name, ns=(1, 1))
    study.run_study(folder, run.params, copy, tmp_path / "d", run.paths.labels, detectors=det)
    assert len(built) == n_folds + 1  # the rewritten checkpoint only
