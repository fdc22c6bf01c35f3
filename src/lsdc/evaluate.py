"""`evaluate` stage: the competition metric and the seed notebook's analysis (lsdc/__init__.py) on the OOF predictions.

Reads data/processed/oof.parquet, labels.parquet, the per-epoch CSVs of
train_classifier and, on synthetic data, ${data.root}/train_oracle.csv (the train split's
oracle, from synth): with it metrics/cv.json also holds the normalised skill against
the train-split oracle and its bootstrap 95 % interval (studies resampled, fixed seed). Writes metrics/cv.json (competition score overall, its four terms,
per fold, and a constant prior fitted on the training folds of each fold and scored
on the same rows; accuracy, macro precision/recall/F1 and AUC per condition, family
and overall) and reports/plots/ (training curves, accuracy heatmap condition x level,
ROC per condition and grade, confusion matrices, reliability diagrams). Logs both to MLflow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsdc import headline, jsonio, metrics, schema, tracking
from lsdc import paths as lsdc_paths
from lsdc.classify import data, plots
from lsdc.classify import oof as oof_table
from lsdc.params import Params

log = logging.getLogger(__name__)

STAGE = "evaluate"
PLOT_FILES = ("training_curves.png", "accuracy_heatmap.png", "roc.png", "confusion.png", "reliability.png")


@dataclass(frozen=True)
class Paths:
    oof: Path = lsdc_paths.OOF_FILE
    labels: Path = lsdc_paths.LABELS_FILE
    curves: Path = lsdc_paths.CLASSIFIER_CURVES_DIR
    cv: Path = lsdc_paths.CV_METRICS
    plots: Path = lsdc_paths.PLOTS_DIR
    train_oracle: Path | None = None  # None = ${data.root}/train_oracle.csv (synthetic data only)


def load_oof(path: Path, labels: pd.DataFrame, where_labels: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(OOF frame, labels (n, 25), probs (n, 25, 3)) with clear errors on a bad file."""
    frame, probs = oof_table.read(path)
    y = data.label_array(labels, frame["study_id"].to_numpy(), where=where_labels)
    return frame, y, probs


def oof_prior(y: np.ndarray, folds: np.ndarray, pseudocount: float) -> np.ndarray:
    """For each fold's rows, the best constant prior fitted on the other folds' labels."""
    out = np.empty((len(y), y.shape[1], 3))
    for k in np.unique(folds):
        rows = folds == k
        prior = metrics.best_constant_prior(y[~rows] if (~rows).any() else y, pseudocount=pseudocount)
        out[rows] = metrics.prior_probs(prior, int(rows.sum()))
    return out


def load_oracle(path: Path | None, study_ids: np.ndarray) -> np.ndarray | None:
    """The train split's oracle probabilities (n, 25, 3) for these studies; None without the file
    (real data) or when it lacks some of them (with a warning)."""
    if path is None or not path.is_file():
        return None
    try:
        return metrics.probs_from_submission(pd.read_csv(path), study_ids)
    except ValueError as e:
        log.warning("%s: no oracle for the OOF studies (%s); the normalised skill is left out", path, e)
        return None


def cv_metrics(y: np.ndarray, probs: np.ndarray, folds: np.ndarray, pseudocount: float,
               oracle: np.ndarray | None = None) -> dict[str, Any]:
    """Scores of the OOF predictions; with the train split's oracle also the normalised skill
    (prior - model) / (prior - oracle) and its bootstrap 95 % interval over studies."""
    prior = oof_prior(y, folds, pseudocount)
    per_fold = {}
    for k in np.unique(folds):
        rows = folds == k
        per_fold[f"fold_{int(k)}"] = {
            "n": int(rows.sum()),
            "score": metrics.competition_score(y[rows], probs[rows]).as_dict(),
            "prior": metrics.competition_score(y[rows], prior[rows]).as_dict(),
        }
    out: dict[str, Any] = {
        "n_studies": len(y),
        "score": metrics.competition_score(y, probs).as_dict(),
        "prior": metrics.competition_score(y, prior).as_dict(),
    }
    if oracle is not None:
        out.update(skill_entries(y, probs, prior, oracle))
    return out | {"per_fold": per_fold, "classification": metrics.classification_report(y, probs)}


def skill_entries(y: np.ndarray, probs: np.ndarray, prior: np.ndarray, oracle: np.ndarray) -> dict[str, Any]:
    """oracle score, normalised skill (overall and per family term), bootstrap interval."""
    boot = metrics.bootstrap_skill(y, probs, prior, oracle)
    s_model, s_prior, s_oracle = (metrics.competition_score(y, p).as_dict() for p in (probs, prior, oracle))
    per_term = {k: ((s_prior[k] - s_model[k]) / (s_prior[k] - s_oracle[k]) if s_prior[k] != s_oracle[k]
                    else float("nan")) for k in s_model if k != "total"}
    return {"oracle": s_oracle, "normalised_skill": boot["skill"],
            "skill_ci95": {"low": boot["low"], "high": boot["high"]},
            "skill_bootstrap": {"se": boot["se"], "n_boot": boot["n_boot"], "seed": metrics.BOOTSTRAP_SEED},
            "skill_per_term": per_term}


def load_curves(curves_dir: Path) -> dict[int, pd.DataFrame]:
    curves = {}
    for path in sorted(curves_dir.glob("fold_*.csv")):
        curves[int(path.stem.split("_")[1])] = pd.read_csv(path)
    if not curves:
        log.warning("no per-epoch CSVs in %s; the training-curve plot will be empty", curves_dir)
    return curves


def run(params: Params, paths: Paths = Paths()) -> dict[str, Any]:
    labels = data.load_labels(paths.labels)
    frame, y, probs = load_oof(paths.oof, labels, str(paths.labels))
    folds = frame["fold"].to_numpy(np.int64)
    oracle_path = paths.train_oracle or Path(params.data.root) / schema.TRAIN_ORACLE_CSV
    oracle = load_oracle(oracle_path, frame["study_id"].to_numpy(np.int64))
    result = jsonio.finite(cv_metrics(y, probs, folds, params.evaluate.prior_pseudocount, oracle))
    paths.cv.parent.mkdir(parents=True, exist_ok=True)
    headline.write("cv", result, paths.cv)
    paths.plots.mkdir(parents=True, exist_ok=True)
    for old in paths.plots.glob("*.png"):
        old.unlink()
    plots.plot_training_curves(load_curves(paths.curves), paths.plots / PLOT_FILES[0],
                               prior_score=result["prior"]["total"])
    plots.plot_accuracy_heatmap(y, probs, paths.plots / PLOT_FILES[1])
    plots.plot_roc(y, probs, paths.plots / PLOT_FILES[2])
    plots.plot_confusion(y, probs, paths.plots / PLOT_FILES[3])
    plots.plot_reliability(y, probs, paths.plots / PLOT_FILES[4], params.evaluate.reliability_bins)
    with tracking.stage_run(STAGE, params):
        tracking.log_metrics(result)
        tracking.log_artifact(paths.cv)
        tracking.log_artifact(headline.details_path(paths.cv))
        tracking.log_artifact(paths.plots)
    log.info("OOF competition score %.4f vs constant prior %.4f on the same %d studies",
             result["score"]["total"] or float("nan"), result["prior"]["total"] or float("nan"), len(y))
    return result
