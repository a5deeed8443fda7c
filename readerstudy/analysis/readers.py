"""Per-reader proportions (Wilson) and their means over readers (bootstrap intervals)."""

from __future__ import annotations

import numpy as np

from readerstudy.analysis.bootstrap import CASE, DESCRIPTIONS, TWO_WAY, percentile_interval
from readerstudy.analysis.dense import Dense
from readerstudy.analysis.proportions import wilson_many
from readerstudy.analysis.results import (
    AnswerTable,
    CommittedPerformance,
    Estimate,
    NotDefined,
    ReaderAveraged,
    ReaderPerformance,
    Value,
)
from readerstudy.analysis.table import FAKE, MISSING, REAL, UNSURE, ReadingTable

#: The method of each kind of bootstrap interval, by kind.
METHODS = {
    CASE: "case bootstrap (stratified by truth), percentile; readers fixed",
    TWO_WAY: "two-way bootstrap (readers, and cases stratified by truth), percentile",
}
READER_MEAN = "mean over readers of per-reader proportions; "
NAMES = (
    "accuracy",
    "sensitivity",
    "specificity",
    "committed_accuracy",
    "committed_sensitivity",
    "committed_specificity",
    "unsure_rate",
)


def reader_counts(table: ReadingTable) -> np.ndarray:
    """(readers x truth[real, fake] x answer[real, unsure, fake]) counts of first readings."""
    first = table.showing == 1
    index = table.reader[first] * 6 + table.is_fake[first] * 3 + table.answer[first]
    counts = np.bincount(index.astype(np.int64), minlength=table.n_readers * 6)
    return counts.reshape(table.n_readers, 2, 3)


