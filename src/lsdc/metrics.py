"""The RSNA 2024 competition metric, the constant-prior baseline, and classification metrics.

Arrays are in schema.LABEL_COLUMNS order: labels (n, 25) hold grade codes 0/1/2 or
schema.IGNORE_INDEX, probs (n, 25, 3) hold P(Normal/Mild), P(Moderate), P(Severe).

Score (the competition's evaluation page on Kaggle): for each family (spinal: 5 columns; foraminal and
subarticular: 10 columns each, left and right pooled) the log loss over graded rows with
sample weights 1/2/4 by the true grade, normalised by the sum of weights; plus the binary
any_severe_spinal term per study (label: any spinal level Severe, prediction: the largest
spinal Severe probability, weight 4 / 2 / 1 by the worst spinal grade). Probabilities are
renormalised per row, clipped to [EPS, 1 - EPS] and renormalised again. The total is the
mean of the four terms; a term with nothing to score is NaN and left out with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from lsdc import schema

log = logging.getLogger(__name__)

EPS = 1e-15
N_LABELS = len(schema.LABEL_COLUMNS)
WEIGHTS = np.asarray(schema.SEVERITY_WEIGHTS, dtype=np.float64)
FAMILY_TERMS: tuple[str, ...] = ("spinal", "foraminal", "subarticular")
COLUMN_FAMILY = np.array([lab.family for lab in schema.LABELS])
COLUMN_CONDITION = np.array([lab.condition for lab in schema.LABELS])
SPINAL = COLUMN_FAMILY == "spinal"


@dataclass(frozen=True)
class Score:
    total: float
    spinal: float
    foraminal: float
    subarticular: float
    any_severe_spinal: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def competition_score(labels: np.ndarray, probs: np.ndarray) -> Score:
    """The competition score of probs (n, 25, 3) against labels (n, 25); lower is better."""
    labels, probs = _check_arrays(labels, probs)
    probs = normalise(probs)
    terms = {fam: _weighted_log_loss(labels[:, fam == COLUMN_FAMILY], probs[:, fam == COLUMN_FAMILY])
             for fam in FAMILY_TERMS}
    terms["any_severe_spinal"] = _any_severe_spinal(labels[:, SPINAL], probs[:, SPINAL])
    scored = [v for v in terms.values() if not np.isnan(v)]
    for name, value in terms.items():
        if np.isnan(value):
            log.warning("competition score: no scored rows for term %r; left out of the mean", name)
    total = float(np.mean(scored)) if scored else float("nan")
    return Score(total=total, **terms)


def normalise(probs: np.ndarray) -> np.ndarray:
    """Rows renormalised to sum 1, clipped to [EPS, 1 - EPS], renormalised again."""
    sums = probs.sum(axis=-1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError("probabilities: a row sums to 0; every row needs a positive probability")
    clipped = np.clip(probs / sums, EPS, 1 - EPS)
    return clipped / clipped.sum(axis=-1, keepdims=True)


def score_frames(solution: pd.DataFrame, submission: pd.DataFrame) -> Score:
    """Score a sample_submission-format frame against a train.csv-format frame."""
    study_ids, labels = labels_from_frame(solution)
    probs = probs_from_submission(submission, study_ids)
    return competition_score(labels, probs)


def labels_from_frame(solution: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """train.csv-format frame -> (study_ids (n,) int64, labels (n, 25) int16 codes)."""
    missing_cols = [c for c in schema.TRAIN_COLUMNS if c not in solution.columns]
    if missing_cols:
        raise ValueError(f"solution: missing column(s) {missing_cols}")
    study_ids = solution["study_id"].to_numpy(dtype=np.int64)
    if len(np.unique(study_ids)) != len(study_ids):
        raise ValueError("solution: duplicate study_id rows")
    labels = np.empty((len(solution), N_LABELS), dtype=np.int16)
    for j, col in enumerate(schema.LABEL_COLUMNS):
        values = solution[col].astype(object).where(solution[col].notna(), None)
        try:
            labels[:, j] = [schema.severity_code(v) for v in values.tolist()]
        except ValueError as e:
            raise ValueError(f"solution column {col}: {e}") from None
    return study_ids, labels


def probs_from_submission(submission: pd.DataFrame, study_ids: np.ndarray) -> np.ndarray:
    """sample_submission-format frame -> probs (n, 25, 3) for the given studies, validated."""
    missing_cols = [c for c in schema.SUBMISSION_COLUMNS if c not in submission.columns]
    if missing_cols:
        raise ValueError(f"submission: missing column(s) {missing_cols}")
    row_ids = submission["row_id"].astype(str)
    dups = row_ids[row_ids.duplicated()].unique()
    if len(dups):
        raise ValueError(f"submission: {len(dups)} duplicate row_id(s), e.g. {list(dups[:3])}")
    prob_frame = submission[list(schema.PROB_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    values = prob_frame.to_numpy(np.float64)
    bad = np.isnan(values).any(axis=1)
    if bad.any():
        raise ValueError(f"submission: {bad.sum()} row(s) with NaN or non-numeric probabilities, "
                         f"e.g. {row_ids[bad].tolist()[:3]}")
    neg = (values < 0).any(axis=1)
    if neg.any():
        raise ValueError(f"submission: {neg.sum()} row(s) with negative probabilities, "
                         f"e.g. {row_ids[neg].tolist()[:3]}")
    wanted = [f"{int(s)}_{c}" for s in study_ids for c in schema.LABEL_COLUMNS]
    position = pd.Series(np.arange(len(row_ids)), index=row_ids.to_numpy())
    found = position.reindex(wanted)
    if found.isna().any():
        absent = [w for w, f in zip(wanted, found.isna()) if f]
        raise ValueError(f"submission: {len(absent)} row_id(s) of solution studies missing, "
                         f"e.g. {absent[:3]}")
    extra = len(row_ids) - len(wanted)
    if extra:
        log.info("submission: %d row(s) for studies not in the solution ignored", extra)
    return values[found.to_numpy(dtype=np.int64)].reshape(len(study_ids), N_LABELS, 3)


def best_constant_prior(train_labels: np.ndarray, pseudocount: float = 0.0) -> np.ndarray:
    """(25, 3) per column p proportional to weight x (count + pseudocount): the constant that
    minimises each column's weighted log loss on train_labels. A pseudocount > 0 keeps grades
    unseen in a small training set from getting probability 0 (clipped to EPS when scored)."""
    labels = np.asarray(train_labels)
    if labels.ndim != 2 or labels.shape[1] != N_LABELS:
        raise ValueError(f"train_labels must have shape (n, {N_LABELS}), got {labels.shape}")
    counts = np.stack([(labels == k).sum(axis=0) for k in range(3)], axis=1).astype(np.float64)
    mass = WEIGHTS * (counts + pseudocount)
    sums = mass.sum(axis=1, keepdims=True)
    empty = sums[:, 0] == 0
    if empty.any():
        log.warning("best_constant_prior: no graded labels in column(s) %s; using uniform",
                    [schema.LABEL_COLUMNS[j] for j in np.flatnonzero(empty)])
        mass[empty], sums[empty] = 1.0, 3.0
    return mass / sums


def prior_probs(prior: np.ndarray, n: int) -> np.ndarray:
    """(n, 25, 3): the same (25, 3) prior for every study."""
    return np.broadcast_to(np.asarray(prior, dtype=np.float64), (n, N_LABELS, 3)).copy()


def classification_report(labels: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy, macro precision/recall/F1 and one-vs-rest AUC (macro over the grades where
    both classes occur, plus each grade's own) per family, per condition and overall.
    Missing labels are excluded; the predicted grade is the most probable one."""
    labels, probs = _check_arrays(labels, probs)
    probs = normalise(probs)
    groups: dict[str, np.ndarray] = {fam: fam == COLUMN_FAMILY for fam in FAMILY_TERMS}
    for cond, cslug in zip(schema.CONDITIONS, schema.CONDITION_SLUGS):
        groups[cslug] = cond == COLUMN_CONDITION
    groups["overall"] = np.ones(N_LABELS, dtype=bool)
    return {name: _report(labels[:, cols], probs[:, cols]) for name, cols in groups.items()}


