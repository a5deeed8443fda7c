"""Statistics of the study designs: 2AFC pairs, HYPE-∞ and HYPE-time, the diagnostic question.

No Django here: the inputs are plain records (``readerstudy.design_results`` loads them), so every
figure can be checked by hand on small data (tests/designs/test_design_statistics.py).

* 2AFC: per reader, the proportion of pairs in which the synthetic image was picked, with the
  exact (Clopper–Pearson) interval and the exact two-sided binomial test against 0.5 (chance);
  reader-averaged: the mean of the readers' proportions with a percentile interval from a
  bootstrap over pairs (each reader's own pairs resampled, since each reader has their own
  pairs), and the exact binomial test of all pairs pooled.
* HYPE-∞ (Zhou et al. 2019): the error rate over real and synthetic images without a time
  limit (a wrong or unsure answer is an error); 50% means indistinguishable. Also the error on
  synthetic images alone (how often a fake passes) and on real ones. Percentile intervals from
  a case bootstrap stratified by truth (all readings of a drawn image kept together).
* HYPE-time: per reader, the threshold exposure = mean of the requested exposures at the
  staircase's reversals, the first ``DISCARD_REVERSALS`` left out as the approach (all kept when
  fewer than two would remain), with a t interval over those reversals; reader-averaged: the
  mean of the readers' thresholds with a t interval over readers.
* Diagnostic question: per finding, sensitivity (answered that finding | the image has it) and
  specificity (did not answer it | the image has another finding) on real images (truth = the
  image's finding) and on synthetic ones (truth = the finding the generator was conditioned on),
  Wilson intervals over readings, and the difference real − synthetic with Newcombe's hybrid
  score interval; a confusion matrix (image finding × answered finding) per truth.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from readerstudy.analysis.proportions import wilson
from readerstudy.analysis.results import Estimate, NotDefined, Value
from readerstudy.staircase import reversals

DISCARD_REVERSALS = 2
CLOPPER_PEARSON = "clopper-pearson exact"
PAIR_BOOTSTRAP = "pair bootstrap (within readers), percentile"
CASE_BOOTSTRAP = "case bootstrap (stratified by truth), percentile"
T_INTERVAL = "t interval"
NEWCOMBE = "newcombe hybrid score (method 10)"


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class PairRecord:
    reader: str
    pair: int  # the slot id: one pair of one reader
    correct: bool  # the synthetic image was the one picked


@dataclass(frozen=True)
class ImageRecord:
    reader: str
    case: int
    synthetic: bool
    correct: bool  # fake for a synthetic image, real for a real one (unsure is wrong)


@dataclass(frozen=True)
class ExposureRecord:
    reader: str
    position: int
    requested_ms: int
    achieved_ms: float | None
    correct: bool


@dataclass(frozen=True)
class FindingRecord:
    reader: str
    synthetic: bool
    image_finding: str  # for synthetic images: the generator's conditioning finding
    answered: str


# ------------------------------------------------------------------------------- 2AFC


@dataclass(frozen=True)
class ReaderPairs:
    reader: str
    n_pairs: int
    n_correct: int
    proportion_correct: Value
    p_value: float | None  # exact two-sided binomial test against 0.5


@dataclass(frozen=True)
class PairAnalysis:
    readers: tuple[ReaderPairs, ...]
    reader_averaged: Value
    n_pairs: int
    n_correct: int
    pooled_p_value: float | None


def exact_proportion(count: int, n: int) -> Value:
    if n <= 0:
        return NotDefined("no pairs answered")
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(count, n, alpha=0.05, method="beta")
    return Estimate(count / n, float(low), float(high), n, CLOPPER_PEARSON)


def exact_p(count: int, n: int) -> float | None:
    from scipy.stats import binomtest

    return float(binomtest(count, n, 0.5).pvalue) if n > 0 else None


def analyse_pairs(records: Sequence[PairRecord], n_bootstrap: int = 1000, seed: int = 0):
    by_reader: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        by_reader[record.reader].append(record.correct)
    readers = tuple(
        ReaderPairs(name, len(v), sum(v), exact_proportion(sum(v), len(v)), exact_p(sum(v), len(v)))
        for name, v in sorted(by_reader.items())
    )
    n, k = len(records), sum(r.correct for r in records)
    return PairAnalysis(readers, _reader_mean(by_reader, n_bootstrap, seed), n, k, exact_p(k, n))


def _reader_mean(by_reader: dict[str, list[bool]], n_bootstrap: int, seed: int) -> Value:
    if not by_reader:
        return NotDefined("no pairs answered")
    arrays = [np.asarray(v, float) for v in by_reader.values()]
    point = float(np.mean([a.mean() for a in arrays]))
    if n_bootstrap <= 0:
        return Estimate(
            point,
            None,
            None,
            len(arrays),
            PAIR_BOOTSTRAP,
            note="no bootstrap resamples requested, so no interval",
        )
    rng = np.random.default_rng(seed)
    means = np.zeros(n_bootstrap)
    for values in arrays:
        draws = rng.integers(0, values.size, size=(n_bootstrap, values.size))
        means += values[draws].mean(axis=1)
    low, high = np.percentile(means / len(arrays), [2.5, 97.5])
    return Estimate(
        point,
        float(low),
        float(high),
        len(arrays),
        PAIR_BOOTSTRAP,
        note=f"{n_bootstrap} resamples; n = readers",
    )


# ------------------------------------------------------------------------------ HYPE-∞


@dataclass(frozen=True)
class HypeInfinity:
    score: Value  # error rate over all images (real and synthetic)
    synthetic_error: Value  # share of synthetic readings not called fake
    real_error: Value  # share of real readings not called real
    n_readings: int


def analyse_hype_infinity(
    records: Sequence[ImageRecord], n_bootstrap: int = 1000, seed: int = 0
) -> HypeInfinity:
    cases: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in records:
        cases[record.case].append(record)
    # Per case: [errors, readings] for synthetic and for real images.
    strata: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    for rows in cases.values():
        strata[rows[0].synthetic].append((sum(not r.correct for r in rows), len(rows)))
    fake = np.asarray(strata[True], float).reshape(-1, 2)
    real = np.asarray(strata[False], float).reshape(-1, 2)
    fake_sums: np.ndarray | None = None
    real_sums: np.ndarray | None = None
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        fake_sums = _resampled_sums(fake, n_bootstrap, rng)
        real_sums = _resampled_sums(real, n_bootstrap, rng)

    def slot(parts, sums_of, reason):
        errors = sum(p[:, 0].sum() for p in parts)
        total = sum(p[:, 1].sum() for p in parts)
        if total == 0:
            return NotDefined(reason)
        if sums_of is None:
            return Estimate(
                errors / total,
                None,
                None,
                int(total),
                CASE_BOOTSTRAP,
                note="no bootstrap resamples requested, so no interval",
            )
        sums = sum(sums_of)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicate = sums[:, 0] / sums[:, 1]
        low, high = np.percentile(replicate[np.isfinite(replicate)], [2.5, 97.5])
        return Estimate(
            errors / total,
            float(low),
            float(high),
            int(total),
            CASE_BOOTSTRAP,
            note=f"{n_bootstrap} resamples; n = readings",
        )

    return HypeInfinity(
        score=slot(
            [fake, real], None if fake_sums is None else [fake_sums, real_sums], "no readings"
        ),
        synthetic_error=slot(
            [fake], None if fake_sums is None else [fake_sums], "no readings of synthetic images"
        ),
        real_error=slot(
            [real], None if real_sums is None else [real_sums], "no readings of real images"
        ),
        n_readings=len(records),
    )


def _resampled_sums(rows: np.ndarray, n_bootstrap: int, rng) -> np.ndarray:
    if rows.shape[0] == 0:
        return np.zeros((n_bootstrap, 2))
    draws = rng.integers(0, rows.shape[0], size=(n_bootstrap, rows.shape[0]))
    return rows[draws].sum(axis=1)


# ------------------------------------------------------------------------------ HYPE-time


@dataclass(frozen=True)
class ReaderThreshold:
    reader: str
    n_trials: int
    n_reversals: int
    threshold_ms: Value
    final_exposure_ms: int | None
    accuracy: Value
    median_timing_error_ms: float | None  # median |achieved − requested|
    max_timing_error_ms: float | None


@dataclass(frozen=True)
class HypeTime:
    readers: tuple[ReaderThreshold, ...]
    mean_threshold_ms: Value


def t_mean(values: Sequence[float], what: str) -> Value:
    if len(values) < 2:
        return NotDefined(f"fewer than two {what}")
    array = np.asarray(values, float)
    mean = float(array.mean())
    se = float(array.std(ddof=1) / math.sqrt(array.size))
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.975, array.size - 1)) * se
    return Estimate(
        mean, mean - half, mean + half, array.size, T_INTERVAL, se=se, note=f"n = {what}"
    )


def reader_threshold(reader: str, trials: Sequence[ExposureRecord]) -> ReaderThreshold:
    trials = sorted(trials, key=lambda r: r.position)
    turns = reversals([r.requested_ms for r in trials])
    kept = turns[DISCARD_REVERSALS:] if len(turns) - DISCARD_REVERSALS >= 2 else turns
    errors = [abs(r.achieved_ms - r.requested_ms) for r in trials if r.achieved_ms is not None]
    return ReaderThreshold(
        reader=reader,
        n_trials=len(trials),
        n_reversals=len(turns),
        threshold_ms=t_mean(kept, "staircase reversals"),
        final_exposure_ms=trials[-1].requested_ms if trials else None,
        accuracy=wilson(sum(r.correct for r in trials), len(trials)),
        median_timing_error_ms=float(np.median(errors)) if errors else None,
        max_timing_error_ms=float(max(errors)) if errors else None,
    )


def analyse_hype_time(records: Sequence[ExposureRecord]) -> HypeTime:
    by_reader: dict[str, list[ExposureRecord]] = defaultdict(list)
    for record in records:
        by_reader[record.reader].append(record)
    readers = tuple(reader_threshold(name, rows) for name, rows in sorted(by_reader.items()))
    defined = [r.threshold_ms.estimate for r in readers if isinstance(r.threshold_ms, Estimate)]
    return HypeTime(readers, t_mean(defined, "readers with a threshold"))


# ------------------------------------------------------------------------ diagnostic question


@dataclass(frozen=True)
class FindingAccuracy:
    finding: str
    real_sensitivity: Value
    real_specificity: Value
    synthetic_sensitivity: Value
    synthetic_specificity: Value
    sensitivity_difference: Value  # real − synthetic
    specificity_difference: Value


@dataclass(frozen=True)
class ConfusionCell:
    truth: str  # "real" or "synthetic"
    image_finding: str
    answered: str
    count: int


@dataclass(frozen=True)
class FindingAnalysis:
    findings: tuple[FindingAccuracy, ...]
    confusion: tuple[ConfusionCell, ...]
    n_readings: int


def _norm(text: str) -> str:
    return text.strip().lower()


def newcombe_difference(k1: int, n1: int, k2: int, n2: int) -> Value:
    """p1 − p2 with Newcombe's hybrid score interval from the two Wilson intervals."""
    first, second = wilson(k1, n1), wilson(k2, n2)
    if not (isinstance(first, Estimate) and isinstance(second, Estimate)):
        return NotDefined("a proportion of the difference is not defined")
    low1, high1, low2, high2 = first.ci_low, first.ci_high, second.ci_low, second.ci_high
    if low1 is None or high1 is None or low2 is None or high2 is None:
        return NotDefined("a proportion of the difference has no interval")
    p1, p2 = first.estimate, second.estimate
    low = p1 - p2 - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2)
    return Estimate(p1 - p2, max(-1.0, low), min(1.0, high), n1 + n2, NEWCOMBE)


