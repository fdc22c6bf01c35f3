"""The competition metric on hand-computed cases, its input checks, and the constant prior."""

import logging
import math

import numpy as np
import pandas as pd
import pytest

from lsdc import metrics, schema

IGN = schema.IGNORE_INDEX
SPINAL = slice(0, 5)
FORAMINAL = slice(5, 15)
SUBARTICULAR = slice(15, 25)


def _constant_probs(n: int, row=(0.7, 0.2, 0.1)) -> np.ndarray:
    return np.tile(np.asarray(row, dtype=float), (n, 25, 1))


def test_single_study_every_term_by_hand():
    labels = np.zeros((1, 25), dtype=int)
    labels[0, SPINAL] = [0, 1, 2, 0, IGN]  # missing L5/S1 not scored
    labels[0, FORAMINAL] = [0, 0, 0, 1, 2, 0, 0, 0, 0, 1]
    probs = _constant_probs(1)
    score = metrics.competition_score(labels, probs)

    l0, l1, l2 = -math.log(0.7), -math.log(0.2), -math.log(0.1)
    spinal = (1 * l0 + 2 * l1 + 4 * l2 + 1 * l0) / (1 + 2 + 4 + 1)
    foraminal = (7 * l0 + 2 * 2 * l1 + 4 * l2) / (7 + 2 * 2 + 4)
    subarticular = l0
    any_severe = l2  # one study, label Severe, prediction max severe = 0.1
    assert score.spinal == pytest.approx(spinal, rel=1e-12)
    assert score.foraminal == pytest.approx(foraminal, rel=1e-12)
    assert score.subarticular == pytest.approx(subarticular, rel=1e-12)
    assert score.any_severe_spinal == pytest.approx(any_severe, rel=1e-12)
    assert score.total == pytest.approx((spinal + foraminal + subarticular + any_severe) / 4, rel=1e-12)


def test_any_severe_weights_4_2_1_and_max_over_levels():
    labels = np.zeros((3, 25), dtype=int)
    labels[0, 2] = 1  # worst spinal Moderate -> weight 2, label 0
    labels[2, 3] = 2  # a Severe level -> weight 4, label 1; study 1 all Normal -> weight 1
    labels[2, 0] = IGN
    probs = _constant_probs(3, (0.8, 0.1, 0.1))
    probs[0, 4] = [0.5, 0.2, 0.3]  # max severe of study 0 is 0.3 (an unrelated level)
    probs[2, 0] = [0.2, 0.2, 0.6]  # unlabelled level still counts in the max -> 0.6
    got = metrics.competition_score(labels, probs).any_severe_spinal
    want = (2 * -math.log(1 - 0.3) + 1 * -math.log(1 - 0.1) + 4 * -math.log(0.6)) / (2 + 1 + 4)
    assert got == pytest.approx(want, rel=1e-12)


def test_study_without_spinal_labels_not_in_any_severe():
    labels = np.zeros((2, 25), dtype=int)
    labels[1, SPINAL] = IGN
    probs = _constant_probs(2, (0.8, 0.1, 0.1))
    probs[1, SPINAL] = [0.0, 0.0, 1.0]
    assert metrics.competition_score(labels, probs).any_severe_spinal == pytest.approx(-math.log(0.9), rel=1e-12)


def test_unnormalised_rows_are_renormalised():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(4, 25))
    probs = rng.random((4, 25, 3)) + 0.01
    scaled = probs * rng.uniform(0.1, 10, size=(4, 25, 1))
    a = metrics.competition_score(labels, probs / probs.sum(-1, keepdims=True))
    b = metrics.competition_score(labels, scaled)
    assert b.total == pytest.approx(a.total, rel=1e-12)
    # (2, 1, 1) is read as (0.5, 0.25, 0.25)
    two = metrics.competition_score(np.zeros((1, 25), int), _constant_probs(1, (2.0, 1.0, 1.0)))
    assert two.spinal == pytest.approx(-math.log(0.5), rel=1e-12)


