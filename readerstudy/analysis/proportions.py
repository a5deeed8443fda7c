"""Proportions with 95% Wilson score intervals."""

from __future__ import annotations

import numpy as np

from readerstudy.analysis.results import Estimate, NotDefined, Value

WILSON = "wilson"


def wilson_arrays(count: np.ndarray, nobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised 95% Wilson interval ends; NaN where ``nobs`` is 0.

    statsmodels' ``proportion_confint`` defaults to the Wald ("normal") method, so the method is
    always passed explicitly.
    """
    count = np.asarray(count, float)
    nobs = np.asarray(nobs, float)
    low = np.full(np.broadcast(count, nobs).shape, np.nan)
    high = low.copy()
    ok = np.broadcast_to(nobs > 0, low.shape)
    if ok.any():
        c = np.broadcast_to(count, low.shape)[ok]
        n = np.broadcast_to(nobs, low.shape)[ok]
        from statsmodels.stats.proportion import proportion_confint

        lo, hi = proportion_confint(c, n, alpha=0.05, method="wilson")
        low[ok] = np.clip(lo, 0.0, 1.0)
        high[ok] = np.clip(hi, 0.0, 1.0)
    return low, high


def wilson(count: int, nobs: int, *, empty_reason: str = "no observations") -> Value:
    """``count / nobs`` with its 95% Wilson interval, or NotDefined when ``nobs`` is 0."""
    count, nobs = int(count), int(nobs)
    if nobs <= 0:
        return NotDefined(empty_reason)
    if not 0 <= count <= nobs:
        raise ValueError(f"count {count} out of range for {nobs} observations")
    low, high = wilson_arrays(np.array([count]), np.array([nobs]))
    return Estimate(count / nobs, float(low[0]), float(high[0]), nobs, WILSON)


def wilson_many(count: np.ndarray, nobs: np.ndarray, empty_reason: str) -> list[Value]:
    """:func:`wilson` for many proportions at once (one statsmodels call)."""
    count = np.asarray(count, np.int64)
    nobs = np.asarray(nobs, np.int64)
    low, high = wilson_arrays(count, nobs)
    out: list[Value] = []
    for c, n, lo, hi in zip(count.tolist(), nobs.tolist(), low.tolist(), high.tolist()):
        out.append(NotDefined(empty_reason) if n <= 0 else Estimate(c / n, lo, hi, n, WILSON))
    return out
