"""Each reader's pairs for a two-alternative forced-choice study: pure and reproducible.

No Django here. Pairs are drawn once per reader and stored (``ReadingSlot`` with a
``right_case``); this module says how, so a stored set of pairs can be recomputed from the
study seed, the reader id and the cases, with the same SHA-256 counter-mode stream and
Fisher–Yates shuffle as single-image orders (``readerstudy.ordering``).

Rules:

* a real and a synthetic image are paired only when they share a modality and a finding
  (the finding compared without case), so a pair differs in where it came from, not in
  what it shows;
* without reuse, each image is in at most one pair (the larger side of a group leaves some
  images out); with reuse, every image of the larger side is paired and the smaller side is
  cycled through in its shuffled order;
* the pairs' order is shuffled, and which side the synthetic image goes to is one draw per
  pair from its own stream: it depends on nothing but the seed and the reader;
* practice pairs come first and are drawn the same way from the practice cases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from readerstudy.ordering import HashStream, OrderingError

ALGORITHM = "sha256-ctr-fisher-yates-pairs-v1"


@dataclass(frozen=True)
class PairCase:
    case_id: int
    synthetic: bool
    modality: str
    finding: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.modality, self.finding.strip().lower())


@dataclass(frozen=True)
class PlannedPair:
    position: int  # 1-based; practice first
    left_case_id: int
    right_case_id: int
    synthetic_on_left: bool
    showing: int  # how many times the left case has been on the left so far (1 first)
    is_practice: bool


def _match(seed: int, reader_id: int, cases: Sequence[PairCase], label: str, reuse: bool):
    groups: dict[tuple[str, str], dict[bool, list[int]]] = defaultdict(
        lambda: {True: [], False: []}
    )
    for case in cases:
        groups[case.key][case.synthetic].append(case.case_id)
    matched: list[tuple[int, int]] = []  # (real, synthetic)
    for key in sorted(groups):
        real = HashStream(seed, reader_id, f"{label}-real-{key!r}").shuffled(groups[key][False])
        fake = HashStream(seed, reader_id, f"{label}-synthetic-{key!r}").shuffled(groups[key][True])
        if not real or not fake:
            continue
        n = max(len(real), len(fake)) if reuse else min(len(real), len(fake))
        matched += [(real[i % len(real)], fake[i % len(fake)]) for i in range(n)]
    return matched


def _ordered(seed: int, reader_id: int, matched, label: str) -> list[tuple[int, int, bool]]:
    order = HashStream(seed, reader_id, f"{label}-order").shuffled(range(len(matched)))
    sides = HashStream(seed, reader_id, f"{label}-sides")
    out = []
    for index in order:
        real, fake = matched[index]
        synthetic_on_left = sides.below(2) == 1
        out.append((fake, real, True) if synthetic_on_left else (real, fake, False))
    return out


def plan_pairs(
    *,
    seed: int,
    reader_id: int,
    cases: Sequence[PairCase],
    practice_cases: Sequence[PairCase] = (),
    allow_reuse: bool = False,
) -> list[PlannedPair]:
    ids = [c.case_id for c in cases] + [c.case_id for c in practice_cases]
    if len(set(ids)) != len(ids):
        raise OrderingError("case ids must be distinct, and no case both practice and study")
    practice = _ordered(
        seed,
        reader_id,
        _match(seed, reader_id, practice_cases, "practice", allow_reuse),
        "practice",
    )
    study = _ordered(seed, reader_id, _match(seed, reader_id, cases, "pairs", allow_reuse), "pairs")
    if not study:
        raise OrderingError(
            "no real and synthetic (non-practice) image share a modality and a finding, so no "
            "pair can be formed: add matching cases"
        )
    planned: list[PlannedPair] = []
    showings: dict[int, int] = defaultdict(int)
    for is_practice, rows in ((True, practice), (False, study)):
        for left, right, synthetic_on_left in rows:
            showings[left] += 1
            planned.append(
                PlannedPair(
                    len(planned) + 1, left, right, synthetic_on_left, showings[left], is_practice
                )
            )
    return planned
