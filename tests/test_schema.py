"""The RSNA vocabulary: strings, order, codes and row ids as in the real files."""

import math

import pytest

from lsdc import schema


def test_label_columns_follow_train_csv_order():
    cols = schema.LABEL_COLUMNS
    assert len(cols) == 25 and len(set(cols)) == 25
    assert cols[0] == "spinal_canal_stenosis_l1_l2"
    assert cols[4] == "spinal_canal_stenosis_l5_s1"
    assert cols[5] == "left_neural_foraminal_narrowing_l1_l2"
    assert cols[24] == "right_subarticular_stenosis_l5_s1"
    assert schema.TRAIN_COLUMNS[0] == "study_id"


def test_strings_match_the_kaggle_csvs():
    assert schema.CONDITIONS[1] == "Left Neural Foraminal Narrowing"
    assert schema.LEVELS == ("L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1")
    assert set(schema.PLANE_OF_DESCRIPTION) == {"Sagittal T1", "Sagittal T2/STIR", "Axial T2"}
    assert schema.SUBMISSION_COLUMNS == ("row_id", "normal_mild", "moderate", "severe")


def test_label_properties():
    lab = schema.label_of_column("left_subarticular_stenosis_l4_l5")
    assert lab == schema.Label("Left Subarticular Stenosis", "L4/L5")
    assert lab.side == "left" and lab.family == "subarticular"
    assert schema.label_of_column("spinal_canal_stenosis_l1_l2").side is None
    with pytest.raises(ValueError, match="not an RSNA label column"):
        schema.label_of_column("spinal_canal_stenosis_l6_s2")


@pytest.mark.parametrize(
    "value,code",
    [("Normal/Mild", 0), ("Moderate", 1), ("Severe", 2), ("", -100), (None, -100), (math.nan, -100)],
)
def test_severity_codes(value, code):
    assert schema.severity_code(value) == code
    assert schema.IGNORE_INDEX == -100


def test_unknown_severity_is_an_error():
    with pytest.raises(ValueError, match="unknown severity 'Mild'"):
        schema.severity_code("Mild")


def test_row_id_round_trip_and_order():
    rid = schema.row_id(44036939, "left_neural_foraminal_narrowing_l1_l2")
    assert rid == "44036939_left_neural_foraminal_narrowing_l1_l2"
    study, label = schema.parse_row_id(rid)
    assert study == 44036939 and label.column == "left_neural_foraminal_narrowing_l1_l2"
    rows = schema.study_row_ids(7)
    assert len(rows) == 25 and rows == sorted(rows)
    assert rows[0] == "7_left_neural_foraminal_narrowing_l1_l2"
    for bad in ("abc_spinal_canal_stenosis_l1_l2", "12_spinal", "12"):
        with pytest.raises(ValueError, match="malformed row_id"):
            schema.parse_row_id(bad)
