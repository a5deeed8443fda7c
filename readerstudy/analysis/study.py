"""The one entry point: :func:`analyse` a :class:`ReadingTable` into a :class:`StudyAnalysis`.

The statistics live in their own modules: per-reader figures and their means
(:mod:`~readerstudy.analysis.readers`), ROC (:mod:`~readerstudy.analysis.roc_study`), agreement
(:mod:`~readerstudy.analysis.agreement_study`); cases, groups and intra-reader consistency are
here.
"""

from __future__ import annotations

import numpy as np

from readerstudy.analysis import agreement as ag
from readerstudy.analysis import agreement_study as agreement
from readerstudy.analysis import readers as per_reader
from readerstudy.analysis.bootstrap import CASE, KINDS, TWO_WAY, bootstrap_sums, two_way_weights
from readerstudy.analysis.dense import Dense, dense_matrices
from readerstudy.analysis.proportions import wilson, wilson_many
from readerstudy.analysis.results import (
    CaseVotes,
    Estimate,
    GroupRate,
    IntraReaderAnalysis,
    NotDefined,
    ReaderConsistency,
    StudyAnalysis,
    StudySummary,
    Value,
)
from readerstudy.analysis.roc_study import confidence_collected, roc_analysis
from readerstudy.analysis.table import FAKE, MISSING, REAL, UNSURE, ReadingTable

ALL_GROUPING = "all"
TRUTH = ("real", "synthetic")


# ------------------------------------------------------------------------------ cases and groups


def _cases(table: ReadingTable, dense: Dense) -> tuple[CaseVotes, ...]:
    counts = ag.category_counts(dense.codes, 3)
    order = np.argsort(dense.case_ids, kind="stable")
    shares = wilson_many(counts[order, FAKE], counts[order].sum(axis=1), "no readings")
    out = []
    for row, share in zip(order.tolist(), shares):
        out.append(
            CaseVotes(
                case=table.case_labels[int(dense.case_ids[row])],
                truth=TRUTH[1] if row < dense.n_fake else TRUTH[0],
                n_real=int(counts[row, REAL]),
                n_unsure=int(counts[row, UNSURE]),
                n_fake=int(counts[row, FAKE]),
                share_fake=share,
            )
        )
    return tuple(out)


def _groups(table: ReadingTable) -> tuple[GroupRate, ...]:
    first = table.showing == 1
    case = table.case[first]
    is_fake = table.is_fake[first].astype(np.int64)
    answer = table.answer[first].astype(np.int64)
    case_is_fake = np.zeros(table.n_cases, np.int64)
    case_is_fake[table.case] = table.is_fake
    case_read = np.zeros(table.n_cases, bool)
    case_read[case] = True
    groupings = {ALL_GROUPING: (ALL_GROUPING,) * table.n_cases, **table.case_groups}
    out: list[GroupRate] = []
    for grouping, values in groupings.items():
        names, codes = np.unique(np.array(values, dtype=object).astype(str), return_inverse=True)
        g = len(names)
        readings = np.bincount(codes[case] * 6 + is_fake * 3 + answer, minlength=g * 6)
        readings = readings.reshape(g, 2, 3)
        n_cases = np.bincount(
            codes[case_read] * 2 + case_is_fake[case_read], minlength=g * 2
        ).reshape(g, 2)
        for k, name in enumerate(names.tolist()):
            for truth in (1, 0):
                c = readings[k, truth]
                n = int(c.sum())
                if n == 0:
                    continue
                hit = REAL if truth == 1 else FAKE
                out.append(
                    GroupRate(
                        grouping=grouping,
                        group=name,
                        truth=TRUTH[truth],
                        measure="fooling_rate" if truth == 1 else "answered_fake_rate",
                        n_cases=int(n_cases[k, truth]),
                        n_readings=n,
                        n_answered_real=int(c[REAL]),
                        n_answered_unsure=int(c[UNSURE]),
                        n_answered_fake=int(c[FAKE]),
                        rate=wilson(int(c[hit]), n),
                        unsure_rate=wilson(int(c[UNSURE]), n),
                    )
                )
    return tuple(out)


