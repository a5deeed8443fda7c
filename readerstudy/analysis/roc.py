"""ROC analysis of the fake-score: Mann-Whitney AUC, DeLong variance, jackknife, OR intervals.

Fake-score of a reading: +confidence for "fake", 0 for "unsure", -confidence for "real", and
missing (NaN) for a committed answer without its confidence. :func:`fake_scores` is the one
definition: the analysis and every export (``readerstudy/exports.py``) use it.

The per-reader AUC is the Mann-Whitney statistic (ties count one half). Its structural components
(DeLong, DeLong & Clarke-Pearson 1988) ``V10_i`` (per fake case) and ``V01_j`` (per real case) give
in O(n log n)

- the DeLong variance ``S10/m + S01/n``, and
- the exact leave-one-case-out (jackknife) AUCs: dropping fake case i gives
  ``(m*A - V10_i)/(m - 1)``, dropping real case j gives ``(n*A - V01_j)/(n - 1)``,

so the Obuchowski-Rockette jackknife covariances of 50 readers x 10,000 cases need no refitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from readerstudy.analysis.results import Estimate, NotDefined, RocPoint, Value
from readerstudy.analysis.table import FAKE, REAL

# scipy.stats.norm.ppf(0.975), written out so that scipy loads only when a statistic needs it
# (the web process imports this module at boot); tests/analysis/test_auc.py pins the value.
Z95 = 1.959963984540054
DELONG = "Mann-Whitney AUC; DeLong SE, normal interval clipped to [0, 1]"
OR_RANDOM = "Obuchowski-Rockette single test, random readers: t interval with Hillis (2007) df"
OR_FIXED = "Obuchowski-Rockette single test, fixed readers: z interval"


def fake_scores(answer: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """+confidence for fake, 0 for unsure, -confidence for real (NaN where confidence is missing
    on a committed answer)."""
    answer = np.asarray(answer)
    confidence = np.asarray(confidence, float)
    score = np.zeros(answer.shape, float)
    score[answer == FAKE] = confidence[answer == FAKE]
    score[answer == REAL] = -confidence[answer == REAL]
    return score


def auc_components(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mann-Whitney AUC and its structural components ``V10`` (per positive), ``V01`` (per
    negative); ``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 else``."""
    pos = np.asarray(pos, float)
    neg = np.asarray(neg, float)
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        raise ValueError("need at least one positive and one negative score")
    neg_sorted = np.sort(neg)
    below = np.searchsorted(neg_sorted, pos, side="left")
    not_above = np.searchsorted(neg_sorted, pos, side="right")
    v10 = (below + 0.5 * (not_above - below)) / n
    pos_sorted = np.sort(pos)
    below_p = np.searchsorted(pos_sorted, neg, side="left")
    not_above_p = np.searchsorted(pos_sorted, neg, side="right")
    v01 = ((m - not_above_p) + 0.5 * (not_above_p - below_p)) / m
    return float(v10.mean()), v10, v01


def mann_whitney_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return auc_components(pos, neg)[0]


def delong_variance(v10: np.ndarray, v01: np.ndarray) -> float:
    """``var(V10)/m + var(V01)/n`` (sample variances); NaN with fewer than 2 of either class."""
    if v10.size < 2 or v01.size < 2:
        return float("nan")
    return float(v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size)


def auc_estimate(pos: np.ndarray, neg: np.ndarray) -> Value:
    """Per-reader AUC with a DeLong interval (normal approximation, clipped to [0, 1])."""
    pos = np.asarray(pos, float)
    neg = np.asarray(neg, float)
    if pos.size == 0 or neg.size == 0:
        missing = "fake" if pos.size == 0 else "real"
        return NotDefined(f"no {missing} images were read with a score")
    auc, v10, v01 = auc_components(pos, neg)
    var = delong_variance(v10, v01)
    n = pos.size + neg.size
    if not np.isfinite(var):
        return Estimate(
            auc,
            None,
            None,
            n,
            DELONG,
            note="DeLong variance needs >= 2 fake and >= 2 real readings",
        )
    if var <= 0.0:
        return Estimate(auc, None, None, n, DELONG, note=zero_variance_note(pos, neg, auc), se=0.0)
    se = float(np.sqrt(var))
    low, high = auc - Z95 * se, auc + Z95 * se
    note = "interval clipped to [0, 1]" if low < 0.0 or high > 1.0 else ""
    return Estimate(auc, max(low, 0.0), min(high, 1.0), n, DELONG, note=note, se=se)


def zero_variance_note(pos: np.ndarray, neg: np.ndarray, auc: float) -> str:
    """Why a DeLong variance is 0, so that no zero-width interval is shown."""
    if np.unique(np.concatenate([pos, neg])).size == 1:
        return (
            "no interval: every fake-score of this reader is the same (all tied), so the AUC is "
            "0.5 by ties alone and has no variance estimate"
        )
    if auc in (0.0, 1.0):
        return "no interval: perfect separation: no variance estimate (DeLong SE is 0)"
    return "no interval: the DeLong variance is 0 (every fake and every real score tied within)"


