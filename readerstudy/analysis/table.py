"""The analysis input: one columnar table of readings, validated on construction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REAL, UNSURE, FAKE = 0, 1, 2
#: Answer codes, in code order.
ANSWERS = ("real", "unsure", "fake")
#: Code of "no reading" in the dense (cases x readers) matrices.
MISSING = -1


def _column(values: Any, name: str) -> np.ndarray:
    array = np.array(values, copy=True)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _integers(values: Any, name: str, dtype: Any) -> np.ndarray:
    array = _column(values, name)
    if array.size == 0:
        return array.astype(dtype)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not (
        np.all(np.isfinite(array)) and np.all(array == np.round(array))
    ):
        raise ValueError(f"{name} must hold integers")
    return array.astype(dtype)


def _check_values(
    columns: dict[str, np.ndarray], n_readers: int, n_cases: int, case_labels: tuple[str, ...]
) -> None:
    """Codes in range, one reading per reader, case and showing, one truth per case."""
    reader, case, answer = columns["reader"], columns["case"], columns["answer"]
    showing, confidence, is_fake = columns["showing"], columns["confidence"], columns["is_fake"]
    if reader.min() < 0 or reader.max() >= n_readers:
        raise ValueError(f"reader codes must lie in [0, {n_readers})")
    if case.min() < 0 or case.max() >= n_cases:
        raise ValueError(f"case codes must lie in [0, {n_cases})")
    bad = ~np.isin(answer, (REAL, UNSURE, FAKE))
    if bad.any():
        raise ValueError(
            f"answer codes must be 0 (real), 1 (unsure) or 2 (fake); "
            f"found {sorted(set(answer[bad].tolist()))}"
        )
    bad = ~np.isin(showing, (1, 2))
    if bad.any():
        raise ValueError(f"showing must be 1 or 2; found {sorted(set(showing[bad].tolist()))}")
    present = ~np.isnan(confidence)
    if np.any(~np.isfinite(confidence[present])) or np.any(confidence[present] <= 0):
        raise ValueError("confidence must be a positive number, or NaN where absent")
    key = (reader * n_cases + case) * 2 + (showing - 1)
    if np.unique(key).size != reader.size:
        raise ValueError("a reader has more than one reading of the same case and showing")
    n_per_case = np.bincount(case, minlength=n_cases)
    fakes_per_case = np.bincount(case, weights=is_fake, minlength=n_cases)
    mixed = (fakes_per_case > 0) & (fakes_per_case < n_per_case)
    if mixed.any():
        first = case_labels[int(np.flatnonzero(mixed)[0])]
        raise ValueError(f"case {first!r} is marked both fake and real in different readings")


def _groups(
    case_groups: Mapping[str, Sequence[Any]], case_labels: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for key_name, values in dict(case_groups).items():
        values = tuple(values)
        if len(values) != len(case_labels):
            raise ValueError(
                f"case_groups[{key_name!r}] has {len(values)} entries, "
                f"there are {len(case_labels)} cases"
            )
        groups[str(key_name)] = tuple(
            "(none)" if value is None or value == "" else str(value) for value in values
        )
    return groups


@dataclass(frozen=True, eq=False, kw_only=True)
class ReadingTable:
    """All readings of one study, one entry per reading (practice cases already left out).

    - ``reader``: int index into ``reader_labels``
    - ``case``: int index into ``case_labels``
    - ``is_fake``: truth of the case read (True = synthetic, the positive class)
    - ``answer``: 0 real, 1 unsure, 2 fake
    - ``confidence``: float, NaN where none was collected (optional: all NaN)
    - ``showing``: 1 first showing, 2 repeat (optional: all 1)
    - ``case_groups``: optional grouping keys per case (e.g. ``{"generator": [...]}``), one entry
      per case label; ``None`` or ``""`` becomes the group ``"(none)"``.
    - ``collects_confidence``: whether the study's design asks for a confidence with every
      committed answer (``None``: unknown, inferred from whether any committed first reading
      has one). A study that asks for it but got only "unsure" answers still collected it.

    The constructor validates everything and raises :class:`ValueError` with a clear message on
    bad codes, lengths, duplicates or a case whose truth differs between readings. The arrays are
    copied and made read-only.
    """

    reader: np.ndarray
    case: np.ndarray
    is_fake: np.ndarray
    answer: np.ndarray
    reader_labels: Sequence[str]
    case_labels: Sequence[str]
    # Optional when constructing (None: no confidences, every reading a first showing);
    # __post_init__ always replaces them with arrays, so code reading a table sees arrays.
    confidence: np.ndarray = None  # type: ignore[assignment]
    showing: np.ndarray = None  # type: ignore[assignment]
    case_groups: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    collects_confidence: bool | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        reader_labels = tuple(str(label) for label in self.reader_labels)
        case_labels = tuple(str(label) for label in self.case_labels)
        for name, labels in (("reader_labels", reader_labels), ("case_labels", case_labels)):
            if len(set(labels)) != len(labels):
                raise ValueError(f"{name} must be unique")
        set_(self, "reader_labels", reader_labels)
        set_(self, "case_labels", case_labels)
        columns = self._columns()
        if columns["reader"].size:
            _check_values(columns, len(reader_labels), len(case_labels), case_labels)
        set_(self, "case_groups", _groups(self.case_groups, case_labels))
        for name, array in columns.items():
            array.setflags(write=False)
            set_(self, name, array)

    def _columns(self) -> dict[str, np.ndarray]:
        """The six columns as numpy arrays of their types, all of the same length."""
        reader = _integers(self.reader, "reader", np.int64)
        n = reader.size
        is_fake = _column(self.is_fake, "is_fake")
        if is_fake.size and is_fake.dtype != bool and not np.all(np.isin(is_fake, (0, 1))):
            raise ValueError("is_fake must be boolean (or 0/1)")
        if self.confidence is None:
            confidence = np.full(n, np.nan)
        else:
            confidence = _column(self.confidence, "confidence")
            try:
                confidence = confidence.astype(float)
            except (TypeError, ValueError):
                raise ValueError("confidence must be numeric (NaN where absent)") from None
        showing = (
            np.ones(n, np.int8)
            if self.showing is None
            else _integers(self.showing, "showing", np.int8)
        )
        columns = {
            "reader": reader,
            "case": _integers(self.case, "case", np.int64),
            "is_fake": is_fake.astype(bool),
            "answer": _integers(self.answer, "answer", np.int8),
            "confidence": confidence,
            "showing": showing,
        }
        for name, array in columns.items():
            if array.size != n:
                raise ValueError(f"{name} has {array.size} entries, reader has {n}")
        return columns

    def __len__(self) -> int:
        return int(self.reader.size)

    @property
    def n_readers(self) -> int:
        return len(self.reader_labels)

    @property
    def n_cases(self) -> int:
        return len(self.case_labels)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        reader_labels: Sequence[str] | None = None,
        case_labels: Sequence[str] | None = None,
        case_groups: Mapping[str, Mapping[str, Any]] | None = None,
        collects_confidence: bool | None = None,
    ) -> ReadingTable:
        """Build a table from row dicts.

        Each record has ``reader`` and ``case`` (labels), ``is_fake`` (bool), ``answer``
        (``"real"``/``"unsure"``/``"fake"`` or the codes 0/1/2), and optionally ``confidence``
        (``None`` when absent) and ``showing`` (default 1). Labels not given are taken in order of
        first appearance. ``case_groups`` maps a grouping name to ``{case label: group}``;
        ``collects_confidence`` is the study design (see the class docstring).
        """
        records = list(records)
        if reader_labels is None:
            reader_labels = list(dict.fromkeys(str(r["reader"]) for r in records))
        if case_labels is None:
            case_labels = list(dict.fromkeys(str(r["case"]) for r in records))
        reader_index = {str(label): i for i, label in enumerate(reader_labels)}
        case_index = {str(label): i for i, label in enumerate(case_labels)}
        groups = {
            name: [mapping.get(label) for label in case_labels]
            for name, mapping in (case_groups or {}).items()
        }
        return cls(
            reader=np.array(
                [_label_index(reader_index, r["reader"], "reader") for r in records], np.int64
            ),
            case=np.array([_label_index(case_index, r["case"], "case") for r in records], np.int64),
            is_fake=np.array([bool(r["is_fake"]) for r in records], bool),
            answer=np.array([_answer_code(r["answer"]) for r in records], np.int64),
            confidence=np.array(
                [
                    np.nan if r.get("confidence") is None else float(r["confidence"])
                    for r in records
                ],
                float,
            ),
            showing=np.array([int(r.get("showing", 1)) for r in records], np.int64),
            reader_labels=reader_labels,
            case_labels=case_labels,
            case_groups=groups,
            collects_confidence=collects_confidence,
        )


_ANSWER_CODES = {name: code for code, name in enumerate(ANSWERS)}


def _answer_code(value: Any) -> int:
    """An answer as its code: the names in ANSWERS, or the codes themselves."""
    if isinstance(value, str):
        if value not in _ANSWER_CODES:
            raise ValueError(f"unknown answer {value!r}; expected one of {ANSWERS}")
        return _ANSWER_CODES[value]
    return int(value)


def _label_index(index: Mapping[str, int], label: Any, what: str) -> int:
    try:
        return index[str(label)]
    except KeyError:
        raise ValueError(f"{what} {label!r} is not among the {what} labels") from None
