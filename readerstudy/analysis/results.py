"""Value types of the analysis: estimates, "not defined" values and the result dataclasses.

Every number the analysis reports sits in an *estimate slot*: either an :class:`Estimate` or a
:class:`NotDefined` carrying the reason. Both serialise to the same JSON keys
(:data:`ESTIMATE_KEYS`), so a consumer never has to guess the shape of a slot, and no NaN, infinity
or silent zero ever reaches the output.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA = "spotthefake.readerstudy.analysis/1"

#: The keys of every serialised estimate slot, in order.
ESTIMATE_KEYS = ("estimate", "ci_low", "ci_high", "se", "n", "method", "note", "not_defined")


@dataclass(frozen=True)
class NotDefined:
    """A statistic that cannot be computed from these data, and why (never a NaN or a 0)."""

    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError("NotDefined needs a non-empty reason")

    @property
    def defined(self) -> bool:
        return False


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval.

    ``ci_low``/``ci_high`` are ``None`` only when no interval could be given; ``note`` then says
    why. ``n`` is the sample size behind the estimate (denominator, cases or readers: the
    documentation of each slot says which). ``se`` is a standard error where the method gives
    one. ``method`` names the interval method.
    """

    estimate: float
    ci_low: float | None
    ci_high: float | None
    n: int
    method: str
    note: str = ""
    se: float | None = None

    def __post_init__(self) -> None:
        for name in ("estimate", "ci_low", "ci_high", "se"):
            value = getattr(self, name)
            if value is None and name != "estimate":
                continue
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"Estimate.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, value)
        if (self.ci_low is None) != (self.ci_high is None):
            raise ValueError("give both interval ends or neither")
        if self.ci_low is not None and self.ci_high is not None and self.ci_low > self.ci_high:
            raise ValueError(f"interval ends out of order: {self.ci_low} > {self.ci_high}")
        if self.ci_low is None and not self.note:
            raise ValueError("an Estimate without an interval needs a note saying why")
        object.__setattr__(self, "n", int(self.n))

    @property
    def defined(self) -> bool:
        return True


#: The type of an estimate slot.
Value = Estimate | NotDefined


def value_or_nan(value: Value) -> float:
    """The estimate as a float, NaN when not defined: for callers doing their own arithmetic."""
    return value.estimate if isinstance(value, Estimate) else math.nan


# --------------------------------------------------------------------------- result dataclasses


@dataclass(frozen=True)
class AnswerTable:
    """One reader's full 3x2 table: truth (fake = synthetic, real) x answer (real, unsure, fake)."""

    fake_answered_real: int
    fake_answered_unsure: int
    fake_answered_fake: int
    real_answered_real: int
    real_answered_unsure: int
    real_answered_fake: int


@dataclass(frozen=True)
class CommittedPerformance:
    """SECONDARY: over committed (real/fake) answers only. Flatters readers who say "unsure"."""

    accuracy: Value
    sensitivity: Value
    specificity: Value
    unsure_rate: Value


@dataclass(frozen=True)
class ReaderPerformance:
    """PRIMARY (intention to diagnose: unsure counts as wrong) and secondary figures of a reader."""

    reader: str
    n_readings: int
    n_fake: int
    n_real: int
    table: AnswerTable
    accuracy: Value
    sensitivity: Value
    specificity: Value
    committed: CommittedPerformance


@dataclass(frozen=True)
class ReaderAveraged:
    """Means over readers of the per-reader proportions, with case-bootstrap intervals."""

    accuracy: Value
    sensitivity: Value
    specificity: Value
    committed: CommittedPerformance


@dataclass(frozen=True)
class RocPoint:
    """Calling "fake" every reading whose fake-score is >= ``threshold`` (None: call none)."""

    threshold: float | None
    fpr: float
    tpr: float


@dataclass(frozen=True)
class ReaderRoc:
    reader: str
    n_fake: int
    n_real: int
    auc: Value
    points: tuple[RocPoint, ...]


