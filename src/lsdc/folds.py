"""`folds` stage: assign every train study to one cross-validation fold.

Folds are grouped by study (one row per study, so a study's series, slices and
labels all fall in one fold) and stratified on a per-study grade summary, so every
fold sees a similar mix of mild, moderate and severe studies. The detectors
validate on fold `detect.export.val_fold`; the classifier's fold k validates on fold k.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from lsdc import index, paths, schema

log = logging.getLogger(__name__)



def grade_stratum(labels: pd.DataFrame) -> pd.Series:
    """Per-study stratum from its grades: worst grade (0/1/2) x any severe canal stenosis.

    `labels` is the long labels table (study_id, condition, severity_code); missing
    grades (IGNORE_INDEX) are ignored; a study without any grade gets stratum -1.
    """
    graded = labels[labels["severity_code"] != schema.IGNORE_INDEX]
    worst = graded.groupby("study_id")["severity_code"].max()
    canal = graded[graded["condition"] == schema.CONDITIONS[0]]
    severe_canal = (canal["severity_code"] == 2).groupby(canal["study_id"]).any()
    stratum = worst.astype(int) * 2 + severe_canal.reindex(worst.index, fill_value=False).astype(int)
    all_ids = pd.Index(labels["study_id"].unique(), name="study_id")
    return stratum.reindex(all_ids, fill_value=-1).rename("stratum")


def make_folds(study_ids: np.ndarray, strata: pd.Series, n_folds: int, seed: int) -> pd.DataFrame:
    """study_id -> fold, stratified on `strata` (indexed by study_id); deterministic in seed.

    Strata with fewer members than folds are merged into the largest stratum so the
    stratified split is always possible.
    """
    ids = np.sort(np.unique(np.asarray(study_ids, dtype=np.int64)))
    if n_folds < 2:
        raise ValueError(f"cv.n_folds must be >= 2, got {n_folds}")
    if len(ids) < n_folds:
        raise ValueError(f"{len(ids)} train studies cannot fill {n_folds} folds")
    y = strata.reindex(ids, fill_value=-1).to_numpy().copy()
    counts = pd.Series(y).value_counts()
    rare = counts[counts < n_folds].index
    if len(rare):
        y[np.isin(y, rare)] = counts.idxmax()
    folds = np.full(len(ids), -1, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, val_idx) in enumerate(splitter.split(ids, y)):
        folds[val_idx] = k
    return pd.DataFrame({"study_id": ids, "fold": folds})


def build_folds(index_dir: Path, n_folds: int, seed: int) -> pd.DataFrame:
    """Read the ingest index and return the folds table of all train studies."""
    tables = index.read(index_dir, ("studies", "labels"))
    studies, labels = tables["studies"], tables["labels"]
    train_ids = studies.loc[studies["split"] == "train", "study_id"].to_numpy()
    if len(train_ids) == 0:
        raise ValueError(f"{index.table_path(index_dir, 'studies')}: no train studies")
    return make_folds(train_ids, grade_stratum(labels), n_folds, seed)


def load_folds(path: Path = paths.FOLDS_FILE) -> pd.DataFrame:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: folds table missing (run `lsdc folds` first)")
    return pd.read_parquet(path)
