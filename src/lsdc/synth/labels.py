"""Synthetic label model: latent severities, reader grades, the Bayes oracle, and the gaps.

Every (study, label) has a latent continuous severity z, marginally N(0, 1) per column and
correlated within a study (a study factor, an AR(1) factor along the levels shared by all
conditions at a level, a factor shared by left and right of one condition family at a level,
and a label's own part). The images show z through ``narrowing``; a reader grades
z + N(0, reader_noise) against per-column thresholds calibrated in closed form so that the
grade shares equal the real per-column shares. ``oracle_probs`` is therefore exactly
P(grade | z). Missing grades, missing coordinates and misplaced clicks follow the real
rates (lsdc.synth.targets) scaled to the number of studies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from lsdc import schema
from lsdc.synth import targets

log = logging.getLogger(__name__)

N_LABELS = len(schema.LABEL_COLUMNS)
N_LEVELS = len(schema.LEVELS)
FAMILIES: tuple[str, ...] = ("spinal", "foraminal", "subarticular")
# Family index of each of the 25 columns, and its condition / level index.
COLUMN_FAMILY = np.array([FAMILIES.index(lab.family) for lab in schema.LABELS])
COLUMN_CONDITION = np.array([schema.CONDITIONS.index(lab.condition) for lab in schema.LABELS])
COLUMN_LEVEL = np.array([schema.LEVELS.index(lab.level) for lab in schema.LABELS])

# Variance shares of the latent per family: (study, level, left-right pair, own); rows sum to 1.
# Calibrated by simulation against the real study-level shares and left/right agreement
# (see tests/test_synth_labels.py for the checked figures).
VARIANCE_SHARES = {
    "spinal": (0.40, 0.20, 0.00, 0.40),
    "foraminal": (0.40, 0.20, 0.00, 0.40),
    "subarticular": (0.40, 0.20, 0.20, 0.20),
}
LEVEL_CORRELATION = 0.6  # AR(1) correlation of the level factor between neighbouring levels

# narrowing values at which a label crosses the Moderate and the Severe boundary (every column).
MODERATE_NARROWING = 0.4
SEVERE_NARROWING = 0.7


@dataclass(frozen=True)
class LabelDraw:
    """Arrays over n studies x 25 labels in schema.LABEL_COLUMNS order."""

    latent: np.ndarray  # (n, 25) float64 latent continuous severity (what the images show)
    narrowing: np.ndarray  # (n, 25) float64 in [0, 1], monotone in latent; 0 healthy, 1 maximal
    grades: np.ndarray  # (n, 25) int16 0/1/2, schema.IGNORE_INDEX where the reader left it missing
    has_coord: np.ndarray  # (n, 25) bool: write a train_label_coordinates.csv row for this label
    misplaced: np.ndarray  # (n, 25) bool: that coordinate row is a misplaced click near (5, 5)


def grade_shares() -> np.ndarray:
    """(25, 3) real share of Normal/Mild, Moderate, Severe among graded labels, per column."""
    counts = np.array(targets.COLUMN_COUNTS, dtype=np.float64)[:, :3]
    return counts / counts.sum(axis=1, keepdims=True)


def thresholds(reader_noise: float) -> np.ndarray:
    """(25, 2) cut points on latent + reader noise: grade = number of cut points below it.

    latent + noise ~ N(0, 1 + reader_noise^2), so the cut points are the target quantiles of
    that normal and the expected grade shares equal grade_shares() exactly.
    """
    _check_noise(reader_noise)
    cumulative = np.cumsum(grade_shares(), axis=1)[:, :2]
    return np.sqrt(1.0 + reader_noise**2) * ndtri(cumulative)


def draw_latent(rng: np.random.Generator, n_studies: int) -> np.ndarray:
    """(n, 25) latent severities, each column N(0, 1), correlated within a study."""
    n = n_studies
    study = rng.standard_normal(n)
    level = np.empty((n, N_LEVELS))
    level[:, 0] = rng.standard_normal(n)
    innovation = np.sqrt(1.0 - LEVEL_CORRELATION**2)
    for lv in range(1, N_LEVELS):
        level[:, lv] = LEVEL_CORRELATION * level[:, lv - 1] + innovation * rng.standard_normal(n)
    pair = rng.standard_normal((n, len(FAMILIES), N_LEVELS))
    own = rng.standard_normal((n, N_LABELS))
    shares = np.sqrt(np.array([VARIANCE_SHARES[f] for f in FAMILIES]))[COLUMN_FAMILY]  # (25, 4)
    return (
        shares[:, 0] * study[:, None]
        + shares[:, 1] * level[:, COLUMN_LEVEL]
        + shares[:, 2] * pair[:, COLUMN_FAMILY, COLUMN_LEVEL]
        + shares[:, 3] * own
    )


def narrowing_of(latent: np.ndarray, reader_noise: float) -> np.ndarray:
    """Monotone map latent -> [0, 1] (a normal CDF per column) anchored so that the Moderate
    cut point maps to MODERATE_NARROWING and the Severe cut point to SEVERE_NARROWING."""
    cuts = thresholds(reader_noise)
    z_mod, z_sev = ndtri(MODERATE_NARROWING), ndtri(SEVERE_NARROWING)
    scale = (cuts[:, 1] - cuts[:, 0]) / (z_sev - z_mod)
    centre = cuts[:, 0] - scale * z_mod
    return ndtr((np.asarray(latent, dtype=np.float64) - centre) / scale)


def grade(rng: np.random.Generator, latent: np.ndarray, reader_noise: float) -> np.ndarray:
    """(n, 25) int16 grades 0/1/2: cut points applied to latent + N(0, reader_noise)."""
    cuts = thresholds(reader_noise)
    seen = latent + reader_noise * rng.standard_normal(latent.shape)
    return ((seen > cuts[:, 0]).astype(np.int16) + (seen > cuts[:, 1])).astype(np.int16)


def oracle_probs(latent: np.ndarray, reader_noise: float) -> np.ndarray:
    """(n, 25, 3) exact P(grade = k | latent) under the reader-noise model; rows sum to 1."""
    latent = np.asarray(latent, dtype=np.float64)
    if latent.ndim != 2 or latent.shape[1] != N_LABELS:
        raise ValueError(f"latent must have shape (n, {N_LABELS}), got {latent.shape}")
    cuts = thresholds(reader_noise)
    if reader_noise == 0:
        below = (latent[..., None] <= cuts).astype(np.float64)
    else:
        below = ndtr((cuts - latent[..., None]) / reader_noise)  # P(grade <= k), k = 0, 1
    probs = np.empty((*latent.shape, 3))
    probs[..., 0] = below[..., 0]
    probs[..., 1] = below[..., 1] - below[..., 0]
    probs[..., 2] = 1.0 - below[..., 1]
    return np.clip(probs, 0.0, 1.0)


def draw_missing(rng: np.random.Generator, n_studies: int) -> np.ndarray:
    """(n, 25) bool: grade left missing. Real missing blocks and per-column rates, scaled to n."""
    n = n_studies
    missing = np.zeros((n, N_LABELS), dtype=bool)
    order = rng.permutation(n)  # disjoint groups of studies, one per block
    start = 0
    block_cells = np.zeros(N_LABELS)  # real missing cells per column explained by the blocks
    for real_count, conditions, levels in targets.MISSING_BLOCKS:
        in_block = np.isin(COLUMN_CONDITION, conditions) & np.isin(COLUMN_LEVEL, levels)
        block_cells += real_count * in_block
        k = min(_scaled_count(rng, real_count / targets.REAL_STUDIES * n), n - start)
        missing[np.ix_(order[start : start + k], np.flatnonzero(in_block))] = True
        start += k
    real_missing = np.array(targets.COLUMN_COUNTS)[:, 3]
    for col in range(N_LABELS):
        rest = max(0.0, real_missing[col] - block_cells[col]) / targets.REAL_STUDIES * n
        _mark_some(rng, missing[:, col], ~missing[:, col], _scaled_count(rng, rest))
    return missing


def draw_coords(rng: np.random.Generator, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(has_coord, misplaced), both (n, 25) bool, from the missing-grade mask.

    Graded labels get a coordinate except a few (placed in studies that already miss grades, so
    that studies with fewer than 25 rows stay about as rare as in the real data); a few missing
    grades still get one; a whole study rarely has none; a few clicks are misplaced.
    """
    n = missing.shape[0]
    graded = ~missing
    has_coord = graded.copy()
    ungraded_rate = targets.UNGRADED_WITH_COORD / _real_missing_cells()
    n_ungraded = _scaled_count(rng, ungraded_rate * missing.sum())
    _mark_some(rng, has_coord.ravel(), missing.ravel(), n_ungraded)
    scattered = targets.GRADED_WITHOUT_COORD - targets.STUDIES_WITHOUT_COORDS * N_LABELS
    scattered_rate = scattered / (targets.REAL_STUDIES * N_LABELS - _real_missing_cells())
    in_gappy = graded & missing.any(axis=1, keepdims=True)
    pool = in_gappy if in_gappy.any() else graded
    drop = np.zeros_like(has_coord)
    _mark_some(rng, drop.ravel(), pool.ravel(), _scaled_count(rng, scattered_rate * graded.sum()))
    has_coord &= ~drop
    no_coords = np.zeros(n, dtype=bool)
    _mark_some(rng, no_coords, np.ones(n, dtype=bool),
               _scaled_count(rng, targets.STUDIES_WITHOUT_COORDS / targets.REAL_STUDIES * n))
    has_coord[no_coords] = False
    misplaced = np.zeros_like(has_coord)
    misplaced_rate = targets.MISPLACED_CLICKS / targets.COORD_ROWS
    n_misplaced = _scaled_count(rng, misplaced_rate * has_coord.sum())
    _mark_some(rng, misplaced.ravel(), has_coord.ravel(), n_misplaced)
    return has_coord, misplaced