def test_zero_probability_is_clipped_not_infinite():
    labels = np.zeros((1, 25), dtype=int)
    score = metrics.competition_score(labels, _constant_probs(1, (0.0, 0.5, 0.5)))
    assert score.spinal == pytest.approx(-math.log(1e-15), rel=1e-6)


def test_family_without_labels_left_out_with_warning(caplog):
    labels = np.zeros((1, 25), dtype=int)
    labels[0, SUBARTICULAR] = IGN
    with caplog.at_level(logging.WARNING, logger="lsdc.metrics"):
        score = metrics.competition_score(labels, _constant_probs(1, (0.5, 0.25, 0.25)))
    assert math.isnan(score.subarticular)
    assert "subarticular" in caplog.text
    assert score.total == pytest.approx(np.mean([score.spinal, score.foraminal, score.any_severe_spinal]))


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (-0.1, "negative")])
def test_array_errors(bad, message):
    probs = _constant_probs(1)
    probs[0, 3, 1] = bad
    with pytest.raises(ValueError, match=message):
        metrics.competition_score(np.zeros((1, 25), int), probs)
    with pytest.raises(ValueError, match="codes"):
        metrics.competition_score(np.full((1, 25), 3), _constant_probs(1))
    with pytest.raises(ValueError, match="shape"):
        metrics.competition_score(np.zeros((1, 25), int), np.ones((1, 24, 3)))


def _frames(labels: np.ndarray, probs: np.ndarray, study_ids=(101, 202)):
    severity = {k: s for k, s in enumerate(schema.SEVERITIES)} | {IGN: None}
    solution = pd.DataFrame({"study_id": list(study_ids)} | {
        col: [severity[int(v)] for v in labels[:, j]] for j, col in enumerate(schema.LABEL_COLUMNS)})
    rows = [(schema.row_id(s, col), *probs[i, j]) for i, s in enumerate(study_ids)
            for j, col in enumerate(schema.LABEL_COLUMNS)]
    submission = pd.DataFrame(rows, columns=list(schema.SUBMISSION_COLUMNS))
    return solution, submission.sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_score_frames_equals_array_score():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=(2, 25))
    labels[0, 17] = IGN
    probs = rng.dirichlet([1, 1, 1], size=(2, 25))
    solution, submission = _frames(labels, probs)
    got = metrics.score_frames(solution, submission)
    want = metrics.competition_score(labels, probs)
    assert got.as_dict() == pytest.approx(want.as_dict(), rel=1e-12)


def test_score_frames_reads_csv_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=(2, 25))
    labels[1, 20] = IGN
    probs = rng.dirichlet([2, 1, 1], size=(2, 25))
    solution, submission = _frames(labels, probs)
    solution.to_csv(tmp_path / "sol.csv", index=False)
    submission.to_csv(tmp_path / "sub.csv", index=False)
    sol = pd.read_csv(tmp_path / "sol.csv")
    assert sol[schema.LABEL_COLUMNS[20]].isna().sum() == 1
    got = metrics.score_frames(sol, pd.read_csv(tmp_path / "sub.csv"))
    assert got.total == pytest.approx(metrics.competition_score(labels, probs).total, rel=1e-9)
    bad = sol.copy()
    bad[schema.LABEL_COLUMNS[0]] = "Mild"
    with pytest.raises(ValueError, match=schema.LABEL_COLUMNS[0]):
        metrics.score_frames(bad, submission)


