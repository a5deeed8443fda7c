"""The one entry point: :func:`analyse` a :class:`ReadingTable` into a :class:`StudyAnalysis`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from readerstudy.analysis import agreement as ag
from readerstudy.analysis.bootstrap import bootstrap_sums, bootstrapped, percentile_interval
from readerstudy.analysis.proportions import wilson, wilson_many
from readerstudy.analysis.results import (
    AgreementAnalysis,
    AnswerTable,
    CaseVotes,
    CommittedPerformance,
    Estimate,
    GroupRate,
    IntraReaderAnalysis,
    NotDefined,
    PairKappa,
    ReaderAveraged,
    ReaderConsistency,
    ReaderPerformance,
    ReaderRoc,
    RocAnalysis,
    StudyAnalysis,
    StudySummary,
    Value,
)
from readerstudy.analysis.roc import (
    auc_components,
    auc_estimate,
    fake_scores,
    jackknife_aucs,
    or_single_test,
    roc_points,
)
from readerstudy.analysis.table import FAKE, MISSING, REAL, UNSURE, ReadingTable

BOOTSTRAP = "case bootstrap (stratified by truth), percentile"
READER_MEAN = "mean over readers of per-reader proportions; " + BOOTSTRAP
ALL_GROUPING = "all"
TRUTH = ("real", "synthetic")


@dataclass
class _Dense:
    """First showings as dense (cases x readers) matrices; case rows ordered fakes first."""

    case_ids: np.ndarray  # case code of each row
    n_fake: int  # rows [0, n_fake) are fake cases
    codes: np.ndarray  # int8 answer codes, MISSING where not read
    scores: np.ndarray  # float fake-scores, NaN where not read
    active: np.ndarray  # bool per reader: has at least one first reading

    @property
    def n_cases(self) -> int:
        return int(self.case_ids.size)

    @property
    def strata(self) -> list[slice]:
        return [slice(0, self.n_fake), slice(self.n_fake, self.n_cases)]


def _dense(table: ReadingTable) -> tuple[_Dense, np.ndarray]:
    first = table.showing == 1
    reader = table.reader[first]
    case = table.case[first]
    case_is_fake = np.zeros(table.n_cases, bool)
    case_is_fake[table.case] = table.is_fake
    read = np.unique(case)
    order = read[np.argsort(~case_is_fake[read], kind="stable")]
    row_of_case = np.full(table.n_cases, -1, np.int64)
    row_of_case[order] = np.arange(order.size)
    codes = np.full((order.size, table.n_readers), MISSING, np.int8)
    scores = np.full((order.size, table.n_readers), np.nan)
    rows = row_of_case[case]
    codes[rows, reader] = table.answer[first]
    scores[rows, reader] = fake_scores(table.answer[first], table.confidence[first])
    active = np.zeros(table.n_readers, bool)
    active[reader] = True
    dense = _Dense(order, int(case_is_fake[order].sum()), codes, scores, active)
    return dense, row_of_case


# ------------------------------------------------------------------------- per-reader figures


def _reader_counts(table: ReadingTable) -> np.ndarray:
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
            "no committed (real/fake) answers",
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


def _readers(table: ReadingTable, counts: np.ndarray) -> tuple[ReaderPerformance, ...]:
    rates = {
        name: wilson_many(num, den, reason) for name, (num, den, reason) in _rates(counts).items()
    }
    out = []
    for j, label in enumerate(table.reader_labels):
        c = counts[j]
        out.append(
            ReaderPerformance(
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
                accuracy=rates["accuracy"][j],
                sensitivity=rates["sensitivity"][j],
                specificity=rates["specificity"][j],
                committed=CommittedPerformance(
                    accuracy=rates["committed_accuracy"][j],
                    sensitivity=rates["committed_sensitivity"][j],
                    specificity=rates["committed_specificity"][j],
                    unsure_rate=rates["unsure_rate"][j],
                ),
            )
        )
    return tuple(out)


def _reader_features(dense: _Dense) -> np.ndarray:
    """Per case and reader: read, correct, committed (3 blocks of R columns)."""
    codes = dense.codes
    truth_answer = np.where(np.arange(dense.n_cases) < dense.n_fake, FAKE, REAL)[:, None]
    read = codes != MISSING
    correct = codes == truth_answer
    committed = (codes == REAL) | (codes == FAKE)
    return np.concatenate([read, correct, committed], axis=1).astype(np.float32)


def _reader_mean(values: np.ndarray, include: np.ndarray) -> np.ndarray:
    """Mean over included readers of the finite values, per row; NaN where none is finite."""
    values = np.where(include[None, :], values, np.nan)
    finite = np.isfinite(values)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, values, 0.0).sum(axis=1) / n
    mean[n == 0] = np.nan
    return mean


def _reader_averaged(
    readers: tuple[ReaderPerformance, ...],
    sums: list[np.ndarray] | None,
    n_readers: int,
) -> ReaderAveraged:
    per_reader = {
        "accuracy": [r.accuracy for r in readers],
        "sensitivity": [r.sensitivity for r in readers],
        "specificity": [r.specificity for r in readers],
        "committed_accuracy": [r.committed.accuracy for r in readers],
        "committed_sensitivity": [r.committed.sensitivity for r in readers],
        "committed_specificity": [r.committed.specificity for r in readers],
        "unsure_rate": [r.committed.unsure_rate for r in readers],
    }
    boot_rates = None
    if sums is not None:
        fake, real = sums
        R = n_readers

        # Rebuild a (B x readers x truth x answer-ish) view from the feature sums: the rates only
        # need hits, reads and committed counts per truth class.
        def block(s: np.ndarray, k: int) -> np.ndarray:
            return s[:, k * R : (k + 1) * R]

        f_read, f_hit, f_comm = block(fake, 0), block(fake, 1), block(fake, 2)
        r_read, r_hit, r_comm = block(real, 0), block(real, 1), block(real, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot_rates = {
                "accuracy": (f_hit + r_hit) / (f_read + r_read),
                "sensitivity": f_hit / f_read,
                "specificity": r_hit / r_read,
                "committed_accuracy": (f_hit + r_hit) / (f_comm + r_comm),
                "committed_sensitivity": f_hit / f_comm,
                "committed_specificity": r_hit / r_comm,
                "unsure_rate": 1.0 - (f_comm + r_comm) / (f_read + r_read),
            }

    out: dict[str, Value] = {}
    for name, values in per_reader.items():
        include = np.array([isinstance(v, Estimate) for v in values], bool)
        if not include.any():
            out[name] = NotDefined(f"no reader has a defined {name.replace('_', ' ')}")
            continue
        point = float(np.mean([v.estimate for v in values if isinstance(v, Estimate)]))
        excluded = int((~include).sum())
        note = f"{excluded} reader(s) without a defined value left out" if excluded else ""
        replicates = None
        if boot_rates is not None:
            replicates = _reader_mean(boot_rates[name], include)
        out[name] = percentile_interval(point, replicates, int(include.sum()), READER_MEAN, note)
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


# ------------------------------------------------------------------------------------ agreement


@dataclass
class _AgreementInput:
    answers: str
    categories: tuple[str, ...]
    codes: np.ndarray  # (cases x readers), 0..q-1 or MISSING
    counts: np.ndarray  # (cases x q)
    n_raters: int  # readers with any reading: Fleiss uses the cases read by all of them

    @property
    def q(self) -> int:
        return len(self.categories)

    def features(self) -> tuple[np.ndarray, dict[str, slice]]:
        parts = {
            "fleiss": ag.fleiss_features(self.counts, self.n_raters),
            "krippendorff": ag.krippendorff_features(self.counts),
            "ac1": ag.ac1_features(self.counts),
        }
        columns, start = {}, 0
        for name, part in parts.items():
            columns[name] = slice(start, start + part.shape[1])
            start += part.shape[1]
        return np.concatenate(list(parts.values()), axis=1), columns


def _agreement_inputs(dense: _Dense) -> tuple[_AgreementInput, _AgreementInput]:
    n_raters = int(dense.active.sum())
    primary = _AgreementInput(
        "all answers (real / unsure / fake)",
        ("real", "unsure", "fake"),
        dense.codes,
        ag.category_counts(dense.codes, 3),
        n_raters,
    )
    committed_codes = np.full(dense.codes.shape, MISSING, np.int8)
    committed_codes[dense.codes == REAL] = 0
    committed_codes[dense.codes == FAKE] = 1
    committed = _AgreementInput(
        "SECONDARY: committed answers only (real / fake; unsure treated as missing)",
        ("real", "fake"),
        committed_codes,
        ag.category_counts(committed_codes, 2),
        n_raters,
    )
    return primary, committed


def _pairwise(
    data: _AgreementInput, reader_labels: tuple[str, ...]
) -> tuple[tuple[PairKappa, ...], Value]:
    tables = ag.pairwise_tables(data.codes, data.q)
    kappa, se, n = ag.kappa_from_tables(tables)
    pairs = []
    R = len(reader_labels)
    for a in range(R):
        for b in range(a + 1, R):
            pairs.append(
                PairKappa(
                    reader_labels[a],
                    reader_labels[b],
                    int(n[a, b]),
                    ag.kappa_value(
                        float(kappa[a, b]),
                        float(se[a, b]),
                        int(n[a, b]),
                        empty="no case read by both",
                    ),
                )
            )
    defined = [p.kappa.estimate for p in pairs if isinstance(p.kappa, Estimate)]
    if R < 2:
        mean: Value = NotDefined("needs at least two readers")
    elif not defined:
        mean = NotDefined("no reader pair has a defined kappa")
    else:
        mean = Estimate(
            float(np.mean(defined)),
            None,
            None,
            len(defined),
            "mean of the defined pairwise Cohen's kappas (Light's kappa)",
            note=(
                f"point estimate only; {len(pairs) - len(defined)} of {len(pairs)} pairs undefined"
            ),
        )
    return tuple(pairs), mean


def _agreement(
    data: _AgreementInput,
    columns: dict[str, slice],
    sums: np.ndarray | None,
    reader_labels: tuple[str, ...],
) -> AgreementAnalysis:
    q = data.q

    def boot(point: Value, name: str, statistic) -> Value:
        part = None if sums is None else sums[:, columns[name]]
        return bootstrapped(point, part, statistic, BOOTSTRAP)

    fleiss = boot(
        ag.fleiss_kappa(data.counts, data.n_raters),
        "fleiss",
        lambda s: ag.fleiss_from_sums(s, data.n_raters),
    )
    alpha = boot(
        ag.krippendorff_alpha_nominal(data.counts), "krippendorff", ag.krippendorff_from_sums
    )
    ac1 = boot(ag.gwet_ac1(data.counts, q), "ac1", lambda s: ag.ac1_from_sums(s, q))
    pa = boot(ag.percent_agreement(data.counts), "ac1", ag.percent_agreement_from_sums)
    pairs, mean = _pairwise(data, reader_labels)
    return AgreementAnalysis(
        answers=data.answers,
        categories=data.categories,
        pairwise_cohen_kappa=pairs,
        mean_pairwise_cohen_kappa=mean,
        fleiss_kappa=fleiss,
        krippendorff_alpha=alpha,
        gwet_ac1=ac1,
        percent_agreement=pa,
    )


# ------------------------------------------------------------------------------------------ ROC


def _roc(table: ReadingTable, dense: _Dense) -> RocAnalysis:
    first = table.showing == 1
    committed = first & (table.answer != UNSURE)
    collected = bool(np.any(~np.isnan(table.confidence[committed])))
    labels = table.reader_labels
    is_fake_row = np.arange(dense.n_cases) < dense.n_fake
    read_matrix = dense.codes != MISSING
    n_fake = (read_matrix & is_fake_row[:, None]).sum(axis=0)
    n_real = (read_matrix & ~is_fake_row[:, None]).sum(axis=0)
    if not collected:
        reason = "no confidence ratings were collected"
        return RocAnalysis(
            confidence_collected=False,
            readers=tuple(
                ReaderRoc(label, int(n_fake[j]), int(n_real[j]), NotDefined(reason), ())
                for j, label in enumerate(labels)
            ),
            reader_averaged_auc_random_readers=NotDefined(reason),
            reader_averaged_auc_fixed_readers=NotDefined(reason),
            n_readers=0,
            or_ms_r=None,
            or_var_error=None,
            or_cov2=None,
            or_df=None,
            note=reason,
        )
    readers = []
    or_aucs, or_columns, or_readers = [], [], []
    for j, label in enumerate(labels):
        column = dense.scores[:, j]
        read = dense.codes[:, j] != MISSING
        missing = int(np.count_nonzero(read & np.isnan(column)))
        pos_rows = np.flatnonzero(read & is_fake_row)
        neg_rows = np.flatnonzero(read & ~is_fake_row)
        if missing:
            readers.append(
                ReaderRoc(
                    label,
                    pos_rows.size,
                    neg_rows.size,
                    NotDefined(f"confidence missing on {missing} committed answer(s)"),
                    (),
                )
            )
            continue
        pos, neg = column[pos_rows], column[neg_rows]
        readers.append(
            ReaderRoc(label, pos.size, neg.size, auc_estimate(pos, neg), roc_points(pos, neg))
        )
        if pos.size >= 2 and neg.size >= 2:
            auc, v10, v01 = auc_components(pos, neg)
            jack_pos, jack_neg = jackknife_aucs(auc, v10, v01)
            jack = np.full(dense.n_cases, auc)
            jack[pos_rows] = jack_pos
            jack[neg_rows] = jack_neg
            or_aucs.append(auc)
            or_columns.append(jack)
            or_readers.append(j)

    notes = []
    n_left_out = len(labels) - len(or_readers)
    if n_left_out:
        notes.append(
            f"{n_left_out} reader(s) left out of the reader average (no readings, missing "
            "confidence, or fewer than 2 fake or 2 real images read)"
        )
    if not or_readers:
        reason = "no reader has an AUC with at least 2 fake and 2 real images read"
        return RocAnalysis(
            True,
            tuple(readers),
            NotDefined(reason),
            NotDefined(reason),
            0,
            None,
            None,
            None,
            None,
            "; ".join(notes + [reason]),
        )
    jackknife = np.ascontiguousarray(np.array(or_columns).T)
    read_by_any = (dense.codes[:, or_readers] != MISSING).any(axis=1)
    jackknife = jackknife[read_by_any]
    if not (dense.codes[read_by_any][:, or_readers] != MISSING).all():
        notes.append(
            "readers did not all read the same cases: the jackknife runs over every case read by "
            "any of them (a case a reader did not read leaves that reader's AUC unchanged), an "
            "extension of the factorial design the OR method assumes"
        )
    result = or_single_test(np.array(or_aucs), jackknife)
    return RocAnalysis(
        confidence_collected=True,
        readers=tuple(readers),
        reader_averaged_auc_random_readers=result.random_readers,
        reader_averaged_auc_fixed_readers=result.fixed_readers,
        n_readers=result.n_readers,
        or_ms_r=result.ms_r,
        or_var_error=result.var_error,
        or_cov2=result.cov2,
        or_df=result.df,
        note="; ".join(notes),
    )


# ------------------------------------------------------------------------------ cases and groups


def _cases(table: ReadingTable, dense: _Dense) -> tuple[CaseVotes, ...]:
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


def _intra_reader(
    table: ReadingTable, dense: _Dense, row_of_case: np.ndarray
) -> IntraReaderAnalysis:
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
    tables = np.bincount(index, minlength=R * 9).reshape(R, 3, 3)
    kappa, se, n = ag.kappa_from_tables(tables)
    one = "all first and repeat readings used one and the same answer, so chance agreement is 1"
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
                one_category=one,
            ),
            agreements[j],
        )
        for j, label in enumerate(table.reader_labels)
    )
    pooled_table = tables.sum(axis=0)
    pk, pse, pn = ag.kappa_from_tables(pooled_table)
    pooled = ag.kappa_value(
        float(pk), float(pse), int(pn), empty="no repeated cases", one_category=one
    )
    if isinstance(pooled, Estimate):
        pooled = Estimate(
            pooled.estimate,
            pooled.ci_low,
            pooled.ci_high,
            pooled.n,
            pooled.method,
            note="all readers' pairs pooled in one table; the SE treats pairs as independent",
            se=pooled.se,
        )
    defined = [r.kappa.estimate for r in readers if isinstance(r.kappa, Estimate)]
    mean: Value
    if defined:
        mean = Estimate(
            float(np.mean(defined)),
            None,
            None,
            len(defined),
            "mean of the defined per-reader kappas",
            note="point estimate only",
        )
    else:
        mean = NotDefined("no reader has a defined intra-reader kappa")
    return IntraReaderAnalysis(
        readers=readers,
        mean_kappa=mean,
        pooled_kappa=pooled,
        pooled_percent_agreement=wilson(
            int(agree.sum()), int(n.sum()), empty_reason="no repeated cases"
        ),
    )


# ----------------------------------------------------------------------------------- entry point


def analyse(table: ReadingTable, *, n_bootstrap: int = 1000, seed: int = 0) -> StudyAnalysis:
    """Compute every statistic of the study (see ``docs/statistics.md``).

    Primary statistics use first showings only; repeats feed intra-reader consistency only.
    ``n_bootstrap`` case resamples (0: no bootstrap intervals) drawn from ``seed``.
    """
    if not isinstance(table, ReadingTable):
        raise TypeError("analyse() takes a ReadingTable")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise ValueError("n_bootstrap must be a non-negative integer")
    n_bootstrap = int(n_bootstrap)

    dense, row_of_case = _dense(table)
    counts = _reader_counts(table)
    readers = _readers(table, counts)

    primary, committed = _agreement_inputs(dense)
    primary_features, primary_columns = primary.features()
    committed_features, committed_columns = committed.features()
    reader_features = _reader_features(dense)
    R3 = reader_features.shape[1]
    features = np.concatenate(
        [reader_features, primary_features, committed_features], axis=1
    ).astype(np.float32)

    reader_sums = primary_sums = committed_sums = None
    if n_bootstrap > 0 and dense.n_cases > 0:
        fake_sums, real_sums = bootstrap_sums(features, dense.strata, n_bootstrap, seed)
        reader_sums = [fake_sums[:, :R3], real_sums[:, :R3]]
        total = fake_sums + real_sums
        n_primary = primary_features.shape[1]
        primary_sums = total[:, R3 : R3 + n_primary]
        committed_sums = total[:, R3 + n_primary :]

    fully_crossed = bool(dense.n_cases > 0 and (dense.codes[:, dense.active] != MISSING).all())
    first = table.showing == 1
    summary = StudySummary(
        positive_class="fake (synthetic)",
        n_readers=table.n_readers,
        n_readers_with_readings=int(dense.active.sum()),
        n_cases=table.n_cases,
        n_cases_read=dense.n_cases,
        n_fake_cases=dense.n_fake,
        n_real_cases=dense.n_cases - dense.n_fake,
        n_readings=int(first.sum()),
        n_repeat_readings=int((~first).sum()),
        confidence_collected=bool(
            np.any(~np.isnan(table.confidence[first & (table.answer != UNSURE)]))
        ),
        fully_crossed=fully_crossed,
        n_bootstrap=n_bootstrap,
        seed=int(seed),
    )
    return StudyAnalysis(
        summary=summary,
        readers=readers,
        reader_averaged=_reader_averaged(readers, reader_sums, table.n_readers),
        roc=_roc(table, dense),
        agreement=_agreement(primary, primary_columns, primary_sums, table.reader_labels),
        agreement_committed=_agreement(
            committed, committed_columns, committed_sums, table.reader_labels
        ),
        cases=_cases(table, dense),
        groups=_groups(table),
        intra_reader=_intra_reader(table, dense, row_of_case),
    )