# ---------------------------------------------------------------------------------- intra-reader


ONE_ANSWER = "all first and repeat readings used one and the same answer, so chance agreement is 1"


def _repeat_tables(table: ReadingTable, dense: Dense, row_of_case: np.ndarray) -> np.ndarray:
    """(readers x 3 x 3) tables of first answer x repeat answer."""
    repeat = table.showing == 2
    reader = table.reader[repeat]
    rows = row_of_case[table.case[repeat]]
    second = table.answer[repeat].astype(np.int64)
    first = np.full(reader.size, MISSING, np.int64)
    has_row = rows >= 0
    first[has_row] = dense.codes[rows[has_row], reader[has_row]]
    paired = first != MISSING
    R = table.n_readers
    index = reader[paired] * 9 + first[paired] * 3 + second[paired]
    return np.bincount(index, minlength=R * 9).reshape(R, 3, 3)


def _pooled_kappa(tables: np.ndarray) -> Value:
    pk, pse, pn = ag.kappa_from_tables(tables.sum(axis=0))
    pooled = ag.kappa_value(
        float(pk), float(pse), int(pn), empty="no repeated cases", one_category=ONE_ANSWER
    )
    if not isinstance(pooled, Estimate):
        return pooled
    note = "all readers' pairs pooled in one table; the SE treats pairs as independent"
    return Estimate(
        pooled.estimate,
        pooled.ci_low,
        pooled.ci_high,
        pooled.n,
        pooled.method,
        note="; ".join(filter(None, [note, pooled.note])),
        se=pooled.se,
    )


def _mean_kappa(readers: tuple[ReaderConsistency, ...]) -> Value:
    defined = [r.kappa.estimate for r in readers if isinstance(r.kappa, Estimate)]
    if not defined:
        return NotDefined("no reader has a defined intra-reader kappa")
    return Estimate(
        float(np.mean(defined)),
        None,
        None,
        len(defined),
        "mean of the defined per-reader kappas",
        note="point estimate only",
    )


def _intra_reader(
    table: ReadingTable, dense: Dense, row_of_case: np.ndarray
) -> IntraReaderAnalysis:
    tables = _repeat_tables(table, dense, row_of_case)
    kappa, se, n = ag.kappa_from_tables(tables)
    agree = np.trace(tables, axis1=1, axis2=2)
    agreements = wilson_many(agree, n, "no repeated cases")
    readers = tuple(
        ReaderConsistency(
            label,
            int(n[j]),
            ag.kappa_value(
                float(kappa[j]),
                float(se[j]),
                int(n[j]),
                empty="no repeated cases",
                one_category=ONE_ANSWER,
            ),
            agreements[j],
        )
        for j, label in enumerate(table.reader_labels)
    )
    return IntraReaderAnalysis(
        readers=readers,
        mean_kappa=_mean_kappa(readers),
        pooled_kappa=_pooled_kappa(tables),
        pooled_percent_agreement=wilson(
            int(agree.sum()), int(n.sum()), empty_reason="no repeated cases"
        ),
    )


# ----------------------------------------------------------------------------------- bootstrap


def _case_bootstrap(dense: Dense, inputs, perf, n_bootstrap: int, seed: int):
    """Reader-averaged figures and agreement with case-bootstrap (fixed-reader) intervals."""
    features = [per_reader.reader_features(dense)] + [d.features()[0] for d in inputs]
    widths = np.cumsum([0] + [f.shape[1] for f in features])
    rates = reps = None
    if n_bootstrap > 0 and dense.n_cases > 0:
        stacked = np.concatenate(features, axis=1).astype(np.float32)
        fake, real = bootstrap_sums(stacked, dense.strata, n_bootstrap, seed)
        R3 = widths[1]
        rates = per_reader.resampled_rates(fake[:, :R3], real[:, :R3], dense.codes.shape[1])
        total = fake + real
        reps = [
            agreement.replicates(d, total[:, widths[k + 1] : widths[k + 2]], d.features()[1])
            for k, d in enumerate(inputs)
        ]
    return rates, None, reps or [None, None]


