"""A tiny end-to-end setting for the predict tests, built once per session: the hand-made
phantom (rois_fixtures) with two train and two test studies (study 202 has no axial
series), its ingest index, an ROI store made by the real extraction with the blob
stand-in detector, two fold checkpoints saved with the classifier's own make_checkpoint,
the synthetic-only CSVs (sample_submission, test_labels, test_oracle), and one run of the
predict stage."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from lsdc import params as params_mod
from lsdc import schema
from lsdc.classify import layout, model
from lsdc.ingest.build import build_index
from lsdc.predict import batch as stage
from lsdc.rois import extract as rois_stage
from rois_fixtures import BlobDetectors, make_root

ROOT = Path(__file__).resolve().parents[1]
STUDIES = [
    dict(split="train", study=101, x0=1.5),
    dict(split="train", study=102, x0=-2.0),
    dict(split="test", study=201, x0=0.5),
    dict(split="test", study=202, x0=-1.0, planes=("sag_t1", "sag_t2")),  # no Axial T2 series
]
TEST_IDS = (201, 202)
OVERRIDES = {"runtime.workers": 0, "rois.roi_size": 16, "rois.slices.sag_t1": 1, "rois.slices.sag_t2": 1,
             "rois.slices.ax_t2": 1, "runtime.predict_device": "cpu"}
_CACHE: dict[str, SimpleNamespace] = {}


def load_params(root: Path, **extra):
    return params_mod.load(ROOT / "params.yaml", overrides={"data.root": str(root), **OVERRIDES, **extra})


def save_checkpoints(models_dir: Path, keys: list[str], roi_size: int, p, n_folds: int = 2) -> list[Path]:
    out = models_dir / "classifier"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_folds):
        torch.manual_seed(k)
        net = model.create_model("resnet10t", len(keys))
        with torch.no_grad():  # spread the logits so grades differ between labels
            net.get_classifier().bias.copy_(torch.randn(75) * 1.5)
        path = out / f"fold_{k}.pt"
        torch.save(model.make_checkpoint(net, "resnet10t", keys, roi_size, p.flat(), fold=k), path)
        paths.append(path)
    return paths


def write_synthetic_csvs(root: Path, rng: np.random.Generator) -> None:
    ids = np.array(TEST_IDS)
    uniform = pd.DataFrame([(rid, 1 / 3, 1 / 3, 1 / 3) for s in ids for rid in schema.study_row_ids(s)],
                           columns=list(schema.SUBMISSION_COLUMNS))
    uniform.to_csv(root / schema.SAMPLE_SUBMISSION_CSV, index=False, float_format="%.6f")
    codes = rng.choice(3, size=(len(ids), len(schema.LABEL_COLUMNS)), p=[0.6, 0.25, 0.15])
    grades = np.array(schema.SEVERITIES, dtype=object)[codes]
    grades[0, 3] = None  # one missing label
    labels = pd.DataFrame(grades, columns=list(schema.LABEL_COLUMNS))
    labels.insert(0, "study_id", ids)
    labels.to_csv(root / schema.TEST_LABELS_CSV, index=False)
    oracle = rng.dirichlet([2, 1, 1], size=len(uniform))
    pd.DataFrame({"row_id": uniform["row_id"], **{c: oracle[:, k] for k, c in enumerate(schema.PROB_COLUMNS)}}
                 ).to_csv(root / schema.TEST_ORACLE_CSV, index=False)


def build(tmp_path_factory) -> SimpleNamespace:
    if "main" in _CACHE:
        return _CACHE["main"]
    base = tmp_path_factory.mktemp("predict")
    root = base / "root"
    make_root(root, STUDIES)
    write_synthetic_csvs(root, np.random.default_rng(3))
    build_index(root).write(base / "index")
    p = load_params(root)
    rois_stage.run(p, index_dir=base / "index", out_dir=base / "rois", metrics_path=base / "rois.json",
                   sheets_dir=base / "sheets", detectors=BlobDetectors(p.detect))
    store_index = pd.read_parquet(base / "rois" / "index.parquet")
    keys = layout.build_layout("anatomical", layout.store_channels(store_index))
    save_checkpoints(base / "models", keys, 16, p)
    paths = stage.Paths(rois_dir=base / "rois", models_dir=base / "models", labels=base / "index" / "labels.parquet",
                        submission=base / "out" / "submission.csv", notes=base / "out" / "notes.csv",
                        metrics=base / "out" / "test.json")
    result = stage.run(p, paths)
    _CACHE["main"] = SimpleNamespace(base=base, root=root, params=p, paths=paths, result=result, keys=keys,
                                     store_index=store_index)
    return _CACHE["main"]