def _counts(rows: Sequence[FindingRecord], finding: str) -> tuple[int, int, int, int]:
    """(true positives, with the finding, true negatives, without it)."""
    key = _norm(finding)
    has = [r for r in rows if _norm(r.image_finding) == key]
    hasnt = [r for r in rows if _norm(r.image_finding) != key]
    tp = sum(_norm(r.answered) == key for r in has)
    tn = sum(_norm(r.answered) != key for r in hasnt)
    return tp, len(has), tn, len(hasnt)


def analyse_findings(
    records: Sequence[FindingRecord], vocabulary: Sequence[str]
) -> FindingAnalysis:
    real = [r for r in records if not r.synthetic]
    fake = [r for r in records if r.synthetic]
    findings = []
    for finding in vocabulary:
        rtp, rpos, rtn, rneg = _counts(real, finding)
        ftp, fpos, ftn, fneg = _counts(fake, finding)
        findings.append(
            FindingAccuracy(
                finding=finding,
                real_sensitivity=wilson(rtp, rpos, empty_reason=f"no real image with {finding}"),
                real_specificity=wilson(rtn, rneg, empty_reason=f"no real image without {finding}"),
                synthetic_sensitivity=wilson(
                    ftp, fpos, empty_reason=f"no synthetic image of {finding}"
                ),
                synthetic_specificity=wilson(
                    ftn, fneg, empty_reason="no synthetic image of another finding"
                ),
                sensitivity_difference=newcombe_difference(rtp, rpos, ftp, fpos),
                specificity_difference=newcombe_difference(rtn, rneg, ftn, fneg),
            )
        )
    cells: dict[tuple[str, str, str], int] = defaultdict(int)
    for r in records:
        cells[("synthetic" if r.synthetic else "real", r.image_finding, r.answered)] += 1
    confusion = tuple(ConfusionCell(*key, count) for key, count in sorted(cells.items()))
    return FindingAnalysis(tuple(findings), confusion, len(records))
