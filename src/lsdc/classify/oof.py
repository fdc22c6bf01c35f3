"""The out-of-fold table, data/processed/oof.parquet: one home for its format.

`train_classifier` writes it, `evaluate` reads it. Columns: study_id, fold, then for
each of the 25 label columns (schema.LABEL_COLUMNS order) three probabilities
`<label>__normal_mild`, `<label>__moderate`, `<label>__severe` (docs/data_formats.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lsdc import paths, schema

OOF_FILE = paths.OOF_FILE
KEY_COLUMNS: tuple[str, ...] = ("study_id", "fold")
PROB_COLUMNS: tuple[str, ...] = tuple(f"{c}__{p}" for c in schema.LABEL_COLUMNS for p in schema.PROB_COLUMNS)
COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *PROB_COLUMNS)


def to_frame(study_ids: np.ndarray, folds: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """(n,) ids, (n,) folds, (n, 25, 3) probabilities -> the OOF table."""
    frame = pd.DataFrame(probs.reshape(len(study_ids), -1), columns=list(PROB_COLUMNS))
    frame.insert(0, "fold", np.asarray(folds, dtype=np.int64))
    frame.insert(0, "study_id", np.asarray(study_ids, dtype=np.int64))
    return frame


def probs_of(frame: pd.DataFrame, where: str = "OOF table") -> np.ndarray:
    """Inverse of to_frame: (n, 25, 3); a ValueError names `where` and missing columns."""
    missing = [c for c in PROB_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing probability column(s), e.g. {missing[:3]}")
    return frame[list(PROB_COLUMNS)].to_numpy(np.float64).reshape(len(frame), len(schema.LABEL_COLUMNS), 3)


def write(path: Path, study_ids: np.ndarray, folds: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """Write the OOF table to `path`; returns it."""
    frame = to_frame(study_ids, folds, probs)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return frame


def read(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(OOF table, probabilities (n, 25, 3)); errors name the file: missing file or column,
    or a study without finite probabilities (a fold that never validated it)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: OOF predictions not found (run train_classifier first)")
    frame = pd.read_parquet(path)
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    probs = probs_of(frame, where=str(path))
    bad = ~np.isfinite(probs).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{path}: {bad.sum()} studies without finite probabilities, "
                         f"e.g. {frame['study_id'][bad].tolist()[:3]}")
    return frame, probs