def jackknife_aucs(auc: float, v10: np.ndarray, v01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact leave-one-case-out AUCs (positives, negatives); needs >= 2 of each class."""
    m, n = v10.size, v01.size
    if m < 2 or n < 2:
        raise ValueError("the jackknife needs at least two positives and two negatives")
    return (m * auc - v10) / (m - 1), (n * auc - v01) / (n - 1)


def roc_points(pos: np.ndarray, neg: np.ndarray) -> tuple[RocPoint, ...]:
    """Empirical ROC points, one per distinct score, from (0, 0) to (1, 1)."""
    pos = np.asarray(pos, float)
    neg = np.asarray(neg, float)
    if pos.size == 0 or neg.size == 0:
        return ()
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    pos_sorted = np.sort(pos)
    neg_sorted = np.sort(neg)
    tpr = (pos.size - np.searchsorted(pos_sorted, thresholds, side="left")) / pos.size
    fpr = (neg.size - np.searchsorted(neg_sorted, thresholds, side="left")) / neg.size
    points = [RocPoint(None, 0.0, 0.0)]
    points += [
        RocPoint(float(t), float(f), float(s))
        for t, f, s in zip(thresholds.tolist(), fpr.tolist(), tpr.tolist())
    ]
    return tuple(points)


@dataclass(frozen=True)
class ORResult:
    """Single-test Obuchowski-Rockette analysis (Hillis 2007)."""

    n_readers: int
    mean_auc: float
    ms_r: float | None
    var_error: float
    cov2: float | None
    df: float | None
    random_readers: Value
    fixed_readers: Value


def jackknife_covariance(jackknife: np.ndarray) -> np.ndarray:
    """Reader x reader jackknife covariance ``(N-1)/N * sum_k (A_(k) - mean)(A_(k) - mean)'``
    over the N left-out cases (rows of ``jackknife``)."""
    jackknife = np.asarray(jackknife, float)
    n_cases = jackknife.shape[0]
    centred = jackknife - jackknife.mean(axis=0)
    return (n_cases - 1) / n_cases * (centred.T @ centred)


def or_single_test(aucs: np.ndarray, jackknife: np.ndarray) -> ORResult:
    """Reader-averaged AUC with OR intervals from reader AUCs and leave-one-case-out AUCs.

    ``jackknife[k, j]`` is reader j's AUC without case k (its plain AUC when j did not read k).
    Var = mean jackknife variance, Cov2 = mean jackknife covariance of different readers,
    MS(R) = sample variance of the reader AUCs (Hillis 2007; OR-DBM MRMC's single-treatment
    output):

    - random readers: ``SE = sqrt((MS(R) + r*max(Cov2, 0)) / r)``,
      ``df = (MS(R) + r*max(Cov2, 0))^2 / (MS(R)^2 / (r - 1))``, t interval;
    - fixed readers: ``SE = sqrt((Var + (r - 1)*max(Cov2, 0)) / r)``, z interval.
    """
    aucs = np.asarray(aucs, float)
    r = aucs.size
    if r == 0:
        raise ValueError("no readers")
    mean = float(aucs.mean())
    cov = jackknife_covariance(jackknife)
    var_error = float(np.mean(np.diag(cov)))
    if r >= 2:
        off = cov[~np.eye(r, dtype=bool)]
        cov2 = float(off.mean())
    else:
        cov2 = None
    cov2_pos = max(cov2, 0.0) if cov2 is not None else 0.0

    se_fixed = float(np.sqrt(max(var_error + (r - 1) * cov2_pos, 0.0) / r))
    fixed = _interval(mean, se_fixed, Z95, r, OR_FIXED, "")

    if r < 2:
        return ORResult(
            r,
            mean,
            None,
            var_error,
            cov2,
            None,
            NotDefined("the random-reader interval needs at least two readers"),
            fixed,
        )
    ms_r = float(aucs.var(ddof=1))
    denominator = ms_r + r * cov2_pos
    se_random = float(np.sqrt(denominator / r))
    if ms_r > 0:
        df = denominator**2 / (ms_r**2 / (r - 1))
        from scipy.stats import t as student_t

        quantile = float(student_t.ppf(0.975, df))
        note = f"df = {df:.2f}"
    else:
        df = None
        quantile = Z95
        note = "all reader AUCs are equal (MS(R) = 0): df is infinite, z interval"
    random = _interval(mean, se_random, quantile, r, OR_RANDOM, note)
    return ORResult(r, mean, ms_r, var_error, cov2, df, random, fixed)


def _interval(mean: float, se: float, quantile: float, n: int, method: str, note: str) -> Estimate:
    if not se > 0.0:
        why = (
            "no interval: the standard error is 0 (every reader's AUC and every leave-one-case-"
            "out AUC are equal, e.g. perfect separation or all scores tied): no variance estimate"
        )
        note = "; ".join(filter(None, [note, why]))
        return Estimate(mean, None, None, n, method, note=note, se=0.0)
    low, high = mean - quantile * se, mean + quantile * se
    if low < 0.0 or high > 1.0:
        note = "; ".join(filter(None, [note, "interval clipped to [0, 1]"]))
    return Estimate(mean, max(low, 0.0), min(high, 1.0), n, method, note=note, se=se)