def _rates(counts: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Numerator, denominator and empty-reason of every per-reader proportion."""
    fake, real = counts[..., 1, :], counts[..., 0, :]
    fake_read, real_read = fake.sum(-1), real.sum(-1)
    fake_hit, real_hit = fake[..., FAKE], real[..., REAL]
    fake_committed = fake[..., REAL] + fake[..., FAKE]
    real_committed = real[..., REAL] + real[..., FAKE]
    return {
        "accuracy": (fake_hit + real_hit, fake_read + real_read, "no readings"),
        "sensitivity": (fake_hit, fake_read, "no fake (synthetic) images read"),
        "specificity": (real_hit, real_read, "no real images read"),
        "committed_accuracy": (
            fake_hit + real_hit,
            fake_committed + real_committed,
            "no committed (real/fake) answers: every answer was unsure",
        ),
        "committed_sensitivity": (
            fake_hit,
            fake_committed,
            "no committed (real/fake) answers on fake images",
        ),
        "committed_specificity": (
            real_hit,
            real_committed,
            "no committed (real/fake) answers on real images",
        ),
        "unsure_rate": (
            fake[..., UNSURE] + real[..., UNSURE],
            fake_read + real_read,
            "no readings",
        ),
    }


def _reader(label: str, c: np.ndarray, rates: dict[str, Value]) -> ReaderPerformance:
    return ReaderPerformance(
        reader=label,
        n_readings=int(c.sum()),
        n_fake=int(c[1].sum()),
        n_real=int(c[0].sum()),
        table=AnswerTable(
            fake_answered_real=int(c[1, REAL]),
            fake_answered_unsure=int(c[1, UNSURE]),
            fake_answered_fake=int(c[1, FAKE]),
            real_answered_real=int(c[0, REAL]),
            real_answered_unsure=int(c[0, UNSURE]),
            real_answered_fake=int(c[0, FAKE]),
        ),
        accuracy=rates["accuracy"],
        sensitivity=rates["sensitivity"],
        specificity=rates["specificity"],
        committed=CommittedPerformance(
            accuracy=rates["committed_accuracy"],
            sensitivity=rates["committed_sensitivity"],
            specificity=rates["committed_specificity"],
            unsure_rate=rates["unsure_rate"],
        ),
    )


def readers(table: ReadingTable, counts: np.ndarray) -> tuple[ReaderPerformance, ...]:
    rates = {
        name: wilson_many(num, den, reason) for name, (num, den, reason) in _rates(counts).items()
    }
    return tuple(
        _reader(label, counts[j], {name: values[j] for name, values in rates.items()})
        for j, label in enumerate(table.reader_labels)
    )


def reader_features(dense: Dense) -> np.ndarray:
    """Per case and reader: read, correct, committed (3 blocks of R columns)."""
    codes = dense.codes
    truth_answer = np.where(np.arange(dense.n_cases) < dense.n_fake, FAKE, REAL)[:, None]
    read = codes != MISSING
    correct = codes == truth_answer
    committed = (codes == REAL) | (codes == FAKE)
    return np.concatenate([read, correct, committed], axis=1).astype(np.float32)


def resampled_rates(fake: np.ndarray, real: np.ndarray, n_readers: int) -> dict[str, np.ndarray]:
    """(resamples x readers) rates from the per-stratum sums of :func:`reader_features`."""
    R = n_readers

    def block(s: np.ndarray, k: int) -> np.ndarray:
        return s[:, k * R : (k + 1) * R]

    f_read, f_hit, f_comm = block(fake, 0), block(fake, 1), block(fake, 2)
    r_read, r_hit, r_comm = block(real, 0), block(real, 1), block(real, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "accuracy": (f_hit + r_hit) / (f_read + r_read),
            "sensitivity": f_hit / f_read,
            "specificity": r_hit / r_read,
            "committed_accuracy": (f_hit + r_hit) / (f_comm + r_comm),
            "committed_sensitivity": f_hit / f_comm,
            "committed_specificity": r_hit / r_comm,
            "unsure_rate": 1.0 - (f_comm + r_comm) / (f_read + r_read),
        }


def reader_mean(
    values: np.ndarray, include: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Mean over included readers of the finite values, per row (weighted by how often each
    reader was drawn, for the two-way bootstrap); NaN where none is finite."""
    values = np.where(include[None, :], values, np.nan)
    finite = np.isfinite(values)
    w = np.ones(values.shape) if weights is None else np.asarray(weights, float)
    w = np.where(finite, w, 0.0)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (np.where(finite, values, 0.0) * w).sum(axis=1) / n
    mean[n == 0] = np.nan
    return mean


def _per_reader(performances: tuple[ReaderPerformance, ...]) -> dict[str, list[Value]]:
    return {
        "accuracy": [r.accuracy for r in performances],
        "sensitivity": [r.sensitivity for r in performances],
        "specificity": [r.specificity for r in performances],
        "committed_accuracy": [r.committed.accuracy for r in performances],
        "committed_sensitivity": [r.committed.sensitivity for r in performances],
        "committed_specificity": [r.committed.specificity for r in performances],
        "unsure_rate": [r.committed.unsure_rate for r in performances],
    }


def reader_averaged(
    performances: tuple[ReaderPerformance, ...],
    rates: dict[str, np.ndarray] | None,
    weights: np.ndarray | None = None,
    *,
    kind: str = CASE,
    collapse_cause: str = "",
) -> ReaderAveraged:
    """Means over readers with a defined value; ``rates`` are the resampled per-reader rates
    (None: no bootstrap) and ``weights`` the reader multiplicities of a two-way bootstrap."""
    out: dict[str, Value] = {}
    for name, values in _per_reader(performances).items():
        include = np.array([isinstance(v, Estimate) for v in values], bool)
        if not include.any():
            out[name] = NotDefined(f"no reader has a defined {name.replace('_', ' ')}")
            continue
        point = float(np.mean([v.estimate for v in values if isinstance(v, Estimate)]))
        excluded = int((~include).sum())
        note = f"{excluded} reader(s) without a defined value left out" if excluded else ""
        replicates = None if rates is None else reader_mean(rates[name], include, weights)
        out[name] = percentile_interval(
            point,
            replicates,
            int(include.sum()),
            READER_MEAN + METHODS[kind],
            note,
            kind=kind,
            collapse_cause=collapse_cause,
        )
    return ReaderAveraged(
        accuracy=out["accuracy"],
        sensitivity=out["sensitivity"],
        specificity=out["specificity"],
        committed=CommittedPerformance(
            accuracy=out["committed_accuracy"],
            sensitivity=out["committed_sensitivity"],
            specificity=out["committed_specificity"],
            unsure_rate=out["unsure_rate"],
        ),
    )


__all__ = ["DESCRIPTIONS", "reader_averaged", "reader_counts", "reader_features", "readers"]
