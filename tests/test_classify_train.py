"""train_classifier on a tiny temp ROI store: checkpoints, OOF table, curves, MLflow runs."""

import json
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from classify_fakes import write_fake_inputs
from lsdc import headline, params, schema
from lsdc.classify import augment, data, layout, model, train
from lsdc.classify import oof as oof_table
from lsdc.classify.engine import CSV_COLUMNS, train_fold

ROOT = Path(__file__).resolve().parents[1]
TINY = {"model.name": "resnet10t", "train.epochs": 1, "train.batch_size": 4, "runtime.train_device": "cpu"}


def run_tiny(root: Path, **overrides):
    inputs = write_fake_inputs(root / "in", n_studies=12, roi_size=16, n_folds=3)
    p = params.load(ROOT / "params.yaml", overrides={**TINY, **overrides})
    out = root / "out"
    paths = train.Paths(rois_dir=inputs["rois"], labels=inputs["labels"], folds=inputs["folds"],
                        checkpoints=out / "models", oof=out / "oof.parquet", curves=out / "curves",
                        summary=out / "classifier.json")
    return p, inputs, paths, train.run(p, paths)


def file_store(mp, root: Path) -> str:
    """A file MLflow store: starts in well under a second (a new sqlite store migrates for ~10 s)."""
    uri = (root / "mlruns").as_uri()
    mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mp.setenv("LSDC_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls")
    with pytest.MonkeyPatch.context() as mp:
        file_store(mp, root)
        yield (*run_tiny(root), root)


def test_checkpoints_reload_and_reproduce_their_oof_probabilities(tiny_run):
    p, inputs, paths, summary, _ = tiny_run
    oof = pd.read_parquet(paths.oof)
    folds = pd.read_parquet(inputs["folds"]).sort_values("study_id")
    assert oof["study_id"].tolist() == folds["study_id"].tolist()
    assert oof["fold"].tolist() == folds["fold"].tolist()
    assert list(oof.columns[2:5]) == [f"{schema.LABEL_COLUMNS[0]}__{c}" for c in schema.PROB_COLUMNS]
    probs = oof_table.probs_of(oof)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    store = data.load_store(inputs["rois"])
    for k in range(3):
        ckpt = torch.load(paths.checkpoints / f"fold_{k}.pt", weights_only=True)
        assert ckpt["model_name"] == "resnet10t" and ckpt["fold"] == k and ckpt["layout_name"] == "crops"
        assert ckpt["layout"] == layout.build_layout("anatomical", layout.store_channels(store.index))
        assert ckpt["in_chans"] == len(ckpt["layout"]) == 5 + 10 + 10
        assert ckpt["params"]["train.epochs"] == 1
        rows = (oof["fold"] == k).to_numpy()
        ids = oof["study_id"][rows].to_numpy()
        crop_rows, present = layout.assemble(store.index, ids, ckpt["layout"])
        again = model.predict_probs(ckpt, np.asarray(store.crops[crop_rows]), present)
        np.testing.assert_allclose(again, probs[rows], atol=1e-5)


@pytest.mark.parametrize("name", ["anatomical", "notebook"])
def test_every_layout_trains_and_its_checkpoint_reproduces_the_oof(tmp_path, monkeypatch, name):
    """The stacked layouts go through the same stage, OOF format and checkpoint as crops."""
    file_store(monkeypatch, tmp_path)
    p, inputs, paths, summary = run_tiny(tmp_path, **{"train.layout": name})
    store = data.load_store(inputs["rois"])
    oof = pd.read_parquet(paths.oof)
    probs = oof_table.probs_of(oof)
    ckpt = model.load_checkpoint(paths.checkpoints / "fold_1.pt")
    assert ckpt["layout_name"] == name and ckpt["in_chans"] == {"anatomical": 25, "notebook": 60}[name]
    rows = (oof["fold"] == 1).to_numpy()
    crop_rows, present = layout.assemble(store.index, oof["study_id"][rows].to_numpy(), ckpt["layout"])
    again = model.predict_probs(ckpt, np.asarray(store.crops[crop_rows]), present)
    np.testing.assert_allclose(again, probs[rows], atol=1e-5)
    assert np.isfinite(summary["oof_score"]["total"])


def test_per_epoch_csv_and_summary(tiny_run):
    p, inputs, paths, summary, _ = tiny_run
    for k in range(3):
        curve = pd.read_csv(paths.curves / f"fold_{k}.csv")
        assert tuple(curve.columns) == CSV_COLUMNS
        assert curve["epoch"].tolist() == [0]
        assert curve["lr"].iloc[0] == pytest.approx(p.train.lr)
        assert np.isfinite(curve[["train_loss", "val_loss", "score"]].to_numpy()).all()
    assert json.loads(paths.summary.read_text()) == {"oof_score": {"total": summary["oof_score"]["total"]}}
    written = headline.load(paths.summary)
    assert "seconds" not in json.dumps(written) and summary["_seconds"] > 0  # wall-clock: MLflow only
    assert written["folds"]["fold_1"]["n_val"] == 4
    assert written["oof_score"]["total"] == pytest.approx(summary["oof_score"]["total"])


def test_mlflow_parent_with_one_nested_run_per_fold(tiny_run):
    root = tiny_run[-1]
    mlflow.set_tracking_uri((root / "mlruns").as_uri())
    runs = mlflow.search_runs(experiment_names=["lsdc"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1
    children = runs[runs["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]]
    assert sorted(children["tags.mlflow.runName"]) == ["fold_0", "fold_1", "fold_2"]
    assert children["metrics.score"].notna().all()
    assert parents["metrics.oof_score/total"].notna().all()


def test_training_is_deterministic_on_the_notebook_layout(tiny_run):
    p, inputs, _, _, _ = tiny_run
    store = data.load_store(inputs["rois"])
    folds = data.load_folds(inputs["folds"])
    y = data.label_array(data.load_labels(inputs["labels"]), folds["study_id"].to_numpy())
    keys = layout.build_layout("notebook", layout.store_channels(store.index))
    rows, present = layout.assemble(store.index, folds["study_id"].to_numpy(), keys)
    val = (folds["fold"] == 0).to_numpy()
    results = []
    for _ in range(2):
        transform = augment.build_augment(p.train.aug, seed=5)
        train_set = data.StudyCrops(store.crops, rows[~val], present[~val], y[~val], transform)
        val_set = data.StudyCrops(store.crops, rows[val], present[val], y[val])
        results.append(train_fold(0, train_set, val_set, p.model, replace(p.train, layout="notebook"), seed=5))
    assert next(results[0].model.parameters()).shape[1] == 60
    np.testing.assert_array_equal(results[0].val_probs, results[1].val_probs)
    assert results[0].history[0]["train_loss"] == results[1].history[0]["train_loss"]


def test_fold_study_without_labels_is_an_error(tmp_path, monkeypatch):
    file_store(monkeypatch, tmp_path)
    inputs = write_fake_inputs(tmp_path, n_studies=6, roi_size=8)
    folds = pd.read_parquet(inputs["folds"])
    pd.concat([folds, pd.DataFrame({"study_id": [42], "fold": [0]})]).to_parquet(inputs["folds"])
    p = params.load(ROOT / "params.yaml", overrides=TINY)
    out = tmp_path / "out"
    paths = train.Paths(rois_dir=inputs["rois"], labels=inputs["labels"], folds=inputs["folds"],
                        checkpoints=out / "models", oof=out / "oof.parquet", curves=out / "curves",
                        summary=out / "classifier.json")
    with pytest.raises(ValueError, match="no labels for 1 fold studies"):
        train.run(p, paths)