@dataclass(frozen=True)
class RocAnalysis:
    """Per-reader AUCs of the fake-score and the reader-averaged AUC (Obuchowski-Rockette)."""

    confidence_collected: bool
    readers: tuple[ReaderRoc, ...]
    reader_averaged_auc_random_readers: Value
    reader_averaged_auc_fixed_readers: Value
    n_readers: int
    or_ms_r: float | None
    or_var_error: float | None
    or_cov2: float | None
    or_df: float | None
    note: str


@dataclass(frozen=True)
class PairKappa:
    reader_a: str
    reader_b: str
    n_cases: int
    kappa: Value


@dataclass(frozen=True)
class AgreementAnalysis:
    answers: str
    categories: tuple[str, ...]
    pairwise_cohen_kappa: tuple[PairKappa, ...]
    mean_pairwise_cohen_kappa: Value
    fleiss_kappa: Value
    krippendorff_alpha: Value
    gwet_ac1: Value
    percent_agreement: Value


@dataclass(frozen=True)
class CaseVotes:
    case: str
    truth: str
    n_real: int
    n_unsure: int
    n_fake: int
    share_fake: Value


@dataclass(frozen=True)
class GroupRate:
    """Readings of one truth class within one group of cases.

    ``measure`` is ``"fooling_rate"`` (synthetic images answered real) or
    ``"answered_fake_rate"`` (real images answered fake).
    """

    grouping: str
    group: str
    truth: str
    measure: str
    n_cases: int
    n_readings: int
    n_answered_real: int
    n_answered_unsure: int
    n_answered_fake: int
    rate: Value
    unsure_rate: Value


@dataclass(frozen=True)
class ReaderConsistency:
    reader: str
    n_pairs: int
    kappa: Value
    percent_agreement: Value


@dataclass(frozen=True)
class IntraReaderAnalysis:
    readers: tuple[ReaderConsistency, ...]
    mean_kappa: Value
    pooled_kappa: Value
    pooled_percent_agreement: Value


@dataclass(frozen=True)
class StudySummary:
    positive_class: str
    n_readers: int
    n_readers_with_readings: int
    n_cases: int
    n_cases_read: int
    n_fake_cases: int
    n_real_cases: int
    n_readings: int
    n_repeat_readings: int
    confidence_collected: bool
    fully_crossed: bool
    n_bootstrap: int
    seed: int
    #: "case" (cases resampled, readers fixed) or "two-way" (readers and cases resampled)
    bootstrap: str = "case"


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything :func:`readerstudy.analysis.analyse` computes. See ``docs/statistics.md``."""

    summary: StudySummary
    readers: tuple[ReaderPerformance, ...]
    reader_averaged: ReaderAveraged
    roc: RocAnalysis
    agreement: AgreementAnalysis
    agreement_committed: AgreementAnalysis
    cases: tuple[CaseVotes, ...]
    groups: tuple[GroupRate, ...]
    intra_reader: IntraReaderAnalysis
    schema: str = SCHEMA

    def to_jsonable(self) -> dict[str, Any]:
        """A JSON-ready dict with the stable keys documented in ``docs/statistics.md``."""
        payload = to_jsonable(self)
        return {"schema": payload.pop("schema"), **payload}

    def to_tables(self) -> dict[str, list[dict[str, Any]]]:
        """Flat rows (one dict per row, estimate slots spread into ``<name>_<key>`` columns)."""
        from readerstudy.analysis.export import tables

        return tables(self)


# ------------------------------------------------------------------------------- serialisation


def _slot(value: Value) -> dict[str, Any]:
    if isinstance(value, NotDefined):
        return {
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "se": None,
            "n": None,
            "method": None,
            "note": "",
            "not_defined": value.reason,
        }
    return {
        "estimate": value.estimate,
        "ci_low": value.ci_low,
        "ci_high": value.ci_high,
        "se": value.se,
        "n": value.n,
        "method": value.method,
        "note": value.note,
        "not_defined": None,
    }


def to_jsonable(obj: Any) -> Any:
    """Convert result objects (dataclasses, tuples, numpy scalars) to plain JSON types."""
    if isinstance(obj, (Estimate, NotDefined)):
        return _slot(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): to_jsonable(item) for key, item in obj.items()}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            raise ValueError(f"non-finite number in analysis output: {value!r}")
        return value
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__}")
