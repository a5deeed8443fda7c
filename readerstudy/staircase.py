"""The HYPE-time exposure staircase: pure, so the server can replay it from stored readings.

No Django here. A transformed up/down staircase: after ``down`` consecutive correct answers the
exposure gets one ``step`` shorter, after ``up`` consecutive wrong answers one step longer, never
leaving [``low``, ``high``]. With ``down=3, up=1`` it converges on the exposure at which a reader
is right about 79% of the time (Levitt 1971). An unsure answer counts as wrong.

The exposure of a screen is a function of the reader's earlier answers only (never of the
image on that screen), which is what keeps the design blind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class Staircase:
    start: int = 500
    step: int = 30
    low: int = 100
    high: int = 1000
    down: int = 3
    up: int = 1

    def __post_init__(self) -> None:
        if not (0 < self.low <= self.start <= self.high) or self.step <= 0:
            raise ValueError("need 0 < low <= start <= high and a positive step")
        if self.down < 1 or self.up < 1:
            raise ValueError("the up/down rule needs at least one answer each way")


def levels(staircase: Staircase, outcomes: Sequence[bool]) -> list[int]:
    """The exposure of every trial, and after them the next one: ``len(outcomes) + 1`` levels."""
    level = staircase.start
    right = wrong = 0
    out = [level]
    for correct in outcomes:
        if correct:
            right, wrong = right + 1, 0
            if right >= staircase.down:
                level, right = max(staircase.low, level - staircase.step), 0
        else:
            right, wrong = 0, wrong + 1
            if wrong >= staircase.up:
                level, wrong = min(staircase.high, level + staircase.step), 0
        out.append(level)
    return out


def next_exposure(staircase: Staircase, outcomes: Sequence[bool]) -> int:
    return levels(staircase, outcomes)[-1]


def reversals(trial_levels: Sequence[int]) -> list[int]:
    """Levels at which the staircase changed direction (the level the turn started from)."""
    found: list[int] = []
    direction = 0
    for before, after in pairwise(trial_levels):
        if after == before:
            continue
        moving = 1 if after > before else -1
        if direction and moving != direction:
            found.append(before)
        direction = moving
    return found
