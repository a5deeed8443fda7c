"""First showings as dense (cases x readers) matrices, the layout every statistic starts from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from readerstudy.analysis.roc import fake_scores
from readerstudy.analysis.table import MISSING, ReadingTable


@dataclass
class Dense:
    """First showings as dense (cases x readers) matrices; case rows ordered fakes first."""

    case_ids: np.ndarray  # case code of each row
    n_fake: int  # rows [0, n_fake) are fake cases
    codes: np.ndarray  # int8 answer codes, MISSING where not read
    scores: np.ndarray  # float fake-scores, NaN where not read or without a confidence
    active: np.ndarray  # bool per reader: has at least one first reading

    @property
    def n_cases(self) -> int:
        return int(self.case_ids.size)

    @property
    def strata(self) -> list[slice]:
        return [slice(0, self.n_fake), slice(self.n_fake, self.n_cases)]

    @property
    def strata_sizes(self) -> list[int]:
        return [self.n_fake, self.n_cases - self.n_fake]

    def collapse_cause(self) -> str:
        """Why a stratified case resample may not vary, when the design says so."""
        fake, real = self.strata_sizes
        if fake <= 1 and real <= 1:
            return "one case per truth stratum: every stratified resample redraws the same cases"
        if fake <= 1 or real <= 1:
            which = "synthetic" if fake <= 1 else "real"
            return f"only one {which} case: every stratified resample redraws it"
        return ""


def dense_matrices(table: ReadingTable) -> tuple[Dense, np.ndarray]:
    """The dense matrices, and the row of each case code (-1: not read)."""
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
    dense = Dense(order, int(case_is_fake[order].sum()), codes, scores, active)
    return dense, row_of_case