def draw_labels(rng: np.random.Generator, n_studies: int, reader_noise: float) -> LabelDraw:
    """Everything the generator needs to know about the labels of n studies."""
    _check_noise(reader_noise)
    if n_studies < 0:
        raise ValueError(f"n_studies must be >= 0, got {n_studies}")
    latent = draw_latent(rng, n_studies)
    grades = grade(rng, latent, reader_noise)
    missing = draw_missing(rng, n_studies)
    grades[missing] = schema.IGNORE_INDEX
    has_coord, misplaced = draw_coords(rng, missing)
    log.debug("drew labels for %d studies: %d missing grades, %d coordinate rows, %d misplaced",
              n_studies, missing.sum(), has_coord.sum(), misplaced.sum())
    return LabelDraw(latent, narrowing_of(latent, reader_noise), grades, has_coord, misplaced)


def study_shares(grades: np.ndarray) -> dict[str, float]:
    """Study-level statistics of a grade array, comparable with the targets module."""
    g = np.asarray(grades)
    spinal = COLUMN_FAMILY == 0
    out = {
        "any_severe": float((g == 2).any(axis=1).mean()),
        "any_moderate": float((g == 1).any(axis=1).mean()),
        "any_severe_spinal": float((g[:, spinal] == 2).any(axis=1).mean()),
    }
    for family, (left, right) in (("foraminal", (1, 2)), ("subarticular", (3, 4))):
        a, b = g[:, left == COLUMN_CONDITION], g[:, right == COLUMN_CONDITION]
        both = (a != schema.IGNORE_INDEX) & (b != schema.IGNORE_INDEX)
        agree = float((a == b)[both].mean()) if both.any() else float("nan")
        out[f"left_right_agreement_{family}"] = agree
    return out


def _check_noise(reader_noise: float) -> None:
    if not np.isfinite(reader_noise) or reader_noise < 0:
        raise ValueError(f"reader_noise must be a finite number >= 0, got {reader_noise!r}")


def _real_missing_cells() -> int:
    return int(sum(c[3] for c in targets.COLUMN_COUNTS))


def _scaled_count(rng: np.random.Generator, expected: float) -> int:
    """A real count scaled to n studies, rounded stochastically (unbiased, deterministic from rng)."""
    whole = int(np.floor(expected))
    return whole + int(rng.random() < expected - whole)


def _mark_some(rng: np.random.Generator, mask: np.ndarray, allowed: np.ndarray, k: int) -> None:
    """Set k randomly chosen allowed entries of a flat bool view to True (in place)."""
    candidates = np.flatnonzero(allowed)
    k = min(k, candidates.size)
    if k > 0:
        mask[rng.choice(candidates, size=k, replace=False)] = True
