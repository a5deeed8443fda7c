"""Agreement between readers: Cohen's, Fleiss' kappa, Krippendorff's alpha, Gwet's AC1.

All multi-reader statistics are computed from a per-case category-count matrix (``counts``:
cases x categories, the layout of statsmodels' ``aggregate_raters``; row sums may differ, which is
how missing readings are represented). Each statistic is written as *per-case features* whose
(weighted) column sums determine it, so a case bootstrap is a matrix product of case weights with
the feature matrix (see :mod:`readerstudy.analysis.bootstrap`). The ``*_from_sums`` functions
return NaN for resamples where the statistic is undefined; the public functions return
:class:`NotDefined` with the reason instead.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from readerstudy.analysis.results import Estimate, NotDefined, Value
from readerstudy.analysis.table import MISSING

# scipy.stats.norm.ppf(0.975), written out so that scipy loads only when a statistic needs it
# (the web process imports this module at boot); tests/analysis/test_auc.py pins the value.
Z95 = 1.959963984540054
POINT_ONLY = "point estimate only (intervals come from the case bootstrap in analyse())"
ASYMPTOTIC_KAPPA = "asymptotic SE (Fleiss, Cohen & Everitt 1969), normal interval"
EPS = 1e-12


def category_counts(codes: np.ndarray, n_categories: int, missing: int = MISSING) -> np.ndarray:
    """Per-case counts of each category from a (cases x readers) code matrix.

    Codes are ``0 .. n_categories-1``; ``missing`` (or any code outside the range) is no reading.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError("codes must be a (cases x readers) matrix")
    out = np.empty((codes.shape[0], n_categories), np.int64)
    for k in range(n_categories):
        out[:, k] = np.count_nonzero(codes == k, axis=1)
    del missing  # anything not in 0..q-1 is simply not counted
    return out


def _as_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, float)
    if counts.ndim != 2 or counts.shape[1] < 2:
        raise ValueError("counts must be a (cases x categories) matrix with >= 2 categories")
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative")
    return counts


def _point(value: float, n: int, method: str = POINT_ONLY) -> Estimate:
    return Estimate(value, None, None, n, method, note=POINT_ONLY)


# ------------------------------------------------------------------------------ Fleiss' kappa


def fleiss_features(counts: np.ndarray, n_raters: int) -> np.ndarray:
    """Features [P_i, n_i1..n_iq, 1] of the cases read by exactly ``n_raters`` readers (0 else)."""
    counts = _as_counts(counts)
    m = float(n_raters)
    complete = (counts.sum(axis=1) == m) & (m >= 2)
    features = np.zeros((counts.shape[0], counts.shape[1] + 2))
    if m >= 2:
        features[:, 0] = ((counts * counts).sum(axis=1) - m) / (m * (m - 1))
    features[:, 1:-1] = counts
    features[:, -1] = 1.0
    features[~complete] = 0.0
    return features


