"""The RSNA 2024 LSDC vocabulary: the one place that knows the dataset's strings.

Every other module takes conditions, levels, series descriptions, plane names,
label columns, severity codes and row ids from here.
"""

from __future__ import annotations

from typing import NamedTuple

# Conditions as written in train_label_coordinates.csv, in train.csv column order.
CONDITIONS: tuple[str, ...] = (
    "Spinal Canal Stenosis",
    "Left Neural Foraminal Narrowing",
    "Right Neural Foraminal Narrowing",
    "Left Subarticular Stenosis",
    "Right Subarticular Stenosis",
)
LEVELS: tuple[str, ...] = ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")

# Severities as written in train.csv, and their class indices for models.
SEVERITIES: tuple[str, ...] = ("Normal/Mild", "Moderate", "Severe")
SEVERITY_CODE: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
IGNORE_INDEX = -100  # code of a missing label: ignored by the loss and the metric
SEVERITY_WEIGHTS: tuple[float, float, float] = (1.0, 2.0, 4.0)
PROB_COLUMNS: tuple[str, ...] = ("normal_mild", "moderate", "severe")

# Series descriptions as written in *_series_descriptions.csv, and short plane names.
PLANE_OF_DESCRIPTION: dict[str, str] = {
    "Sagittal T1": "sag_t1",
    "Sagittal T2/STIR": "sag_t2",
    "Axial T2": "ax_t2",
}
PLANES: tuple[str, ...] = tuple(PLANE_OF_DESCRIPTION.values())
DESCRIPTION_OF_PLANE: dict[str, str] = {p: d for d, p in PLANE_OF_DESCRIPTION.items()}

# The plane on which readers annotate each condition (train_label_coordinates.csv: canal on Sag T2/STIR,
# foramina on Sag T1, subarticular zones on Axial T2).
PLANE_OF_CONDITION: dict[str, str] = {
    "Spinal Canal Stenosis": "sag_t2",
    "Left Neural Foraminal Narrowing": "sag_t1",
    "Right Neural Foraminal Narrowing": "sag_t1",
    "Left Subarticular Stenosis": "ax_t2",
    "Right Subarticular Stenosis": "ax_t2",
}

# CSV file names and columns of the Kaggle download.
TRAIN_CSV = "train.csv"
COORDS_CSV = "train_label_coordinates.csv"
TRAIN_SERIES_CSV = "train_series_descriptions.csv"
TEST_SERIES_CSV = "test_series_descriptions.csv"
SAMPLE_SUBMISSION_CSV = "sample_submission.csv"
TEST_LABELS_CSV = "test_labels.csv"  # synthetic data only: train.csv schema for test studies
TEST_ORACLE_CSV = "test_oracle.csv"  # synthetic data only: submission format
TRAIN_ORACLE_CSV = "train_oracle.csv"  # synthetic data only: the Bayes oracle of the train studies (out-of-fold skill)
TRAIN_IMAGES = "train_images"
TEST_IMAGES = "test_images"
COORDS_COLUMNS: tuple[str, ...] = (
    "study_id", "series_id", "instance_number", "condition", "level", "x", "y",
)
SERIES_COLUMNS: tuple[str, ...] = ("study_id", "series_id", "series_description")
SUBMISSION_COLUMNS: tuple[str, ...] = ("row_id", *PROB_COLUMNS)


def slug(text: str) -> str:
    """'Left Neural Foraminal Narrowing' -> 'left_neural_foraminal_narrowing', 'L1/L2' -> 'l1_l2'."""
    return text.lower().replace("/", "_").replace(" ", "_")


CONDITION_SLUGS: tuple[str, ...] = tuple(slug(c) for c in CONDITIONS)
LEVEL_SLUGS: tuple[str, ...] = tuple(slug(lv) for lv in LEVELS)
CONDITION_OF_SLUG: dict[str, str] = dict(zip(CONDITION_SLUGS, CONDITIONS))
LEVEL_OF_SLUG: dict[str, str] = dict(zip(LEVEL_SLUGS, LEVELS))


class Label(NamedTuple):
    """One of the 25 graded labels of a study."""

    condition: str  # e.g. "Left Neural Foraminal Narrowing"
    level: str  # e.g. "L4/L5"

    @property
    def column(self) -> str:
        return f"{slug(self.condition)}_{slug(self.level)}"

    @property
    def side(self) -> str | None:
        """'left', 'right' or None (canal)."""
        first = self.condition.split()[0].lower()
        return first if first in ("left", "right") else None

    @property
    def family(self) -> str:
        """Scoring family: 'spinal', 'foraminal' or 'subarticular'."""
        return CONDITION_FAMILY[self.condition]


CONDITION_FAMILY: dict[str, str] = {
    "Spinal Canal Stenosis": "spinal",
    "Left Neural Foraminal Narrowing": "foraminal",
    "Right Neural Foraminal Narrowing": "foraminal",
    "Left Subarticular Stenosis": "subarticular",
    "Right Subarticular Stenosis": "subarticular",
}

# The 25 labels in train.csv column order (condition-major, level-minor).
LABELS: tuple[Label, ...] = tuple(Label(c, lv) for c in CONDITIONS for lv in LEVELS)
LABEL_COLUMNS: tuple[str, ...] = tuple(lab.column for lab in LABELS)
TRAIN_COLUMNS: tuple[str, ...] = ("study_id", *LABEL_COLUMNS)
LABEL_INDEX: dict[str, int] = {c: i for i, c in enumerate(LABEL_COLUMNS)}


def label_of_column(column: str) -> Label:
    """Inverse of Label.column; raises ValueError for an unknown column."""
    try:
        return LABELS[LABEL_INDEX[column]]
    except KeyError:
        raise ValueError(f"not an RSNA label column: {column!r}") from None


def severity_code(value: object) -> int:
    """'Normal/Mild'/'Moderate'/'Severe' -> 0/1/2; empty or NaN -> IGNORE_INDEX."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return IGNORE_INDEX
    try:
        return SEVERITY_CODE[str(value)]
    except KeyError:
        raise ValueError(f"unknown severity {value!r}; expected one of {SEVERITIES}") from None


def row_id(study_id: int | str, column: str) -> str:
    """Submission row id, e.g. '44036939_left_neural_foraminal_narrowing_l1_l2'."""
    label_of_column(column)
    return f"{int(study_id)}_{column}"


def parse_row_id(rid: str) -> tuple[int, Label]:
    """'44036939_spinal_canal_stenosis_l1_l2' -> (44036939, Label(...)); ValueError if malformed."""
    head, sep, column = rid.partition("_")
    if not sep or not head.isdigit():
        raise ValueError(f"malformed row_id {rid!r}: expected '<study_id>_<label column>'")
    try:
        return int(head), label_of_column(column)
    except ValueError:
        raise ValueError(f"malformed row_id {rid!r}: unknown label column {column!r}") from None


def study_row_ids(study_id: int | str) -> list[str]:
    """The 25 row ids of one study, sorted as in sample_submission.csv."""
    return sorted(row_id(study_id, c) for c in LABEL_COLUMNS)