def test_score_frames_errors():
    labels = np.zeros((2, 25), int)
    solution, submission = _frames(labels, _constant_probs(2))
    nan = submission.copy()
    nan.loc[3, "moderate"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.score_frames(solution, nan)
    neg = submission.copy()
    neg.loc[5, "severe"] = -1.0
    with pytest.raises(ValueError, match="negative"):
        metrics.score_frames(solution, neg)
    with pytest.raises(ValueError, match="missing.*202_"):
        metrics.score_frames(solution, submission[~submission.row_id.str.startswith("202_spinal")])
    with pytest.raises(ValueError, match="duplicate"):
        metrics.score_frames(solution, pd.concat([submission, submission.iloc[:1]]))
    with pytest.raises(ValueError, match="missing column"):
        metrics.score_frames(solution, submission.drop(columns="severe"))


def test_best_constant_prior_from_counts():
    labels = np.zeros((5, 25), int)
    labels[:, 0] = [0, 0, 0, 1, 2]
    labels[:, 1] = [0, 0, 0, 0, IGN]
    prior = metrics.best_constant_prior(labels)
    assert prior.shape == (25, 3)
    np.testing.assert_allclose(prior[0], np.array([3, 2, 4]) / 9)
    np.testing.assert_allclose(prior[1], [1, 0, 0])
    smoothed = metrics.best_constant_prior(labels, pseudocount=0.5)
    np.testing.assert_allclose(smoothed[1], np.array([4.5, 1.0, 2.0]) / 7.5)
    probs = metrics.prior_probs(prior, 3)
    assert probs.shape == (3, 25, 3) and probs.flags.writeable
    np.testing.assert_allclose(probs[2, 0], prior[0])


def test_prior_minimises_weighted_log_loss_of_its_column():
    rng = np.random.default_rng(2)
    labels = rng.choice(3, p=[0.7, 0.2, 0.1], size=(200, 25))
    prior = metrics.best_constant_prior(labels)
    best = metrics.competition_score(labels, metrics.prior_probs(prior, 200)).spinal
    for shift in ([0.02, -0.01, -0.01], [-0.02, 0.01, 0.01], [0.0, 0.02, -0.02]):
        moved = np.clip(prior + np.array(shift), 1e-6, None)
        assert metrics.competition_score(labels, metrics.prior_probs(moved, 200)).spinal > best


def test_classification_report_values():
    labels = np.zeros((2, 25), int)
    labels[0, SPINAL] = [0, 1, 2, 2, IGN]
    probs = _constant_probs(2, (0.5, 0.375, 0.125))  # exact binary fractions: ties stay ties
    probs[0, 1] = [0.125, 0.75, 0.125]  # correct Moderate
    probs[0, 2] = [0.125, 0.125, 0.75]  # correct Severe
    report = metrics.classification_report(labels, probs)
    spinal = report["spinal"]
    assert spinal["n"] == 9  # 10 spinal cells minus one missing
    assert spinal["accuracy"] == pytest.approx(8 / 9)
    # recall: normal 6/6, moderate 1/1, severe 1/2; precision: normal 6/7, moderate 1, severe 1
    assert spinal["recall_macro"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert spinal["precision_macro"] == pytest.approx((6 / 7 + 1 + 1) / 3)
    assert spinal["auc_moderate"] == pytest.approx(1.0)
    assert spinal["auc_severe"] == pytest.approx((7 + 7 * 0.5) / 14)  # 0.75 beats all, 0.125 ties all
    assert report["foraminal"]["accuracy"] == 1.0 and math.isnan(report["foraminal"]["auc_macro"])
    assert set(report) == {"spinal", "foraminal", "subarticular", *schema.CONDITION_SLUGS, "overall"}
    assert report["overall"]["n"] == 49


def test_bootstrap_skill_is_deterministic_and_narrows_with_more_studies():
    rng = np.random.default_rng(0)

    def case(n):
        y = rng.choice(3, size=(n, 25), p=[0.7, 0.2, 0.1])
        oracle = np.full((n, 25, 3), 0.1)
        np.put_along_axis(oracle, y[..., None], 0.8, axis=-1)
        prior = metrics.prior_probs(metrics.best_constant_prior(y, 1.0), n)
        model = 0.5 * oracle + 0.5 * prior
        return y, model, prior, oracle

    small, big = case(30), case(300)
    a, b = metrics.bootstrap_skill(*small, n_boot=200), metrics.bootstrap_skill(*small, n_boot=200)
    assert a == b
    assert a["low"] < a["skill"] < a["high"]
    wide = metrics.bootstrap_skill(*big, n_boot=200)
    assert wide["se"] < 0.6 * a["se"]  # ~1/sqrt(10) in theory
    assert a["skill"] == pytest.approx(metrics.normalised_skill(*small))