def _report(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    keep = labels != schema.IGNORE_INDEX
    y, p = labels[keep].astype(np.int64), probs[keep]
    out: dict[str, float] = {"n": float(y.size)}
    if y.size == 0:
        names = ["accuracy", "precision_macro", "recall_macro", "f1_macro", "auc_macro"]
        return out | dict.fromkeys(names + [f"auc_{c}" for c in schema.PROB_COLUMNS], float("nan"))
    pred = p.argmax(axis=1)
    prec, rec, f1, _ = precision_recall_fscore_support(
        y, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    out.update(accuracy=float((pred == y).mean()), precision_macro=float(prec),
               recall_macro=float(rec), f1_macro=float(f1))
    aucs = []
    for k, name in enumerate(schema.PROB_COLUMNS):
        positive = y == k
        auc = float(roc_auc_score(positive, p[:, k])) if 0 < positive.sum() < y.size else float("nan")
        out[f"auc_{name}"] = auc
        if not np.isnan(auc):
            aucs.append(auc)
    out["auc_macro"] = float(np.mean(aucs)) if aucs else float("nan")
    return out


def _check_arrays(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[1] != N_LABELS:
        raise ValueError(f"labels must have shape (n, {N_LABELS}), got {labels.shape}")
    if probs.shape != (*labels.shape, 3):
        raise ValueError(f"probs must have shape {(*labels.shape, 3)}, got {probs.shape}")
    valid = np.isin(labels, (0, 1, 2, schema.IGNORE_INDEX))
    if not valid.all():
        raise ValueError(f"labels: codes must be 0, 1, 2 or {schema.IGNORE_INDEX}; "
                         f"found {sorted(set(labels[~valid].tolist()))[:5]}")
    if np.isnan(probs).any():
        raise ValueError("probs: contains NaN")
    if (probs < 0).any():
        raise ValueError("probs: contains negative values")
    return labels.astype(np.int64), probs


def _weighted_log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    keep = labels != schema.IGNORE_INDEX
    if not keep.any():
        return float("nan")
    y = labels[keep]
    p_true = probs[keep][np.arange(y.size), y]
    w = WEIGHTS[y]
    return float(np.sum(w * -np.log(p_true)) / np.sum(w))


def _any_severe_spinal(labels: np.ndarray, probs: np.ndarray) -> float:
    scored = (labels != schema.IGNORE_INDEX).any(axis=1)
    if not scored.any():
        return float("nan")
    worst = labels[scored].max(axis=1)  # IGNORE_INDEX < 0, so the max is the worst graded level
    y = worst == 2
    w = WEIGHTS[worst]
    p = np.clip(probs[scored][:, :, 2].max(axis=1), EPS, 1 - EPS)
    loss = -(y * np.log(p) + (~y) * np.log(1 - p))
    return float(np.sum(w * loss) / np.sum(w))


BOOTSTRAP_SAMPLES = 1000  # resamples of the studies for the skill's interval
BOOTSTRAP_SEED = 20240  # fixed: the same predictions always give the same interval


def normalised_skill(labels: np.ndarray, model: np.ndarray, prior: np.ndarray, oracle: np.ndarray) -> float:
    """(prior score - model score) / (prior score - oracle score): 0 = the constant prior, 1 = the oracle."""
    base = competition_score(labels, prior).total
    gap = base - competition_score(labels, oracle).total
    return float((base - competition_score(labels, model).total) / gap) if gap else float("nan")


def bootstrap_skill(labels: np.ndarray, model: np.ndarray, prior: np.ndarray, oracle: np.ndarray,
                    n_boot: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> dict[str, float]:
    """The normalised skill with a percentile bootstrap 95 % interval over studies.

    Each resample draws n studies with replacement (fixed seed) and recomputes the three
    scores on them, so the interval carries the test set's sampling noise: {skill, low,
    high, se (std of the resampled skills), n_boot}.
    """
    labels = np.asarray(labels)
    n = len(labels)
    skill = normalised_skill(labels, model, prior, oracle)
    rng = np.random.default_rng(seed)
    draws = []
    quiet = logging.getLogger(__name__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a resample without e.g. any spinal grade warns per resample
    try:
        for _ in range(n_boot):
            i = rng.integers(0, n, n)
            draws.append(normalised_skill(labels[i], model[i], prior[i], oracle[i]))
    finally:
        quiet.setLevel(level)
    arr = np.asarray(draws, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return {"skill": skill, "low": float("nan"), "high": float("nan"), "se": float("nan"), "n_boot": n_boot}
    low, high = np.percentile(arr, [2.5, 97.5])
    return {"skill": skill, "low": float(low), "high": float(high), "se": float(arr.std(ddof=1)), "n_boot": n_boot}
