"""The study's ROC analysis: per-reader AUCs of the fake-score and the Obuchowski-Rockette
reader average, from the dense (cases x readers) matrices of :mod:`readerstudy.analysis.dense`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from readerstudy.analysis.dense import Dense
from readerstudy.analysis.results import NotDefined, ReaderRoc, RocAnalysis
from readerstudy.analysis.roc import (
    auc_components,
    auc_estimate,
    jackknife_aucs,
    or_single_test,
    roc_points,
)
from readerstudy.analysis.table import MISSING, UNSURE, ReadingTable

NOT_COLLECTED = "no confidence ratings were collected"


def confidence_collected(table: ReadingTable) -> bool:
    """The study's design when known; otherwise whether any committed first reading has one."""
    if table.collects_confidence is not None:
        return bool(table.collects_confidence)
    committed = (table.showing == 1) & (table.answer != UNSURE)
    return bool(np.any(~np.isnan(table.confidence[committed])))


def _empty(readers: tuple[ReaderRoc, ...], collected: bool, reason: str, note: str):
    return RocAnalysis(
        confidence_collected=collected,
        readers=readers,
        reader_averaged_auc_random_readers=NotDefined(reason),
        reader_averaged_auc_fixed_readers=NotDefined(reason),
        n_readers=0,
        or_ms_r=None,
        or_var_error=None,
        or_cov2=None,
        or_df=None,
        note=note,
    )


@dataclass
class _Jackknife:
    """What the Obuchowski-Rockette analysis needs of the readers it can use."""

    aucs: list[float] = field(default_factory=list)
    columns: list[np.ndarray] = field(default_factory=list)
    readers: list[int] = field(default_factory=list)


def _reader(dense: Dense, j: int, label: str, jack: _Jackknife) -> ReaderRoc:
    is_fake_row = np.arange(dense.n_cases) < dense.n_fake
    column = dense.scores[:, j]
    read = dense.codes[:, j] != MISSING
    missing = int(np.count_nonzero(read & np.isnan(column)))
    pos_rows = np.flatnonzero(read & is_fake_row)
    neg_rows = np.flatnonzero(read & ~is_fake_row)
    if missing:
        reason = (
            f"confidence missing on {missing} committed answer(s): those readings have no "
            "fake-score (exported as empty), so the AUC would rest on a subset of the cases"
        )
        return ReaderRoc(label, pos_rows.size, neg_rows.size, NotDefined(reason), ())
    pos, neg = column[pos_rows], column[neg_rows]
    if pos.size >= 2 and neg.size >= 2:
        auc, v10, v01 = auc_components(pos, neg)
        jack_pos, jack_neg = jackknife_aucs(auc, v10, v01)
        column_jack = np.full(dense.n_cases, auc)
        column_jack[pos_rows] = jack_pos
        column_jack[neg_rows] = jack_neg
        jack.aucs.append(auc)
        jack.columns.append(column_jack)
        jack.readers.append(j)
    return ReaderRoc(label, pos.size, neg.size, auc_estimate(pos, neg), roc_points(pos, neg))


def roc_analysis(table: ReadingTable, dense: Dense) -> RocAnalysis:
    collected = confidence_collected(table)
    labels = table.reader_labels
    if not collected:
        is_fake_row = np.arange(dense.n_cases) < dense.n_fake
        read = dense.codes != MISSING
        n_fake = (read & is_fake_row[:, None]).sum(axis=0)
        n_real = (read & ~is_fake_row[:, None]).sum(axis=0)
        readers = tuple(
            ReaderRoc(label, int(n_fake[j]), int(n_real[j]), NotDefined(NOT_COLLECTED), ())
            for j, label in enumerate(labels)
        )
        return _empty(readers, False, NOT_COLLECTED, NOT_COLLECTED)
    jack = _Jackknife()
    readers = tuple(_reader(dense, j, label, jack) for j, label in enumerate(labels))
    notes = []
    n_left_out = len(labels) - len(jack.readers)
    if n_left_out:
        notes.append(
            f"{n_left_out} reader(s) left out of the reader average (no readings, missing "
            "confidence, or fewer than 2 fake or 2 real images read)"
        )
    if not jack.readers:
        reason = "no reader has an AUC with at least 2 fake and 2 real images read"
        return _empty(readers, True, reason, "; ".join(notes + [reason]))
    return _reader_average(dense, readers, jack, notes)


def _reader_average(
    dense: Dense, readers: tuple[ReaderRoc, ...], jack: _Jackknife, notes: list[str]
) -> RocAnalysis:
    jackknife = np.ascontiguousarray(np.array(jack.columns).T)
    read_by_any = (dense.codes[:, jack.readers] != MISSING).any(axis=1)
    jackknife = jackknife[read_by_any]
    if not (dense.codes[read_by_any][:, jack.readers] != MISSING).all():
        notes.append(
            "readers did not all read the same cases: the jackknife runs over every case read by "
            "any of them (a case a reader did not read leaves that reader's AUC unchanged), an "
            "extension of the factorial design the OR method assumes"
        )
    result = or_single_test(np.array(jack.aucs), jackknife)
    return RocAnalysis(
        confidence_collected=True,
        readers=readers,
        reader_averaged_auc_random_readers=result.random_readers,
        reader_averaged_auc_fixed_readers=result.fixed_readers,
        n_readers=result.n_readers,
        or_ms_r=result.ms_r,
        or_var_error=result.var_error,
        or_cov2=result.cov2,
        or_df=result.df,
        note="; ".join(notes),
    )
