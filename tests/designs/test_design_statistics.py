"""Design statistics against values worked out by hand (and one published example)."""

import math

import pytest

from readerstudy.analysis.designs import (
    ExposureRecord,
    FindingRecord,
    ImageRecord,
    PairRecord,
    analyse_findings,
    analyse_hype_infinity,
    analyse_hype_time,
    analyse_pairs,
    newcombe_difference,
)

approx = pytest.approx


def test_it_gives_2afc_proportions_exact_intervals_and_binomial_tests():
    records = [PairRecord("a", i, i < 7) for i in range(10)]
    records += [PairRecord("b", 100 + i, True) for i in range(4)]
    result = analyse_pairs(records, n_bootstrap=2000, seed=1)
    a, b = result.readers
    assert (a.n_pairs, a.n_correct) == (10, 7)
    assert a.proportion_correct.estimate == 0.7
    # Clopper-Pearson for 7/10 (tables): 0.3475 to 0.9333.
    assert (a.proportion_correct.ci_low, a.proportion_correct.ci_high) == (
        approx(0.3475, abs=1e-4),
        approx(0.9333, abs=1e-4),
    )
    # Two-sided exact: 2 * P(X >= 7 | 10, 1/2) = 2 * 176 / 1024.
    assert a.p_value == approx(2 * 176 / 1024)
    assert b.p_value == approx(2 / 16)
    assert b.proportion_correct.ci_low == approx(0.025**0.25)  # (alpha/2)^(1/n) for 4/4
    assert b.proportion_correct.ci_high == 1.0
    assert result.reader_averaged.estimate == approx(0.85)
    # Reader b is always right, so every resample's mean is 0.5 + a's resampled share / 2.
    assert 0.5 + 0.3 / 2 <= result.reader_averaged.ci_low < 0.85 < result.reader_averaged.ci_high
    assert result.reader_averaged.ci_high <= 1.0
    assert result.pooled_p_value == approx(2 * (364 + 91 + 14 + 1) / 2**14)


def test_it_scores_hype_infinity_as_the_error_rate_over_all_images():
    rows = [
        ("1", True, [False, True]),
        ("2", True, [True, True]),
        ("3", False, [False]),
        ("4", False, [True, True, False]),
    ]
    records = [
        ImageRecord(f"r{i}", int(case), synthetic, ok)
        for case, synthetic, oks in rows
        for i, ok in enumerate(oks)
    ]
    result = analyse_hype_infinity(records, n_bootstrap=500, seed=3)
    assert result.score.estimate == approx(3 / 8)
    assert result.synthetic_error.estimate == approx(1 / 4)
    assert result.real_error.estimate == approx(2 / 4)
    assert result.score.ci_low <= 3 / 8 <= result.score.ci_high
    # Synthetic errors come only from case 1 (1 of 2): resamples give 0, 1/4 or 1/2.
    assert result.synthetic_error.ci_low >= 0 and result.synthetic_error.ci_high <= 0.5
    assert analyse_hype_infinity(records, n_bootstrap=0).score.ci_low is None


def trials(reader, levels):
    return [
        ExposureRecord(reader, i + 1, level, level + (1.5 if i % 2 else -2.0), True)
        for i, level in enumerate(levels)
    ]


def test_it_takes_the_threshold_from_the_staircase_reversals():
    few = [500, 500, 500, 470, 470, 500, 500, 500, 470, 500, 530]  # reversals 470, 500, 470
    many = [500, 470, 500, 470, 500, 470]  # reversals 470, 500, 470, 500: the first two dropped
    result = analyse_hype_time(trials("a", few) + trials("b", many))
    a, b = result.readers
    assert a.n_reversals == 3 and b.n_reversals == 4
    assert a.threshold_ms.estimate == approx(480)
    half = 4.302653 * math.sqrt(300) / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert a.threshold_ms.ci_low == approx(480 - half, abs=1e-3)
    assert b.threshold_ms.estimate == approx(485)
    assert b.threshold_ms.ci_high == approx(485 + 12.7062047 * 15, abs=1e-3)  # sd 21.21, se 15
    assert result.mean_threshold_ms.estimate == approx(482.5)
    assert a.final_exposure_ms == 530
    assert a.median_timing_error_ms == 2.0 and a.max_timing_error_ms == 2.0  # 6 × 2.0, 5 × 1.5


def test_it_matches_newcombes_published_example():
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    # (statsmodels' confint_proportions_2indep(method="newcomb") agrees).
    difference = newcombe_difference(56, 70, 48, 80)
    assert difference.estimate == approx(0.2)
    assert difference.ci_low == approx(0.0524, abs=1e-4)
    assert difference.ci_high == approx(0.3339, abs=1e-4)


def test_it_compares_findings_on_real_images_with_the_conditioning_on_synthetic_ones():
    def rows(synthetic, image_finding, answered, n):
        return [FindingRecord("r", synthetic, image_finding, answered)] * n

    records = (
        rows(False, "normal", "normal", 3)
        + rows(False, "normal", "pneumonia", 1)
        + rows(False, "Pneumonia", "pneumonia", 2)
        + rows(False, "pneumonia", "normal", 2)
        + rows(True, "normal", "normal", 1)
        + rows(True, "normal", "pneumonia", 1)
        + rows(True, "pneumonia", "pneumonia", 4)
    )
    result = analyse_findings(records, ["normal", "pneumonia", "COVID-19"])
    normal, pneumonia, covid = result.findings
    assert normal.real_sensitivity.estimate == 3 / 4
    assert normal.real_specificity.estimate == 2 / 4
    assert normal.synthetic_sensitivity.estimate == 1 / 2
    assert normal.synthetic_specificity.estimate == 4 / 4
    assert normal.sensitivity_difference.estimate == approx(0.25)
    assert pneumonia.real_sensitivity.estimate == 2 / 4
    assert pneumonia.synthetic_sensitivity.estimate == 4 / 4
    assert not covid.real_sensitivity.defined and covid.real_specificity.estimate == 1.0
    counts = {(c.truth, c.image_finding, c.answered): c.count for c in result.confusion}
    assert counts[("real", "pneumonia", "normal")] == 2
    assert counts[("synthetic", "normal", "pneumonia")] == 1
    assert sum(counts.values()) == result.n_readings == 14
