"""Each reader's case order: a pure, reproducible function of the study seed and the reader.

No Django here. The order is drawn once and stored row by row (``ReadingSlot``); this
module only says how it is drawn, so that anyone can recompute a stored order from the
study seed, the reader id and the case ids and check it.

The random stream is SHA-256 in counter mode, not numpy's or Python's generator: their
streams are allowed to change between versions, a hash is not. ``ALGORITHM`` names this
exact procedure and is stored with every drawn order.

Rules:

* practice cases come first, in their own random order;
* every other case is shown once, in random order;
* ``round(repeat_fraction × cases)`` of them are shown a second time, each at least
  ``repeat_min_gap`` positions after its first showing (positions are 1-based and
  global, so the gap counts every case in between).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ALGORITHM = "sha256-ctr-fisher-yates-v1"


class OrderingError(ValueError):
    """The options cannot be satisfied with these cases (too many repeats for the gap)."""


@dataclass(frozen=True)
class PlannedSlot:
    position: int  # 1-based
    case_id: int
    showing: int  # 1 first showing, 2 repeat
    is_practice: bool


class HashStream:
    """Uniform integers from SHA-256(seed, reader, label, counter): stable forever."""

    def __init__(self, seed: int, reader_id: int, label: str) -> None:
        self._prefix = f"{int(seed)}/{int(reader_id)}/{label}/".encode()
        self._counter = 0

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound) (bias below 2^-200: negligible)."""
        if bound < 1:
            raise ValueError("bound must be positive")
        digest = hashlib.sha256(self._prefix + str(self._counter).encode()).digest()
        self._counter += 1
        return int.from_bytes(digest, "big") % bound

    def shuffled(self, items: Iterable[int]) -> list[int]:
        """Fisher–Yates shuffle of the items taken in ascending order."""
        result = sorted(items)
        for i in range(len(result) - 1, 0, -1):
            j = self.below(i + 1)
            result[i], result[j] = result[j], result[i]
        return result


def repeat_count(n_cases: int, repeat_fraction: float) -> int:
    """How many cases are shown twice: the fraction of the cases, rounded half up."""
    if not 0.0 <= repeat_fraction <= 1.0:
        raise OrderingError("repeat fraction must be between 0 and 1")
    return math.floor(n_cases * repeat_fraction + 0.5 + 1e-9)


def max_repeats(n_cases: int, repeat_min_gap: int) -> int:
    """Most cases that can be repeated at least ``repeat_min_gap`` positions later."""
    return max(0, n_cases - max(1, repeat_min_gap) + 1)


def check_feasible(n_cases: int, repeat_fraction: float, repeat_min_gap: int) -> None:
    wanted = repeat_count(n_cases, repeat_fraction)
    possible = max_repeats(n_cases, repeat_min_gap)
    if wanted > possible:
        raise OrderingError(
            f"{wanted} repeated case(s) cannot all come {repeat_min_gap} or more positions "
            f"after their first showing with only {n_cases} case(s); at most {possible} can. "
            "Lower the repeat share or the gap, or add cases."
        )


def plan_order(
    *,
    seed: int,
    reader_id: int,
    case_ids: Sequence[int],
    practice_case_ids: Sequence[int] = (),
    repeat_fraction: float = 0.0,
    repeat_min_gap: int = 5,
) -> list[PlannedSlot]:
    """The full order for one reader: practice first, then cases with their repeats."""
    if set(case_ids) & set(practice_case_ids):
        raise OrderingError("a case cannot be both a practice case and a study case")
    if len(set(case_ids)) != len(case_ids) or len(set(practice_case_ids)) != len(practice_case_ids):
        raise OrderingError("case ids must be distinct")
    gap = max(1, int(repeat_min_gap))
    check_feasible(len(case_ids), repeat_fraction, gap)

    practice = HashStream(seed, reader_id, "practice").shuffled(practice_case_ids)
    first = HashStream(seed, reader_id, "cases").shuffled(case_ids)

    # Only a case whose first showing leaves room for the gap can be repeated: the one at
    # index i needs i + gap <= n. Which cases those are is random, because the order is.
    stream = HashStream(seed, reader_id, "repeats")
    n_repeats = repeat_count(len(first), repeat_fraction)
    candidates = first[: max_repeats(len(first), gap)]
    repeated = stream.shuffled(candidates)[:n_repeats]

    # Insert each repeat at a uniform index in [first position + gap, end]. Later
    # insertions never shorten an earlier gap: an insertion before a first showing
    # shifts both showings, one between them lengthens the gap.
    sequence: list[tuple[int, int]] = [(case_id, 1) for case_id in first]
    for case_id in repeated:
        first_index = sequence.index((case_id, 1))
        low = first_index + gap
        index = low + stream.below(len(sequence) - low + 1)
        sequence.insert(index, (case_id, 2))

    planned = [PlannedSlot(0, case_id, 1, True) for case_id in practice]
    planned += [PlannedSlot(0, case_id, showing, False) for case_id, showing in sequence]
    return [
        PlannedSlot(position, slot.case_id, slot.showing, slot.is_practice)
        for position, slot in enumerate(planned, start=1)
    ]
