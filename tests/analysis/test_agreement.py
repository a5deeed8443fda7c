"""Vectorised agreement statistics agree with sklearn/statsmodels and with plain definitions."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from readerstudy.analysis import (
    MISSING,
    Estimate,
    NotDefined,
    category_counts,
    cohen_kappa_table,
    fleiss_kappa,
    gwet_ac1,
    kappa_from_tables,
    krippendorff_alpha_nominal,
    pairwise_tables,
    percent_agreement,
)
from readerstudy.analysis import agreement as ag


def _random_codes(rng, n_cases, n_readers, missing=0.2, q=3):
    codes = rng.integers(0, q, size=(n_cases, n_readers)).astype(np.int8)
    # Correlate readers a little so kappas are not all ~0.
    shared = rng.integers(0, q, size=n_cases)
    copy = rng.random((n_cases, n_readers)) < 0.4
    codes[copy] = np.broadcast_to(shared[:, None], codes.shape)[copy]
    codes[rng.random((n_cases, n_readers)) < missing] = MISSING
    return codes


def test_it_matches_sklearn_cohen_kappa_for_every_reader_pair():
    rng = np.random.default_rng(10)
    codes = _random_codes(rng, 300, 6)
    kappa, _se, n = kappa_from_tables(pairwise_tables(codes, 3))
    for a, b in itertools.combinations(range(6), 2):
        both = (codes[:, a] != MISSING) & (codes[:, b] != MISSING)
        expected = cohen_kappa_score(codes[both, a], codes[both, b], labels=[0, 1, 2])
        assert kappa[a, b] == pytest.approx(expected)
        assert kappa[b, a] == pytest.approx(expected)
        assert n[a, b] == both.sum()


def test_it_matches_the_statsmodels_asymptotic_kappa_se():
    rng = np.random.default_rng(11)
    for _ in range(30):
        table = rng.integers(0, 15, size=(3, 3)) + np.diag(rng.integers(0, 20, 3))
        kappa, se, _ = kappa_from_tables(table)
        reference = cohens_kappa(table)
        assert kappa == pytest.approx(reference.kappa)
        assert se == pytest.approx(reference.std_kappa)


def test_it_maps_sklearn_nan_kappa_to_not_defined():
    a = np.array([0, 0, 0, 0])
    with pytest.warns(Warning):  # UndefinedMetricWarning (RuntimeWarning before sklearn 1.6)
        assert np.isnan(cohen_kappa_score(a, a, labels=[0, 1, 2]))
    kappa, se, n = kappa_from_tables(pairwise_tables(np.c_[a, a], 3))
    assert np.isnan(kappa[0, 1])
    value = ag.kappa_value(float(kappa[0, 1]), float(se[0, 1]), int(n[0, 1]))
    assert isinstance(value, NotDefined) and "one and the same category" in value.reason
    # Different single categories: sklearn says 0 and so do we.
    b = np.array([2, 2, 2, 2])
    kappa, _, _ = kappa_from_tables(pairwise_tables(np.c_[a, b], 3))
    assert kappa[0, 1] == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2])) == 0.0


def test_it_computes_fleiss_from_weighted_sums_like_statsmodels():
    rng = np.random.default_rng(12)
    codes = _random_codes(rng, 200, 5, missing=0.05)
    counts = category_counts(codes, 3)
    complete = counts.sum(axis=1) == 5
    expected = sm_fleiss_kappa(counts[complete])
    assert fleiss_kappa(counts, 5).estimate == pytest.approx(expected)
    features = ag.fleiss_features(counts, 5)
    assert ag.fleiss_from_sums(features.sum(axis=0), 5)[0] == pytest.approx(expected)
    # Integer case weights equal duplicating the cases.
    weights = rng.integers(0, 3, size=counts.shape[0])
    duplicated = np.repeat(counts, weights, axis=0)
    assert ag.fleiss_from_sums(weights @ features, 5)[0] == pytest.approx(
        sm_fleiss_kappa(duplicated[duplicated.sum(axis=1) == 5])
    )


def _alpha_by_definition(codes: np.ndarray, q: int) -> float:
    """Krippendorff's alpha straight from the coincidence matrix, unit by unit, pair by pair."""
    o = np.zeros((q, q))
    for row in codes:
        values = [v for v in row if v != MISSING]
        m = len(values)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            o[values[i], values[j]] += 1.0 / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d_o = (o.sum() - np.trace(o)) / n
    d_e = (n * n - (n_c**2).sum()) / (n * (n - 1))
    return 1 - d_o / d_e


