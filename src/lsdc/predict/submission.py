"""The submission frame in sample_submission.csv format: build, validate, write.

Rows: 25 per study (schema.study_row_ids: sorted by row_id), studies in ascending id
order, columns schema.SUBMISSION_COLUMNS. Probabilities are renormalised per row so
each row sums to 1 exactly up to float rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import schema

log = logging.getLogger(__name__)

N_LABELS = len(schema.LABEL_COLUMNS)
SUM_TOLERANCE = 1e-6


def row_ids(study_ids: Sequence[int]) -> list[str]:
    """Every row id of the given studies, in submission order (studies by id)."""
    return [rid for sid in sorted(int(s) for s in study_ids) for rid in schema.study_row_ids(sid)]


def build_frame(study_ids: Sequence[int], probs: np.ndarray) -> pd.DataFrame:
    """probs (n, 25, 3) in schema.LABEL_COLUMNS order for study_ids -> submission frame."""
    study_ids = [int(s) for s in study_ids]
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(study_ids), N_LABELS, 3):
        raise ValueError(f"probs must have shape ({len(study_ids)}, {N_LABELS}, 3), got {probs.shape}")
    if len(set(study_ids)) != len(study_ids):
        raise ValueError("build_frame: duplicate study ids")
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs.sum(-1) <= 0).any():
        raise ValueError("build_frame: probabilities must be finite, non-negative, with a positive sum per row")
    probs = probs / probs.sum(-1, keepdims=True)
    values = {schema.row_id(sid, col): probs[i, j]
              for i, sid in enumerate(study_ids) for j, col in enumerate(schema.LABEL_COLUMNS)}
    ids = row_ids(study_ids)
    frame = pd.DataFrame(np.stack([values[r] for r in ids]) if ids else np.zeros((0, 3)),
                         columns=list(schema.PROB_COLUMNS))
    frame.insert(0, "row_id", ids)
    return frame


def check(frame: pd.DataFrame, study_ids: Sequence[int], where: str = "submission") -> None:
    """Raise ValueError naming the problem unless frame is a complete, valid submission
    for exactly these studies, in submission order."""
    if list(frame.columns) != list(schema.SUBMISSION_COLUMNS):
        raise ValueError(f"{where}: columns {list(frame.columns)}, expected {list(schema.SUBMISSION_COLUMNS)}")
    want = row_ids(study_ids)
    got = frame["row_id"].astype(str).tolist()
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        detail = (f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})"
                  if missing or extra else "rows out of order")
        raise ValueError(f"{where}: row ids differ from the expected {len(want)}: {detail}")
    values = frame[list(schema.PROB_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1)
    if bad.any():
        raise ValueError(f"{where}: {bad.sum()} row(s) with NaN, non-numeric or negative probabilities, "
                         f"e.g. {np.asarray(got)[bad][:3].tolist()}")
    off = np.abs(values.sum(axis=1) - 1.0) > SUM_TOLERANCE
    if off.any():
        raise ValueError(f"{where}: {off.sum()} row(s) whose probabilities do not sum to 1, "
                         f"e.g. {np.asarray(got)[off][:3].tolist()}")


def check_against_sample(frame: pd.DataFrame, sample_path: Path) -> None:
    """The rows of studies listed in sample_submission.csv appear in the same order.

    (The public Kaggle sample lists only some test studies; the others are not compared.)
    """
    sample = pd.read_csv(sample_path, dtype={"row_id": str})
    if "row_id" not in sample.columns:
        raise ValueError(f"{sample_path}: no row_id column")
    ours = frame["row_id"].astype(str)
    listed = set(sample["row_id"])
    mine = ours[ours.isin(listed)].tolist()
    theirs = sample["row_id"][sample["row_id"].isin(set(ours))].tolist()
    if mine != theirs:
        raise ValueError(f"{sample_path}: submission rows of its studies are not in its order")
    absent = listed - set(ours)
    if absent:
        log.warning("%s: %d row ids not in the submission (studies not in %s), e.g. %s",
                    sample_path, len(absent), schema.TEST_SERIES_CSV, sorted(absent)[:2])


def write(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the CSV (full float precision, so rows keep summing to 1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def probs_of(frame: pd.DataFrame, study_ids: Sequence[int]) -> np.ndarray:
    """Inverse of build_frame: (n, 25, 3) in schema.LABEL_COLUMNS order."""
    by_id = frame.set_index(frame["row_id"].astype(str))[list(schema.PROB_COLUMNS)]
    wanted = [schema.row_id(s, c) for s in study_ids for c in schema.LABEL_COLUMNS]
    return by_id.loc[wanted].to_numpy(np.float64).reshape(len(study_ids), N_LABELS, 3)
