"""The synthetic label model: real frequencies and correlations, the exact oracle, the gaps."""

import numpy as np
import pytest

from lsdc import metrics, schema
from lsdc.synth import labels, targets

NOISE = 0.35
IGN = schema.IGNORE_INDEX


@pytest.fixture(scope="module")
def big():
    return labels.draw_labels(np.random.default_rng(11), 4000, NOISE)


def test_shapes_dtypes_and_ranges(big):
    n = 4000
    for name in ("latent", "narrowing", "grades", "has_coord", "misplaced"):
        assert getattr(big, name).shape == (n, 25), name
    assert big.latent.dtype == np.float64 and big.narrowing.dtype == np.float64
    assert big.grades.dtype == np.int16 and big.has_coord.dtype == bool and big.misplaced.dtype == bool
    assert set(np.unique(big.grades)) == {0, 1, 2, IGN}
    assert big.narrowing.min() >= 0 and big.narrowing.max() <= 1
    assert not (big.misplaced & ~big.has_coord).any()


def test_latent_marginals_and_correlations(big):
    z = big.latent
    assert np.abs(z.mean(axis=0)).max() < 0.06
    assert np.abs(z.std(axis=0) - 1).max() < 0.05
    corr = np.corrcoef(z.T)
    j = schema.LABEL_INDEX
    neighbours = corr[j["spinal_canal_stenosis_l3_l4"], j["spinal_canal_stenosis_l4_l5"]]
    distant = corr[j["spinal_canal_stenosis_l1_l2"], j["spinal_canal_stenosis_l5_s1"]]
    left_right = corr[j["left_subarticular_stenosis_l4_l5"], j["right_subarticular_stenosis_l4_l5"]]
    assert neighbours > distant > 0.3
    assert left_right > neighbours


@pytest.mark.parametrize("noise", [NOISE, 1.0])
def test_grade_frequencies_match_real_columns(big, noise):
    if noise != NOISE:  # the cut points must account for the reader's noise at any level
        big = labels.draw_labels(np.random.default_rng(13), 4000, noise)
    graded = big.grades != IGN
    want = labels.grade_shares()
    for k in range(3):
        got = ((big.grades == k) & graded).sum(axis=0) / graded.sum(axis=0)
        worst = np.abs(got - want[:, k]).max()
        assert worst < 0.03, (k, worst)
    overall = [(big.grades == k).sum() / graded.sum() for k in range(3)]
    np.testing.assert_allclose(overall, [0.774, 0.163, 0.063], atol=0.015)


def test_study_level_shares_and_left_right_agreement(big):
    s = labels.study_shares(big.grades)
    assert s["any_severe"] == pytest.approx(targets.ANY_SEVERE_SHARE, abs=0.03)
    assert s["any_moderate"] == pytest.approx(targets.ANY_MODERATE_SHARE, abs=0.03)
    assert s["any_severe_spinal"] == pytest.approx(targets.ANY_SEVERE_SPINAL_SHARE, abs=0.03)
    assert s["left_right_agreement_foraminal"] == pytest.approx(0.76, abs=0.05)
    assert s["left_right_agreement_subarticular"] == pytest.approx(0.74, abs=0.05)


def test_reference_scores_uniform_and_constant(big):
    n = len(big.grades)
    uniform = metrics.competition_score(big.grades, np.full((n, 25, 3), 1 / 3)).total
    prior = metrics.best_constant_prior(big.grades)
    constant = metrics.competition_score(big.grades, metrics.prior_probs(prior, n)).total
    assert uniform == pytest.approx(0.999, abs=0.03)
    assert constant == pytest.approx(0.790, abs=0.03)


def test_oracle_beats_constant_prior_on_fresh_draws(big):
    fresh = labels.draw_labels(np.random.default_rng(12), 1000, NOISE)
    prior = metrics.best_constant_prior(big.grades, pseudocount=0.5)
    constant = metrics.competition_score(fresh.grades, metrics.prior_probs(prior, 1000))
    oracle = metrics.competition_score(fresh.grades, labels.oracle_probs(fresh.latent, NOISE))
    assert oracle.total < constant.total - 0.3
    for term in ("spinal", "foraminal", "subarticular", "any_severe_spinal"):
        assert getattr(oracle, term) < getattr(constant, term), term


