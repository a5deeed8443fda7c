"""Case bootstrap by weights: every statistic is a function of weighted per-case feature sums.

The case bootstrap keeps the readers fixed: its intervals describe these readers reading new
cases (a fixed-reader interval). The two-way bootstrap (:func:`two_way_weights`) also draws the
readers with replacement, for intervals that generalise to other readers.

A resample draws cases with replacement (stratified by truth: fake cases among fake cases, real
among real, so every resample has the study's numbers of each) and keeps all readers' readings of a
drawn case together. Drawing case ``c`` ``w_c`` times multiplies its feature row by ``w_c``, so the
feature sums of B resamples are one matrix product ``W (B x cases) @ F (cases x features)``.
Counts are exact in float32 (they stay far below 2**24), which halves the cost of the product.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from readerstudy.analysis.results import Estimate, NotDefined, Value

CHUNK = 128


def case_weights(n_cases: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples x n_cases) multiplicities of cases drawn with replacement.

    Each row sums to ``n_cases``.
    """
    if n_cases == 0:
        return np.zeros((n_resamples, 0), np.float32)
    draws = rng.integers(0, n_cases, size=(n_resamples, n_cases))
    draws += (np.arange(n_resamples) * n_cases)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_resamples * n_cases)
    return counts.reshape(n_resamples, n_cases).astype(np.float32)


def bootstrap_sums(
    features: np.ndarray, strata: list[slice], n_resamples: int, seed: int
) -> list[np.ndarray]:
    """Feature column sums of ``n_resamples`` case resamples, resampling within each stratum.

    ``strata`` are row slices of ``features`` (cases ordered by stratum). Returns one float64
    (n_resamples x n_features) array of sums per stratum; add them for all-case sums.
    Deterministic for a given seed.
    """
    features = np.asarray(features, np.float32)
    rng = np.random.default_rng(seed)
    out = [np.zeros((n_resamples, features.shape[1]), np.float64) for _ in strata]
    for start in range(0, n_resamples, CHUNK):
        stop = min(start + CHUNK, n_resamples)
        for stratum, sums in zip(strata, out):
            block = features[stratum]
            if block.shape[0] == 0:
                continue
            weights = case_weights(block.shape[0], stop - start, rng)
            sums[start:stop] = weights @ block
    return out


CASE = "case"
TWO_WAY = "two-way"
KINDS = (CASE, TWO_WAY)
#: How each kind of resample is described in notes.
DESCRIPTIONS = {
    CASE: "case-bootstrap resamples (stratified by truth; readers fixed: a fixed-reader interval)",
    TWO_WAY: "two-way bootstrap resamples (readers drawn with replacement, and cases within "
    "truth strata: a random-reader interval)",
}


def percentile_interval(
    point: float,
    replicates: np.ndarray | None,
    n: int,
    method: str,
    note: str = "",
    *,
    kind: str = CASE,
    collapse_cause: str = "",
) -> Estimate:
    """Point estimate with the 2.5/97.5 percentiles of the defined (finite) replicates.

    An interval of zero width (every resample gave the same value) is no interval: it is
    reported without ends, with a note naming the cause (``collapse_cause`` when the caller
    knows it, e.g. one case per truth stratum)."""
    notes = [note] if note else []
    if replicates is None or replicates.size == 0:
        notes.append("no bootstrap resamples requested, so no interval")
        return Estimate(point, None, None, n, method, note="; ".join(notes))
    finite = replicates[np.isfinite(replicates)]
    undefined = replicates.size - finite.size
    notes.append(
        f"{replicates.size} {DESCRIPTIONS[kind]}, percentile interval; {undefined} undefined"
    )
    if finite.size == 0:
        notes.append("no interval: the statistic is undefined in every resample")
        return Estimate(point, None, None, n, method, note="; ".join(notes))
    low, high = np.percentile(finite, [2.5, 97.5])
    if high - low <= 1e-12 * max(1.0, abs(high)):
        cause = collapse_cause or "the resamples do not vary"
        notes.append(
            f"no interval: every defined resample gave {float(low):.6g} ({cause}), so the "
            "bootstrap has no variance estimate"
        )
        return Estimate(point, None, None, n, method, note="; ".join(notes))
    return Estimate(point, float(low), float(high), n, method, note="; ".join(notes))


def bootstrapped(
    point: Value,
    sums: np.ndarray | None,
    statistic: Callable[[np.ndarray], np.ndarray],
    method: str,
    *,
    kind: str = CASE,
    collapse_cause: str = "",
) -> Value:
    """Attach a percentile interval to a point estimate from the bootstrap feature sums (or
    from ready replicates when ``statistic`` is None)."""
    if isinstance(point, NotDefined):
        return point
    replicates = None if sums is None else statistic(sums)
    return percentile_interval(
        point.estimate, replicates, point.n, method, kind=kind, collapse_cause=collapse_cause
    )


def two_way_weights(
    n_readers: int, strata_sizes: list[int], n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reader and case multiplicities of ``n_resamples`` two-way resamples.

    Per resample, in this order from one generator: ``n_readers`` readers drawn with
    replacement, then the cases of each truth stratum drawn with replacement within it. Returns
    ``(readers: B x n_readers, cases: B x sum(strata_sizes))`` float arrays of counts. A
    brute-force check can replay the same draws from the same seed.
    """
    rng = np.random.default_rng(seed)
    readers = np.zeros((n_resamples, n_readers))
    cases = np.zeros((n_resamples, sum(strata_sizes)))
    for b in range(n_resamples):
        readers[b] = np.bincount(rng.integers(0, n_readers, n_readers), minlength=n_readers)
        start = 0
        for size in strata_sizes:
            if size:
                drawn = rng.integers(0, size, size)
                cases[b, start : start + size] = np.bincount(drawn, minlength=size)
            start += size
    return readers, cases
