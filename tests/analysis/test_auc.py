"""AUC, DeLong variance, jackknife and ROC points of the fake-score."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from readerstudy.analysis import (
    Estimate,
    NotDefined,
    auc_components,
    auc_estimate,
    delong_variance,
    fake_scores,
    jackknife_aucs,
    mann_whitney_auc,
    or_single_test,
    roc_points,
)


def test_it_scores_fake_as_plus_confidence_unsure_as_zero_and_real_as_minus_confidence():
    scores = fake_scores(np.array([2, 1, 0, 2, 1]), np.array([5.0, 3.0, 2.0, 1.0, np.nan]))
    np.testing.assert_array_equal(scores, [5.0, 0.0, -2.0, 1.0, 0.0])


def test_it_matches_sklearn_roc_auc_with_ties_counting_one_half():
    rng = np.random.default_rng(1)
    for _ in range(50):
        m, n = rng.integers(1, 40, size=2)
        pos = rng.integers(-5, 6, m).astype(float)  # 11 levels: many ties
        neg = rng.integers(-5, 6, n).astype(float)
        y = np.r_[np.ones(m), np.zeros(n)]
        assert mann_whitney_auc(pos, neg) == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))


def test_it_computes_the_delong_variance_of_a_hand_worked_example():
    # Positives X = 1, 2, 3; negatives Y = 0, 1, 2.
    # psi rows: X=1: (1, 1/2, 0); X=2: (1, 1, 1/2); X=3: (1, 1, 1).
    # V10 = (1/2, 5/6, 1), V01 = (1, 5/6, 1/2), AUC = 7/9.
    # S10 = S01 = [(5/18)^2 + (1/18)^2 + (4/18)^2] / 2 = 7/108; Var = 7/108/3 + 7/108/3 = 7/162.
    auc, v10, v01 = auc_components(np.array([1.0, 2, 3]), np.array([0.0, 1, 2]))
    assert auc == pytest.approx(7 / 9)
    np.testing.assert_allclose(v10, [1 / 2, 5 / 6, 1])
    np.testing.assert_allclose(v01, [1, 5 / 6, 1 / 2])
    assert delong_variance(v10, v01) == pytest.approx(7 / 162)
    result = auc_estimate(np.array([1.0, 2, 3]), np.array([0.0, 1, 2]))
    assert result.se == pytest.approx(np.sqrt(7 / 162))
    assert result.ci_high == 1.0 and "clipped" in result.note


def test_it_gets_exact_leave_one_out_aucs_from_the_structural_components():
    rng = np.random.default_rng(2)
    pos = rng.integers(-5, 6, 17).astype(float)
    neg = rng.integers(-5, 6, 23).astype(float)
    auc, v10, v01 = auc_components(pos, neg)
    jack_pos, jack_neg = jackknife_aucs(auc, v10, v01)
    brute_pos = [mann_whitney_auc(np.delete(pos, i), neg) for i in range(pos.size)]
    brute_neg = [mann_whitney_auc(pos, np.delete(neg, j)) for j in range(neg.size)]
    np.testing.assert_allclose(jack_pos, brute_pos)
    np.testing.assert_allclose(jack_neg, brute_neg)
    # Hand example above: dropping X = 1 leaves (2.5 + 3) / 6.
    jack_pos, _ = jackknife_aucs(*auc_components(np.array([1.0, 2, 3]), np.array([0.0, 1, 2])))
    assert jack_pos[0] == pytest.approx(5.5 / 6)


def test_it_computes_or_intervals_of_a_hand_worked_two_reader_example():
    # Two readers, jackknife AUCs over 4 cases (columns: readers).
    aucs = np.array([0.8, 0.7])
    jack = np.array([[0.82, 0.71], [0.78, 0.69], [0.80, 0.72], [0.80, 0.68]])
    # Centred columns: (0.02, -0.02, 0, 0) and (0.01, -0.01, 0.02, -0.02).
    # Jackknife (co)variances with (N-1)/N = 3/4: var1 = 3/4*0.0008 = 0.0006,
    # var2 = 3/4*0.001 = 0.00075, cov = 3/4*(0.0002 + 0.0002) = 0.0003.
    # Var = 0.000675, Cov2 = 0.0003, MS(R) = (0.1^2)/2 = 0.005.
    result = or_single_test(aucs, jack)
    assert result.var_error == pytest.approx(0.000675)
    assert result.cov2 == pytest.approx(0.0003)
    assert result.ms_r == pytest.approx(0.005)
    # Random: SE = sqrt((0.005 + 2*0.0003)/2) = sqrt(0.0028); df = 0.0056^2/(0.005^2/1) = 1.2544.
    assert result.random_readers.se == pytest.approx(np.sqrt(0.0028))
    assert result.df == pytest.approx(1.2544)
    # Fixed: SE = sqrt((0.000675 + 1*0.0003)/2) = sqrt(0.0004875), z interval.
    assert result.fixed_readers.se == pytest.approx(np.sqrt(0.0004875))
    assert result.fixed_readers.ci_low == pytest.approx(0.75 - 1.959963985 * np.sqrt(0.0004875))


def test_it_uses_zero_for_a_negative_cov2():
    aucs = np.array([0.8, 0.7])
    jack = np.array([[0.82, 0.69], [0.78, 0.71], [0.80, 0.70]])  # perfectly anti-correlated
    result = or_single_test(aucs, jack)
    assert result.cov2 < 0
    assert result.random_readers.se == pytest.approx(np.sqrt(0.005 / 2))
    assert result.df == pytest.approx(1.0)


def test_it_gives_only_the_fixed_reader_interval_for_one_reader():
    result = or_single_test(np.array([0.8]), np.array([[0.82], [0.78], [0.80]]))
    assert isinstance(result.random_readers, NotDefined)
    assert "two readers" in result.random_readers.reason
    assert isinstance(result.fixed_readers, Estimate)


def test_it_gives_roc_points_matching_sklearn():
    rng = np.random.default_rng(3)
    pos = rng.integers(-5, 6, 30).astype(float)
    neg = rng.integers(-5, 6, 40).astype(float)
    points = roc_points(pos, neg)
    fpr, tpr, thresholds = roc_curve(
        np.r_[np.ones(30), np.zeros(40)], np.r_[pos, neg], drop_intermediate=False
    )
    assert points[0].threshold is None and (points[0].fpr, points[0].tpr) == (0.0, 0.0)
    np.testing.assert_allclose([p.fpr for p in points], fpr)
    np.testing.assert_allclose([p.tpr for p in points], tpr)
    np.testing.assert_allclose([p.threshold for p in points[1:]], thresholds[1:])
    assert (points[-1].fpr, points[-1].tpr) == (1.0, 1.0)
    # Trapezoids under the points give the Mann-Whitney AUC.
    assert np.trapezoid(tpr, fpr) == pytest.approx(mann_whitney_auc(pos, neg))


def test_it_leaves_the_auc_undefined_without_both_classes():
    assert isinstance(auc_estimate(np.array([1.0, 2.0]), np.array([])), NotDefined)
    single = auc_estimate(np.array([1.0]), np.array([0.0, 2.0]))
    assert isinstance(single, Estimate) and single.ci_low is None and "DeLong" in single.note


def test_it_uses_scipys_normal_quantile_for_95_percent_intervals():
    from scipy.stats import norm

    from readerstudy.analysis import agreement, roc

    assert roc.Z95 == agreement.Z95 == float(norm.ppf(0.975))
