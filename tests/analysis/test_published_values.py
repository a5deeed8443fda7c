"""The statistics reproduce values published for well-known example data sets.

Sources of data and reference values (each test says which it uses):

- Fleiss (1971), 30 patients x 6 psychiatrists x 5 diagnoses; kappa 0.4302445 as printed by R's
  ``irr::kappam.fleiss`` (the table is also in statsmodels' own tests).
- Wikipedia, "Fleiss' kappa", worked example: 10 subjects x 14 raters x 5 categories, kappa 0.210
  (0.2099 to four places).
- SAS ``PROC FREQ`` simple kappa example as quoted in statsmodels' tests: table
  [[0,4,1],[0,8,0],[0,1,5]] gives kappa 0.4842, ASE 0.1380, 95% CI (0.2137, 0.7547).
- Wilson (1927) score intervals of Newcombe (1998, Stat Med 17:857-872) worked examples:
  81/263 -> (0.2553, 0.3662); 0/20 -> (0, 0.1611).
- Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example with missing
  data: 4 observers x 12 units, alpha = 0.743. The same data are ``cac.raw4raters`` of Gwet's
  irrCAC R package, whose README prints alpha 0.74342 and Gwet's AC1 0.77544 (p_a 0.8181818,
  p_e 0.1903212).
- Gwet's AC1, irrCAC README (Gwet 2014, Handbook of Inter-Rater Reliability, 4th ed.):
  ``distrib.6raters`` (15 subjects x 6 raters x 5 categories) AC1 0.4448007 (p_a 0.5511111,
  p_e 0.1914815), Fleiss 0.4139265, Krippendorff 0.4204384; ``cont3x3abstractors`` (2 raters)
  AC1 0.8493305, Cohen 0.7964094, percent agreement 0.89.
- Obuchowski-Rockette single-test analysis, Van Dyke et al. (1993) data, treatment "0", as printed
  by OR-DBM MRMC 2.51 (Schartz, Hillis, Pesce & Berbaum; output shipped with RJafroc,
  ``inst/IowaResults/VanDyke1T.txt``): reader AUCs 0.91964573 0.85877617 0.90386473 0.97310789
  0.82979066; mean 0.89703704; MS(R) 0.00308263; Cov2 0.00048396; Var(Error) 0.00101410;
  random readers SE 0.03317360, df 12.74, CI (0.82522360, 0.96885048); fixed readers SE
  0.02428971, CI (0.84943008, 0.94464399); per-reader jackknife Var(Error) 0.00090755
  0.00132316 0.00079859 0.00030064 0.00174057.
"""

from pathlib import Path

import numpy as np
import pytest

from readerstudy.analysis import (
    Estimate,
    category_counts,
    cohen_kappa_table,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha_nominal,
    percent_agreement,
    wilson,
)
from readerstudy.analysis.roc import (
    auc_components,
    jackknife_aucs,
    jackknife_covariance,
    or_single_test,
)

DATA = Path(__file__).parent / "data"

# fmt: off
# Fleiss (1971): diagnoses 1..5 (depression, personality disorder, schizophrenia, neurosis, other)
# of 30 patients by 6 raters each.
FLEISS_1971 = np.array(
    [
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]
)

# Wikipedia "Fleiss' kappa": counts of 14 raters per category (5 categories) for 10 subjects.
WIKIPEDIA_FLEISS = np.array(
    [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
)

# Krippendorff (2011): values 1..5 by observers A-D on 12 units; 0 = missing.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, 0, 0, 0],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, 0, 3],
        [0, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 0],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, 0],
    ]
).T  # units x observers