def test_it_computes_krippendorffs_alpha_as_the_coincidence_matrix_defines_it():
    rng = np.random.default_rng(13)
    for _ in range(10):
        codes = _random_codes(rng, 40, 4, missing=0.4)
        expected = _alpha_by_definition(codes, 3)
        assert krippendorff_alpha_nominal(category_counts(codes, 3)).estimate == pytest.approx(
            expected
        )


def test_it_computes_ac1_and_percent_agreement_by_gwets_definition():
    rng = np.random.default_rng(14)
    codes = _random_codes(rng, 60, 5, missing=0.5)
    counts = category_counts(codes, 3)
    r = counts.sum(axis=1)
    paired = r >= 2
    p_a = np.mean(
        [sum(c * (c - 1) for c in row) / (k * (k - 1)) for row, k in zip(counts[paired], r[paired])]
    )
    rated = r >= 1
    pi = (counts[rated] / r[rated, None]).mean(axis=0)  # Gwet: every case with a reading
    p_e = (pi * (1 - pi)).sum() / 2  # q - 1 = 2 with q = 3
    assert percent_agreement(counts).estimate == pytest.approx(p_a)
    assert gwet_ac1(counts).estimate == pytest.approx((p_a - p_e) / (1 - p_e))


def test_it_keeps_q_at_three_even_when_one_category_is_unused():
    codes = np.array([[0, 0], [2, 2], [0, 2], [2, 2]])  # nobody answered unsure
    counts = category_counts(codes, 3)
    p_a = 3 / 4
    pi = np.array([3 / 8, 0, 5 / 8])
    p_e = (pi * (1 - pi)).sum() / 2
    assert gwet_ac1(counts).estimate == pytest.approx((p_a - p_e) / (1 - p_e))
    two = gwet_ac1(counts[:, [0, 2]])  # committed-only scale, q = 2
    assert two.estimate == pytest.approx(
        (p_a - (pi * (1 - pi)).sum()) / (1 - (pi * (1 - pi)).sum())
    )


def test_it_reports_degenerate_agreement_as_not_defined():
    one_category = category_counts(np.zeros((5, 3), int), 3)
    assert isinstance(fleiss_kappa(one_category), NotDefined)
    assert isinstance(krippendorff_alpha_nominal(one_category), NotDefined)
    ac1 = gwet_ac1(one_category)  # AC1 stays defined: perfect agreement gives 1
    assert isinstance(ac1, Estimate) and ac1.estimate == pytest.approx(1.0)

    single_readings = category_counts(np.array([[0, MISSING], [MISSING, 2]]), 3)
    for function in (krippendorff_alpha_nominal, gwet_ac1, percent_agreement):
        result = function(single_readings)
        assert isinstance(result, NotDefined) and "two or more readings" in result.reason
    assert "read by all" in fleiss_kappa(single_readings, 2).reason
    assert "two readers" in fleiss_kappa(single_readings, 1).reason
    empty = np.zeros((0, 3))
    for function in (krippendorff_alpha_nominal, gwet_ac1, percent_agreement, fleiss_kappa):
        assert isinstance(function(empty), NotDefined)


def test_it_gives_no_interval_when_one_rater_used_a_single_category():
    # Rater A always "real"; rater B varies: kappa is 0 and its asymptotic SE is 0.
    table = np.array([[2, 1, 3], [0, 0, 0], [0, 0, 0]])
    value = cohen_kappa_table(table)
    assert value.estimate == pytest.approx(0.0)
    assert value.ci_low is None and value.ci_high is None
    assert "no interval" in value.note