def fleiss_from_sums(sums: np.ndarray, n_raters: int) -> np.ndarray:
    sums = np.atleast_2d(np.asarray(sums, float))
    n_cases = sums[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_mean = sums[:, 0] / n_cases
        p_cat = sums[:, 1:-1] / (n_raters * n_cases[:, None])
        p_exp = (p_cat * p_cat).sum(axis=1)
        kappa = (p_mean - p_exp) / (1.0 - p_exp)
    kappa[(n_cases <= 0) | (1.0 - p_exp <= EPS)] = np.nan
    return kappa


def fleiss_kappa(counts: np.ndarray, n_raters: int | None = None) -> Value:
    """Fleiss' kappa over the cases read by all ``n_raters`` readers (default: the most any case
    has). ``counts`` may have any number of categories q (the Fleiss 1971 example has 5).

    The value is statsmodels' ``fleiss_kappa`` on the complete cases.
    """
    counts = _as_counts(counts)
    row = counts.sum(axis=1)
    if n_raters is None:
        n_raters = int(row.max()) if row.size else 0
    if n_raters < 2:
        return NotDefined("Fleiss' kappa needs at least two readers per case")
    complete = counts[row == n_raters]
    if complete.shape[0] == 0:
        return NotDefined(f"no case was read by all {n_raters} readers")
    p_cat = complete.sum(axis=0) / complete.sum()
    if 1.0 - float((p_cat * p_cat).sum()) <= EPS:
        return NotDefined("all readings fall in one category, so chance agreement is 1")
    from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa

    value = float(_sm_fleiss_kappa(complete, method="fleiss"))
    return _point(value, complete.shape[0])


# ----------------------------------------------------------------------- Krippendorff's alpha


def krippendorff_features(counts: np.ndarray) -> np.ndarray:
    """Features [n_u1..n_uq, d_u] of pairable units (>= 2 values; 0 else).

    ``d_u = sum_c n_uc (n_uc - 1) / (m_u - 1)`` is the unit's contribution to the diagonal of the
    coincidence matrix; the column sums of ``n_uc`` are the coincidence marginals ``n_c``.
    """
    counts = _as_counts(counts)
    m_u = counts.sum(axis=1)
    pairable = m_u >= 2
    features = np.zeros((counts.shape[0], counts.shape[1] + 1))
    features[pairable, :-1] = counts[pairable]
    features[pairable, -1] = (counts[pairable] * (counts[pairable] - 1)).sum(axis=1) / (
        m_u[pairable] - 1
    )
    return features


def krippendorff_from_sums(sums: np.ndarray) -> np.ndarray:
    """Nominal alpha = 1 - (n - 1) * (n - sum_c o_cc) / (n^2 - sum_c n_c^2)."""
    sums = np.atleast_2d(np.asarray(sums, float))
    n_c = sums[:, :-1]
    n = n_c.sum(axis=1)
    diagonal = sums[:, -1]
    expected = n * n - (n_c * n_c).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * (n - diagonal) / expected
    alpha[(n < 2) | (expected <= EPS)] = np.nan
    return alpha


def krippendorff_alpha_nominal(counts: np.ndarray) -> Value:
    """Krippendorff's alpha for nominal data, missing readings allowed (Krippendorff 2011).

    Implemented here from the coincidence matrix (the PyPI ``krippendorff`` package is GPL).
    """
    counts = _as_counts(counts)
    features = krippendorff_features(counts)
    n_units = int(np.count_nonzero(counts.sum(axis=1) >= 2))
    if n_units == 0:
        return NotDefined("no case has two or more readings")
    value = float(krippendorff_from_sums(features.sum(axis=0))[0])
    if not np.isfinite(value):
        return NotDefined("all pairable readings fall in one category (no expected disagreement)")
    return _point(value, n_units)


# ---------------------------------------------------------------- Gwet's AC1, percent agreement

ChanceOver = Literal["paired", "rated"]


def ac1_features(counts: np.ndarray, chance_over: ChanceOver = "rated") -> np.ndarray:
    """Features [pa_i, paired_i, share_i1..share_iq, chance_i].

    ``pa_i`` is the case's pairwise agreement ``sum_k n_ik (n_ik - 1) / (r_i (r_i - 1))`` on cases
    with ``r_i >= 2`` readings; ``share_ik = n_ik / r_i`` is averaged over the cases counted by
    ``chance_i``: the same paired cases (``chance_over="paired"``, the product definition) or every
    case with at least one reading (``"rated"``, Gwet 2014 / irrCAC).
    """
    counts = _as_counts(counts)
    q = counts.shape[1]
    r = counts.sum(axis=1)
    paired = r >= 2
    if chance_over == "paired":
        chance = paired
    elif chance_over == "rated":
        chance = r >= 1
    else:
        raise ValueError("chance_over must be 'paired' or 'rated'")
    features = np.zeros((counts.shape[0], q + 3))
    features[paired, 0] = (counts[paired] * (counts[paired] - 1)).sum(axis=1) / (
        r[paired] * (r[paired] - 1)
    )
    features[:, 1] = paired
    features[chance, 2 : 2 + q] = counts[chance] / r[chance, None]
    features[:, -1] = chance
    return features


def percent_agreement_from_sums(sums: np.ndarray) -> np.ndarray:
    sums = np.atleast_2d(np.asarray(sums, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = sums[:, 0] / sums[:, 1]
    out[sums[:, 1] <= 0] = np.nan
    return out


def ac1_from_sums(sums: np.ndarray, n_categories: int) -> np.ndarray:
    sums = np.atleast_2d(np.asarray(sums, float))
    q = n_categories
    p_a = percent_agreement_from_sums(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = sums[:, 2 : 2 + q] / sums[:, -1:]
        p_e = (pi * (1.0 - pi)).sum(axis=1) / (q - 1)
        ac1 = (p_a - p_e) / (1.0 - p_e)
    ac1[~np.isfinite(p_a) | (sums[:, -1] <= 0)] = np.nan
    return ac1


def gwet_ac1(
    counts: np.ndarray, n_categories: int | None = None, chance_over: ChanceOver = "rated"
) -> Value:
    """Gwet's AC1 with missing readings allowed.

    ``p_a`` = mean pairwise agreement over cases with >= 2 readings; ``pi_k`` = mean share of
    category k over every case with at least one reading (the default ``chance_over="rated"``,
    Gwet 2014 / irrCAC; ``"paired"`` averages over the cases with >= 2 readings instead, see
    :func:`ac1_features`);
    ``p_e = sum_k pi_k (1 - pi_k) / (q - 1)`` with q the number of categories of the scale
    (``counts.shape[1]`` unless given), also when fewer are used.
    """
    counts = _as_counts(counts)
    q = counts.shape[1] if n_categories is None else int(n_categories)
    if q != counts.shape[1]:
        raise ValueError("n_categories must equal the number of count columns")
    features = ac1_features(counts, chance_over)
    n_paired = int(features[:, 1].sum())
    if n_paired == 0:
        return NotDefined("no case has two or more readings")
    value = float(ac1_from_sums(features.sum(axis=0), q)[0])
    return _point(value, n_paired)


def percent_agreement(counts: np.ndarray) -> Value:
    """Mean over cases with >= 2 readings of the share of agreeing reader pairs."""
    features = ac1_features(counts)
    n_paired = int(features[:, 1].sum())
    if n_paired == 0:
        return NotDefined("no case has two or more readings")
    return _point(float(percent_agreement_from_sums(features.sum(axis=0))[0]), n_paired)


# ------------------------------------------------------------------------------ Cohen's kappa


def kappa_from_tables(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohen's kappa and its asymptotic SE for a stack of q x q tables (rows: rater A).

    Returns ``(kappa, se, n)``; kappa and se are NaN where no pairs exist or chance agreement is 1
    (both raters used one and the same category: sklearn's NaN). The variance is the large-sample
    formula of Fleiss, Cohen & Everitt (1969), as in statsmodels' ``cohens_kappa``.
    """
    t = np.asarray(tables, float)
    n = t.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = t / n[..., None, None]
        row = p.sum(axis=-1)
        col = p.sum(axis=-2)
        p_o = np.trace(p, axis1=-2, axis2=-1)
        p_e = (row * col).sum(axis=-1)
        kappa = (p_o - p_e) / (1.0 - p_e)
        diag = np.diagonal(p, axis1=-2, axis2=-1)
        k1 = (1.0 - kappa)[..., None]
        term_a = (diag * (1.0 - (row + col) * k1) ** 2).sum(axis=-1)
        cross = (col[..., :, None] + row[..., None, :]) ** 2 * p
        term_b = (1.0 - kappa) ** 2 * (
            cross.sum(axis=(-2, -1)) - np.trace(cross, axis1=-2, axis2=-1)
        )
        term_c = (kappa - p_e * (1.0 - kappa)) ** 2
        var = (term_a + term_b - term_c) / ((1.0 - p_e) ** 2 * n)
    bad = (n <= 0) | (1.0 - p_e <= EPS)
    kappa = np.where(bad, np.nan, kappa)
    se = np.where(bad, np.nan, np.sqrt(np.clip(var, 0.0, None)))
    return kappa, se, n.astype(np.int64)


ONE_CATEGORY = "both used only one and the same category, so chance agreement is 1"


def _zero_variance_note(kappa: float) -> str:
    if abs(kappa - 1.0) <= EPS:
        return "no interval: perfect agreement (kappa 1) has a large-sample variance of 0"
    if abs(kappa) <= EPS:
        return (
            "no interval: the large-sample variance is 0 (one rater used a single category, "
            "so kappa is 0 whatever the other answered)"
        )
    return "no interval: the large-sample variance is 0"


def kappa_value(
    kappa: float, se: float, n: int, *, empty: str = "no pairs", one_category: str = ONE_CATEGORY
) -> Value:
    """An Estimate from a kappa and its SE (normal interval clipped to [-1, 1])."""
    if n <= 0:
        return NotDefined(empty)
    if not np.isfinite(kappa):
        return NotDefined(one_category)
    if not se > 0:
        # A zero large-sample variance would give an interval [k, k] claiming a certainty the
        # data do not have.
        return Estimate(kappa, None, None, n, ASYMPTOTIC_KAPPA, note=_zero_variance_note(kappa))
    low, high = kappa - Z95 * se, kappa + Z95 * se
    note = ""
    if low < -1.0 or high > 1.0:
        note = "interval clipped to [-1, 1]"
    return Estimate(kappa, max(low, -1.0), min(high, 1.0), n, ASYMPTOTIC_KAPPA, note=note, se=se)


def cohen_kappa_table(table: np.ndarray) -> Value:
    """Cohen's kappa of one q x q table with its asymptotic SE and 95% interval (statsmodels)."""
    table = np.asarray(table, float)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError("table must be square")
    n = int(table.sum())
    if n == 0:
        return NotDefined("no pairs")
    p_e = float((table.sum(axis=1) / n * table.sum(axis=0) / n).sum())
    if 1.0 - p_e <= EPS:
        return NotDefined(ONE_CATEGORY)
    from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa

    result = _sm_cohens_kappa(table)
    return kappa_value(float(result.kappa), float(result.std_kappa), n)


def pairwise_tables(codes: np.ndarray, n_categories: int) -> np.ndarray:
    """(R x R x q x q) confusion tables of every reader pair over the cases both read.

    One matrix product of the one-hot (cases x readers*q) matrix with itself.
    """
    codes = np.asarray(codes)
    n_cases, n_readers = codes.shape
    onehot = np.zeros((n_cases, n_readers, n_categories), np.float64)
    for k in range(n_categories):
        onehot[:, :, k] = codes == k
    flat = onehot.reshape(n_cases, n_readers * n_categories)
    gram = flat.T @ flat
    tables = gram.reshape(n_readers, n_categories, n_readers, n_categories).transpose(0, 2, 1, 3)
    return np.rint(tables).astype(np.int64)
