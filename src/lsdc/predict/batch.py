"""`lsdc predict`: the Kaggle submission for every test study, scored when labels exist.

Reads `${data.root}/test_series_descriptions.csv` (which studies), the ROI store
(data/processed/rois/, test studies' crops), the fold checkpoints
(models/classifier/fold_<k>.pt) and labels.parquet (the training prior). Writes
data/processed/submission.csv (sample_submission.csv format: 25 rows per study, sorted,
each row summing to 1), data/processed/submission_notes.csv (studies lacking a series or
crops, with the reason and the labels that fell back to the prior) and metrics/test.json:
counts, and when `${data.root}/test_labels.csv` exists (synthetic data) the competition
score of the submission, of the constant training prior and of the oracle
(test_oracle.csv), and the normalised skill (prior - model) / (prior - oracle) with its
bootstrap 95 % interval over the test studies (metrics.bootstrap_skill, fixed seed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsdc import headline, metrics, schema
from lsdc import paths as lsdc_paths
from lsdc.classify import data
from lsdc.classify.engine import resolve_device
from lsdc.ingest.csvs import read_series_csv
from lsdc.ingest.problems import Problems
from lsdc.params import Params
from lsdc.predict import ensemble, submission

log = logging.getLogger(__name__)

STAGE = "predict"
CLASSIFIER_SUBDIR = lsdc_paths.CLASSIFIER_DIR.name  # models_dir/<this>/fold_<k>.pt
NOTE_COLUMNS = ("study_id", "reason", "prior_labels", "prior_columns")


@dataclass(frozen=True)
class Paths:
    rois_dir: Path = lsdc_paths.ROIS_DIR
    models_dir: Path = lsdc_paths.MODELS_DIR  # holds classifier/fold_<k>.pt
    labels: Path = lsdc_paths.LABELS_FILE
    submission: Path = lsdc_paths.SUBMISSION_FILE
    notes: Path = lsdc_paths.SUBMISSION_NOTES_FILE
    metrics: Path = lsdc_paths.TEST_METRICS


def test_series(root: Path) -> pd.DataFrame:
    """test_series_descriptions.csv, validated: study_id, series_id, series_description, plane."""
    path = root / schema.TEST_SERIES_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; the predict stage lists test studies from it")
    problems = Problems()
    frame = read_series_csv(root, schema.TEST_SERIES_CSV, "test", problems)
    for row in problems.rows:
        log.warning("%s", row["reason"])
    if frame.empty:
        raise ValueError(f"{path}: no test studies listed")
    return frame


def study_notes(series: pd.DataFrame, index: pd.DataFrame, study_ids: np.ndarray,
                evidence: np.ndarray) -> pd.DataFrame:
    """One row per study with something missing: reasons, and the labels given the prior."""
    in_store = set(index["study_id"].astype("int64").tolist())
    rows = []
    for i, sid in enumerate(study_ids):
        reasons = []
        own = series[series["study_id"] == sid]
        for r in own[own["plane"].isna()].itertuples():
            reasons.append(f"series {r.series_id}: unknown description {r.series_description!r}")
        if sid not in in_store:
            reasons.append("no crops in the ROI store (study not extracted)")
        else:
            crops = index[index["study_id"] == sid]
            for plane in schema.PLANES:
                desc = schema.DESCRIPTION_OF_PLANE[plane]
                missing = (crops.loc[crops["plane"] == plane, "source"].astype(str) == "missing").to_numpy()
                if not (own["plane"] == plane).any():
                    reasons.append(f"no {desc} series in {schema.TEST_SERIES_CSV}")
                elif missing.all():
                    reasons.append(f"all {desc} crops missing (series unreadable or not on disk)")
                elif missing.any():
                    reasons.append(f"{missing.sum()} of {len(missing)} {desc} crops missing")
        prior_cols = [c for c, e in zip(schema.LABEL_COLUMNS, evidence[i]) if not e]
        if reasons or prior_cols:
            rows.append((int(sid), "; ".join(reasons) or "labels without crops", len(prior_cols),
                         ";".join(prior_cols)))
    return pd.DataFrame(rows, columns=list(NOTE_COLUMNS))


def score(root: Path, frame: pd.DataFrame, prior: ensemble.Prior) -> dict[str, Any]:
    """Scores against test_labels.csv (absent on real data: {'scored': False})."""
    labels_path = root / schema.TEST_LABELS_CSV
    if not labels_path.is_file():
        return {"scored": False}
    solution = pd.read_csv(labels_path)
    study_ids, labels = metrics.labels_from_frame(solution)
    out: dict[str, Any] = {"scored": True, "n_scored_studies": int(len(study_ids))}
    out["model"] = metrics.score_frames(solution, frame).as_dict()
    constant = metrics.prior_probs(prior.probs, len(study_ids))
    out["constant_prior"] = metrics.competition_score(labels, constant).as_dict()
    oracle_path = root / schema.TEST_ORACLE_CSV
    if oracle_path.is_file():
        oracle = metrics.probs_from_submission(pd.read_csv(oracle_path), study_ids)
        out["oracle"] = metrics.competition_score(labels, oracle).as_dict()
        model = metrics.probs_from_submission(frame, study_ids)
        boot = metrics.bootstrap_skill(labels, model, constant, oracle)
        out["normalised_skill"] = boot["skill"]
        out["skill_ci95"] = {"low": boot["low"], "high": boot["high"]}
        out["skill_bootstrap"] = {"se": boot["se"], "n_boot": boot["n_boot"], "seed": metrics.BOOTSTRAP_SEED}
    return out


def run(params: Params, paths: Paths = Paths()) -> dict[str, Any]:
    """Write submission, notes and metrics; return the metrics."""
    start = time.perf_counter()
    root = Path(params.data.root)
    series = test_series(root)
    study_ids = np.array(sorted(series["study_id"].unique()), dtype=np.int64)
    store = data.load_store(paths.rois_dir)
    models = ensemble.load_models(paths.models_dir / CLASSIFIER_SUBDIR, store.roi_size,
                                  ensemble.channel_keys(store.index))
    if store.roi_size != params.rois.roi_size:
        log.warning("%s: crops are %d px but rois.roi_size is %d; using the store as it is",
                    paths.rois_dir, store.roi_size, params.rois.roi_size)
    prior = ensemble.load_prior(paths.labels, params.predict.prior_pseudocount, models)
    device = resolve_device(params.runtime.predict_device)
    probs, ev = ensemble.study_probs(models, store.crops, store.index, study_ids, prior,
                                     str(device), params.predict.batch_size)
    frame = submission.build_frame(study_ids, probs)
    submission.check(frame, study_ids, where=str(paths.submission))
    sample = root / schema.SAMPLE_SUBMISSION_CSV
    if sample.is_file():
        submission.check_against_sample(frame, sample)
    submission.write(frame, paths.submission)
    notes = study_notes(series, store.index, study_ids, ev)
    paths.notes.parent.mkdir(parents=True, exist_ok=True)
    notes.to_csv(paths.notes, index=False)
    for r in notes.itertuples():
        log.info("study %d: %s (%d labels from the prior)", r.study_id, r.reason, r.prior_labels)
    result = {"n_studies": int(len(study_ids)), "n_models": len(models), "studies_with_notes": int(len(notes)),
              "labels_from_prior": int((~ev).sum()), "prior_source": prior.source,
              **score(root, frame, prior)}
    headline.write("test", result, paths.metrics)
    # wall-clock time is logged to MLflow only (main): in a DVC out it would change dvc.lock
    return {**result, "_seconds": round(time.perf_counter() - start, 2)}
