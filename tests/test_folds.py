import numpy as np
import pandas as pd
import pytest

from lsdc import schema
from lsdc.folds import build_folds, grade_stratum, make_folds


def _labels(n, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        worst = rng.choice(3, p=[0.3, 0.4, 0.3])
        for lab in schema.LABELS:
            code = int(rng.integers(0, worst + 1))
            rows.append((1000 + s, lab.column, lab.condition, lab.level, code))
    return pd.DataFrame(rows, columns=["study_id", "column", "condition", "level", "severity_code"])


def test_folds_deterministic_grouped_and_stratified():
    labels = _labels(60)
    strata = grade_stratum(labels)
    ids = labels["study_id"].unique()
    a = make_folds(ids, strata, 3, seed=42)
    b = make_folds(ids[::-1], strata, 3, seed=42)
    pd.testing.assert_frame_equal(a, b)
    assert a["study_id"].is_unique and set(a["fold"]) == {0, 1, 2}
    assert a["fold"].value_counts().max() - a["fold"].value_counts().min() <= 1
    worst = strata.reindex(a["study_id"]).to_numpy()
    for s in np.unique(worst):  # every stratum spread over the folds
        per_fold = np.bincount(a["fold"].to_numpy()[worst == s], minlength=3)
        assert per_fold.max() - per_fold.min() <= 1
    c = make_folds(ids, strata, 3, seed=7)
    assert not np.array_equal(a["fold"].to_numpy(), c["fold"].to_numpy())


def test_stratum_ignores_missing_and_marks_ungraded():
    labels = _labels(3)
    labels.loc[labels["study_id"] == 1002, "severity_code"] = schema.IGNORE_INDEX
    s = grade_stratum(labels)
    assert s[1002] == -1 and s.index.is_unique


def test_build_folds_from_index(tmp_path):
    labels = _labels(12)
    studies = pd.DataFrame({"study_id": np.r_[labels["study_id"].unique(), [5, 6]],
                            "split": ["train"] * 12 + ["test"] * 2})
    labels.to_parquet(tmp_path / "labels.parquet")
    studies.to_parquet(tmp_path / "studies.parquet")
    folds = build_folds(tmp_path, 3, 42)
    assert len(folds) == 12 and not folds["study_id"].isin([5, 6]).any()
    with pytest.raises(FileNotFoundError, match="studies.parquet"):
        build_folds(tmp_path / "nope", 3, 42)
