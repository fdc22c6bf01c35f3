"""Facts about the real RSNA 2024 training labels that the synthetic label model reproduces.

Source: the public training data of the RSNA 2024 Lumbar Spine Degenerative Classification
competition on Kaggle (https://www.kaggle.com/competitions/rsna-2024-lumbar-spine-degenerative-classification):
counts over the 1975 studies of train.csv (grades and missing cells per column, study-level
shares) and train_label_coordinates.csv, tabulated once and kept here as constants.
Everything is indexed by position (schema.LABEL_COLUMNS order, schema.CONDITIONS and
schema.LEVELS indices) so that no RSNA string is written here.
"""

from __future__ import annotations

REAL_STUDIES = 1975

# Per label column, in schema.LABEL_COLUMNS order: (Normal/Mild, Moderate, Severe, missing).
COLUMN_COUNTS: tuple[tuple[int, int, int, int], ...] = (
    (1886, 67, 21, 1),  # spinal canal stenosis L1/L2
    (1770, 151, 53, 1),  # spinal L2/L3
    (1622, 230, 122, 1),  # spinal L3/L4
    (1482, 237, 255, 1),  # spinal L4/L5
    (1904, 51, 19, 1),  # spinal L5/S1
    (1908, 63, 2, 2),  # left neural foraminal narrowing L1/L2
    (1791, 171, 11, 2),  # left foraminal L2/L3
    (1522, 411, 40, 2),  # left foraminal L3/L4
    (1204, 629, 140, 2),  # left foraminal L4/L5
    (1247, 520, 206, 2),  # left foraminal L5/S1
    (1891, 63, 13, 8),  # right neural foraminal narrowing L1/L2
    (1793, 168, 6, 8),  # right foraminal L2/L3
    (1512, 414, 41, 8),  # right foraminal L3/L4
    (1208, 629, 130, 8),  # right foraminal L4/L5
    (1281, 496, 190, 8),  # right foraminal L5/S1
    (1690, 93, 28, 164),  # left subarticular stenosis L1/L2
    (1555, 255, 83, 82),  # left subarticular L2/L3
    (1324, 454, 194, 3),  # left subarticular L3/L4
    (887, 624, 461, 3),  # left subarticular L4/L5
    (1408, 409, 147, 11),  # left subarticular L5/S1
    (1680, 110, 24, 161),  # right subarticular stenosis L1/L2
    (1577, 243, 73, 82),  # right subarticular L2/L3
    (1322, 454, 197, 2),  # right subarticular L3/L4
    (891, 622, 460, 2),  # right subarticular L4/L5
    (1399, 396, 173, 7),  # right subarticular L5/S1
)

# Study-level shares of the real training labels.
ANY_SEVERE_SHARE = 980 / REAL_STUDIES
ANY_MODERATE_SHARE = 1693 / REAL_STUDIES
ANY_SEVERE_SPINAL_SHARE = 365 / REAL_STUDIES
# Same grade left and right at the same level, pooled over (study, level) pairs with both graded.
LEFT_RIGHT_AGREEMENT = {"foraminal": 0.7598, "subarticular": 0.7387}

# Blocks of missing grades: (studies in the real data, condition indices, level indices).
# Reconstructed from the per-column missing counts: whole conditions missing in a few studies,
# axial coverage stopping below L1/L2 (or L2/L3) in about 8 % of studies, or above L5/S1 in a few.
# Per-column remainders are drawn as single missing cells (see labels.draw_missing).
MISSING_BLOCKS: tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...] = (
    (1, (0,), (0, 1, 2, 3, 4)),  # no spinal grades
    (2, (1,), (0, 1, 2, 3, 4)),  # no left foraminal grades
    (8, (2,), (0, 1, 2, 3, 4)),  # no right foraminal grades
    (2, (3,), (0, 1, 2, 3, 4)),  # no left subarticular grades
    (2, (4,), (0, 1, 2, 3, 4)),  # no right subarticular grades
    (79, (3, 4), (0,)),  # subarticular L1/L2 missing both sides
    (80, (3, 4), (0, 1)),  # subarticular L1/L2 and L2/L3 missing both sides
    (5, (3, 4), (4,)),  # subarticular L5/S1 missing both sides
)

# Coordinates (train_label_coordinates.csv rows).
COORD_ROWS = 48692
STUDIES_WITHOUT_COORDS = 1  # studies with no coordinate row at all
GRADED_WITHOUT_COORD = 146  # graded labels without a coordinate row (incl. the study without any)
UNGRADED_WITH_COORD = 35  # coordinate rows whose label has no grade
MISPLACED_CLICKS = 13  # coordinate rows near (5, 5)
STUDIES_WITH_FEWER_COORDS = 185  # studies with fewer than 25 coordinate rows

# Spine shape from the five Sagittal T2/STIR canal points of the 1,898 real series that have
# all five (pixel spacing: a 300 mm field of view over each series' image size), as
# percentile -> value (lsdc.synth.shape computes the same figures).
SPINE_SHAPE: dict[str, dict[float, float]] = {
    "gap_mm": {1: 20.7, 5: 24.6, 50: 33.4, 95: 41.5, 99: 45.0},  # neighbouring canal points
    "deviation_mm": {50: 6.0, 90: 9.4, 99: 15.8},  # largest distance from the points' straight line
    "bend_deg": {5: 9.8, 50: 28.0, 95: 51.2},  # L1/L2->L2/L3 vs L4/L5->L5/S1 direction
}