# irrCAC distrib.6raters: 15 subjects, counts of 6 raters over 5 categories.
DISTRIB_6RATERS = np.array(
    [
        [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
        [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
        [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
    ]
)

# irrCAC cont3x3abstractors: rows rater A, columns rater B (Ectopic, AIU, NIU).
ABSTRACTORS = np.array([[13, 0, 0], [0, 20, 7], [0, 4, 56]])
# fmt: on


def _krippendorff_counts() -> np.ndarray:
    return category_counts(KRIPPENDORFF_2011 - 1, 5)  # 0 (missing) becomes -1: not counted


def _table_to_two_raters(table: np.ndarray) -> np.ndarray:
    pairs = [(i, j) for i in range(table.shape[0]) for j in range(table.shape[1])]
    codes = [pair for pair, count in zip(pairs, table.ravel()) for _ in range(count)]
    return np.array(codes)


def test_it_reproduces_fleiss_1971_kappa():
    counts = category_counts(FLEISS_1971 - 1, 5)
    result = fleiss_kappa(counts)
    assert isinstance(result, Estimate)
    assert result.estimate == pytest.approx(0.4302445, abs=5e-8)
    assert result.n == 30


def test_it_reproduces_the_wikipedia_fleiss_example():
    result = fleiss_kappa(WIKIPEDIA_FLEISS)
    assert round(result.estimate, 4) == 0.2099
    assert round(result.estimate, 3) == 0.210


def test_it_reproduces_the_sas_cohen_kappa_with_its_asymptotic_se():
    result = cohen_kappa_table(np.array([[0, 4, 1], [0, 8, 0], [0, 1, 5]]))
    assert round(result.estimate, 4) == 0.4842
    assert round(result.se, 4) == 0.1380
    assert round(result.ci_low, 4) == 0.2137
    assert round(result.ci_high, 4) == 0.7547
    assert result.n == 19


def test_it_reproduces_published_wilson_intervals():
    result = wilson(81, 263)
    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (0.2553, 0.3662)
    result = wilson(0, 20)
    assert result.estimate == 0.0
    assert result.ci_low == 0.0
    assert round(result.ci_high, 4) == 0.1611


def test_it_reproduces_krippendorffs_2011_alpha_with_missing_data():
    result = krippendorff_alpha_nominal(_krippendorff_counts())
    assert round(result.estimate, 3) == 0.743
    assert result.estimate == pytest.approx(0.74342, abs=5e-6)  # irrCAC krippen.alpha.raw
    assert result.n == 11  # unit 12 has a single value and is not pairable


def test_it_reproduces_gwets_ac1_with_missing_data_as_irrcac_computes_it():
    counts = _krippendorff_counts()
    # Gwet (2014) / irrCAC take pi_k over every subject with at least one rating.
    result = gwet_ac1(counts)  # the product uses Gwet's definition
    assert result.estimate == pytest.approx(0.77544, abs=5e-6)
    assert percent_agreement(counts).estimate == pytest.approx(0.8181818, abs=5e-8)
    # Variant: pi_k over the paired cases only (here unit 12 drops out of p_e).
    # By hand: over the 11 paired units pi = (3, 3.25, 2.5, 1.25, 1) / 11, so
    # p_e = sum pi (1 - pi) / 4 = 92.625 / 484 = 0.191373967 and
    # AC1 = (9/11 - p_e) / (1 - p_e) = 0.775151709.
    paired = gwet_ac1(counts, chance_over="paired")
    assert paired.estimate == pytest.approx(0.7751517087, abs=1e-9)


def test_it_reproduces_gwets_six_rater_example():
    assert gwet_ac1(DISTRIB_6RATERS).estimate == pytest.approx(0.4448007, abs=5e-8)
    assert percent_agreement(DISTRIB_6RATERS).estimate == pytest.approx(0.5511111, abs=5e-8)
    assert fleiss_kappa(DISTRIB_6RATERS).estimate == pytest.approx(0.4139265, abs=5e-8)
    assert krippendorff_alpha_nominal(DISTRIB_6RATERS).estimate == pytest.approx(
        0.4204384, abs=5e-8
    )


def test_it_reproduces_gwets_two_rater_example():
    codes = _table_to_two_raters(ABSTRACTORS)
    counts = category_counts(codes, 3)
    assert gwet_ac1(counts).estimate == pytest.approx(0.8493305, abs=5e-8)
    assert percent_agreement(counts).estimate == pytest.approx(0.89)
    assert cohen_kappa_table(ABSTRACTORS).estimate == pytest.approx(0.7964094, abs=5e-8)
    assert cohen_kappa_table(ABSTRACTORS).se == pytest.approx(0.05891072, abs=5e-8)


def _van_dyke() -> list[tuple[np.ndarray, np.ndarray]]:
    readers = []
    for line in (DATA / "vandyke_treatment0.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        _, normal, diseased = line.split("|")
        neg = np.array([int(ch) for ch in normal if ch.isdigit()], float)
        pos = np.array([int(ch) for ch in diseased if ch.isdigit()], float)
        assert (pos.size, neg.size) == (45, 69)
        readers.append((pos, neg))
    return readers


def test_it_reproduces_the_or_dbm_mrmc_single_test_analysis_of_van_dyke():
    aucs, jackknife = [], []
    for pos, neg in _van_dyke():
        auc, v10, v01 = auc_components(pos, neg)
        jack_pos, jack_neg = jackknife_aucs(auc, v10, v01)
        aucs.append(auc)
        jackknife.append(np.concatenate([jack_neg, jack_pos]))  # same case order for all readers
    aucs = np.array(aucs)
    jackknife = np.array(jackknife).T

    np.testing.assert_allclose(
        aucs, [0.91964573, 0.85877617, 0.90386473, 0.97310789, 0.82979066], atol=5e-9
    )
    np.testing.assert_allclose(
        np.diag(jackknife_covariance(jackknife)),
        [0.00090755, 0.00132316, 0.00079859, 0.00030064, 0.00174057],
        atol=5e-9,
    )
    result = or_single_test(aucs, jackknife)
    assert result.mean_auc == pytest.approx(0.89703704, abs=5e-9)
    assert result.ms_r == pytest.approx(0.00308263, abs=5e-9)
    assert result.cov2 == pytest.approx(0.00048396, abs=5e-9)
    assert result.var_error == pytest.approx(0.00101410, abs=5e-9)
    assert round(result.df, 2) == 12.74

    random = result.random_readers
    assert random.se == pytest.approx(0.03317360, abs=5e-9)
    assert random.ci_low == pytest.approx(0.82522360, abs=5e-9)
    assert random.ci_high == pytest.approx(0.96885048, abs=5e-9)
    fixed = result.fixed_readers
    assert fixed.se == pytest.approx(0.02428971, abs=5e-9)
    assert fixed.ci_low == pytest.approx(0.84943008, abs=5e-9)
    assert fixed.ci_high == pytest.approx(0.94464399, abs=5e-9)