def test_oracle_is_calibrated(big):
    probs = labels.oracle_probs(big.latent, NOISE)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-12)
    graded = big.grades != IGN
    for k in range(3):
        mean_prob = probs[..., k][graded].mean()
        freq = (big.grades[graded] == k).mean()
        assert mean_prob == pytest.approx(freq, abs=0.01), k
    severe_p = probs[..., 2][graded]
    severe_y = big.grades[graded] == 2
    for lo, hi in ((0.1, 0.3), (0.3, 0.7), (0.7, 0.9)):
        inside = (severe_p >= lo) & (severe_p < hi)
        assert severe_y[inside].mean() == pytest.approx(severe_p[inside].mean(), abs=0.05), (lo, hi)


def test_oracle_is_the_exact_grade_distribution():
    latent = np.tile(np.linspace(-0.5, 2.5, 25), (1, 1))
    repeats = np.repeat(latent, 40000, axis=0)
    grades = labels.grade(np.random.default_rng(5), repeats, NOISE)
    freq = np.stack([(grades == k).mean(axis=0) for k in range(3)], axis=-1)
    np.testing.assert_allclose(freq, labels.oracle_probs(latent, NOISE)[0], atol=0.008)


def test_zero_reader_noise_gives_one_hot_oracle():
    d = labels.draw_labels(np.random.default_rng(6), 50, 0.0)
    probs = labels.oracle_probs(d.latent, 0.0)
    graded = d.grades != IGN
    assert set(np.unique(probs)) <= {0.0, 1.0}
    np.testing.assert_array_equal(probs.argmax(-1)[graded], d.grades[graded])
    with pytest.raises(ValueError, match="reader_noise"):
        labels.draw_labels(np.random.default_rng(6), 5, -0.1)


def test_narrowing_monotone_with_grade_boundaries_at_fixed_values(big):
    for col in (0, 8, 18):
        order = np.argsort(big.latent[:, col])
        assert np.all(np.diff(big.narrowing[order, col]) >= 0)
    cuts = labels.thresholds(NOISE)
    at_cuts = labels.narrowing_of(cuts.T, NOISE)  # row 0: Moderate cut points, row 1: Severe
    np.testing.assert_allclose(at_cuts[0], labels.MODERATE_NARROWING, atol=1e-9)
    np.testing.assert_allclose(at_cuts[1], labels.SEVERE_NARROWING, atol=1e-9)
    medians = [np.median(big.narrowing[big.grades == k]) for k in range(3)]
    assert medians[0] + 0.2 < medians[1] < medians[2] - 0.15


def test_missing_grades_and_coordinates_follow_real_rates():
    d = labels.draw_labels(np.random.default_rng(8), targets.REAL_STUDIES, NOISE)
    missing = d.grades == IGN
    real_missing = np.array(targets.COLUMN_COUNTS)[:, 3]
    assert np.abs(missing.sum(axis=0) - real_missing).max() <= 3
    assert abs(missing.any(axis=1).sum() - 185) <= 15
    assert missing[:, 15].sum() > 100 and missing[:, 17].sum() < 10  # subarticular L1/L2 vs L3/L4
    assert abs(d.has_coord.sum() - targets.COORD_ROWS) <= 60
    assert abs((missing & d.has_coord).sum() - targets.UNGRADED_WITH_COORD) <= 3
    assert abs((~missing & ~d.has_coord).sum() - targets.GRADED_WITHOUT_COORD) <= 30
    assert abs((d.has_coord.sum(axis=1) < 25).sum() - targets.STUDIES_WITH_FEWER_COORDS) <= 20
    assert d.misplaced.sum() in range(10, 17)


def test_rates_scale_down_to_small_datasets():
    counts = [labels.draw_labels(np.random.default_rng(s), 200, NOISE) for s in range(5)]
    missing = np.mean([(d.grades == IGN).sum() for d in counts])
    assert missing == pytest.approx(572 / 1975 * 200, rel=0.25)
    empty = labels.draw_labels(np.random.default_rng(0), 0, NOISE)
    assert empty.grades.shape == (0, 25)


def test_deterministic_from_rng_seed():
    a = labels.draw_labels(np.random.default_rng(21), 300, NOISE)
    b = labels.draw_labels(np.random.default_rng(21), 300, NOISE)
    c = labels.draw_labels(np.random.default_rng(22), 300, NOISE)
    for name in ("latent", "narrowing", "grades", "has_coord", "misplaced"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.latent, c.latent)
    assert not np.array_equal(a.grades, c.grades)
