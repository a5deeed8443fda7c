"""Case bootstrap by weights: every statistic is a function of weighted per-case feature sums.

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


def percentile_interval(
    point: float,
    replicates: np.ndarray | None,
    n: int,
    method: str,
    note: str = "",
) -> Estimate:
    """Point estimate with the 2.5/97.5 percentiles of the defined (finite) replicates."""
    notes = [note] if note else []
    if replicates is None or replicates.size == 0:
        notes.append("no bootstrap resamples requested, so no interval")
        return Estimate(point, None, None, n, method, note="; ".join(notes))
    finite = replicates[np.isfinite(replicates)]
    undefined = replicates.size - finite.size
    notes.append(
        f"{replicates.size} case-bootstrap resamples (stratified by truth), percentile interval; "
        f"{undefined} undefined"
    )
    if finite.size == 0:
        notes.append("no interval: the statistic is undefined in every resample")
        return Estimate(point, None, None, n, method, note="; ".join(notes))
    low, high = np.percentile(finite, [2.5, 97.5])
    return Estimate(point, float(low), float(high), n, method, note="; ".join(notes))


def bootstrapped(
    point: Value,
    sums: np.ndarray | None,
    statistic: Callable[[np.ndarray], np.ndarray],
    method: str,
) -> Value:
    """Attach a percentile interval to a point estimate from the bootstrap feature sums."""
    if isinstance(point, NotDefined):
        return point
    replicates = None if sums is None else statistic(sums)
    return percentile_interval(point.estimate, replicates, point.n, method)