def _two_way_bootstrap(dense: Dense, inputs, n_bootstrap: int, seed: int):
    """The same figures with two-way bootstrap (random-reader) intervals: readers with
    readings drawn with replacement, then cases within truth strata (see `two_way_weights`)."""
    active = np.flatnonzero(dense.active)
    if n_bootstrap == 0 or dense.n_cases == 0 or active.size == 0:
        return None, None, [None, None]
    drawn, cases = two_way_weights(active.size, dense.strata_sizes, n_bootstrap, seed)
    readers = np.zeros((n_bootstrap, dense.codes.shape[1]))
    readers[:, active] = drawn
    features = per_reader.reader_features(dense)
    fake_rows, real_rows = dense.strata
    fake = cases[:, fake_rows] @ features[fake_rows]
    real = cases[:, real_rows] @ features[real_rows]
    rates = per_reader.resampled_rates(fake, real, dense.codes.shape[1])
    reps = [agreement.two_way_replicates(d, readers, cases) for d in inputs]
    return rates, readers, reps


# ----------------------------------------------------------------------------------- entry point


def _summary(
    table: ReadingTable, dense: Dense, n_bootstrap: int, seed: int, kind: str
) -> StudySummary:
    first = table.showing == 1
    return StudySummary(
        positive_class="fake (synthetic)",
        n_readers=table.n_readers,
        n_readers_with_readings=int(dense.active.sum()),
        n_cases=table.n_cases,
        n_cases_read=dense.n_cases,
        n_fake_cases=dense.n_fake,
        n_real_cases=dense.n_cases - dense.n_fake,
        n_readings=int(first.sum()),
        n_repeat_readings=int((~first).sum()),
        confidence_collected=confidence_collected(table),
        fully_crossed=bool(dense.n_cases > 0 and (dense.codes[:, dense.active] != MISSING).all()),
        n_bootstrap=n_bootstrap,
        seed=int(seed),
        bootstrap=kind,
    )


def analyse(
    table: ReadingTable, *, n_bootstrap: int = 1000, seed: int = 0, bootstrap: str = CASE
) -> StudyAnalysis:
    """Compute every statistic of the study (see ``docs/statistics.md``).

    Primary statistics use first showings only; repeats feed intra-reader consistency only.
    ``n_bootstrap`` resamples (0: no bootstrap intervals) drawn from ``seed`` give the intervals
    of the reader-averaged figures and of agreement: ``bootstrap="case"`` resamples cases with
    the readers fixed (a fixed-reader interval), ``"two-way"`` also resamples the readers (a
    random-reader interval).
    """
    if not isinstance(table, ReadingTable):
        raise TypeError("analyse() takes a ReadingTable")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise ValueError("n_bootstrap must be a non-negative integer")
    if bootstrap not in KINDS:
        raise ValueError(f"bootstrap must be one of {KINDS}")
    n_bootstrap = int(n_bootstrap)
    dense, row_of_case = dense_matrices(table)
    perf = per_reader.readers(table, per_reader.reader_counts(table))
    inputs = agreement.agreement_inputs(dense)
    if bootstrap == TWO_WAY:
        rates, weights, reps = _two_way_bootstrap(dense, inputs, n_bootstrap, seed)
    else:
        rates, weights, reps = _case_bootstrap(dense, inputs, perf, n_bootstrap, seed)
    options = {"kind": bootstrap, "collapse_cause": dense.collapse_cause()}
    labels = tuple(table.reader_labels)
    return StudyAnalysis(
        summary=_summary(table, dense, n_bootstrap, seed, bootstrap),
        readers=perf,
        reader_averaged=per_reader.reader_averaged(perf, rates, weights, **options),
        roc=roc_analysis(table, dense),
        agreement=agreement.agreement(inputs[0], reps[0], labels, **options),
        agreement_committed=agreement.agreement(inputs[1], reps[1], labels, **options),
        cases=_cases(table, dense),
        groups=_groups(table),
        intra_reader=_intra_reader(table, dense, row_of_case),
    )
