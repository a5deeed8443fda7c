"""The per-reader order, as a pure function (no database)."""

from collections import Counter

import pytest

from readerstudy.ordering import (
    ALGORITHM,
    HashStream,
    OrderingError,
    check_feasible,
    max_repeats,
    plan_order,
    repeat_count,
)

CASES = list(range(101, 121))  # 20 cases
PRACTICE = [7, 8, 9]


def order(**overrides):
    arguments = {
        "seed": 42,
        "reader_id": 3,
        "case_ids": CASES,
        "practice_case_ids": PRACTICE,
        "repeat_fraction": 0.25,
        "repeat_min_gap": 5,
    }
    return plan_order(**(arguments | overrides))


def test_it_is_reproducible_from_seed_and_reader():
    assert order() == order()
    assert order(case_ids=list(reversed(CASES))) == order()  # input order does not matter


def test_it_differs_between_readers_and_seeds():
    base = [slot.case_id for slot in order()]
    assert [slot.case_id for slot in order(reader_id=4)] != base
    assert [slot.case_id for slot in order(seed=43)] != base


def test_it_keeps_the_procedure_fixed_for_audits():
    # A stored order names the procedure that drew it; this pins that procedure, so a
    # change to it must come with a new ALGORITHM name.
    assert ALGORITHM == "sha256-ctr-fisher-yates-v1"
    plan = plan_order(
        seed=1,
        reader_id=1,
        case_ids=[1, 2, 3, 4, 5, 6],
        practice_case_ids=[10, 11],
        repeat_fraction=1 / 3,
        repeat_min_gap=2,
    )
    assert [(slot.case_id, slot.showing) for slot in plan] == [
        (10, 1),
        (11, 1),
        (4, 1),
        (1, 1),
        (6, 1),
        (1, 2),
        (2, 1),
        (3, 1),
        (5, 1),
        (6, 2),
    ]
    assert HashStream(1, 1, "x").shuffled([1, 2, 3]) == HashStream(1, 1, "x").shuffled([3, 1, 2])


def test_it_puts_practice_cases_first():
    plan = order()
    assert [slot.is_practice for slot in plan[:3]] == [True, True, True]
    assert {slot.case_id for slot in plan[:3]} == set(PRACTICE)
    assert not any(slot.is_practice for slot in plan[3:])


def test_it_shows_every_case_once_and_the_repeats_twice():
    plan = order()
    counts = Counter(slot.case_id for slot in plan if not slot.is_practice)
    assert set(counts) == set(CASES)
    assert sum(count == 2 for count in counts.values()) == repeat_count(20, 0.25) == 5
    assert [slot.position for slot in plan] == list(range(1, len(plan) + 1))
    for slot in plan:
        assert slot.showing == (2 if slot.showing == 2 else 1)


@pytest.mark.parametrize("gap", [1, 3, 8])
def test_it_keeps_repeats_at_least_the_gap_after_the_first_showing(gap):
    for reader_id in range(60):
        plan = order(reader_id=reader_id, repeat_min_gap=gap, repeat_fraction=0.5)
        first = {slot.case_id: slot.position for slot in plan if slot.showing == 1}
        repeats = [slot for slot in plan if slot.showing == 2]
        assert len(repeats) == 10
        for slot in repeats:
            assert slot.position - first[slot.case_id] >= gap


def test_it_refuses_more_repeats_than_the_gap_allows():
    assert max_repeats(6, 5) == 2
    check_feasible(6, 1 / 3, 5)
    with pytest.raises(OrderingError, match="at most 2"):
        plan_order(
            seed=1, reader_id=1, case_ids=[1, 2, 3, 4, 5, 6], repeat_fraction=0.5, repeat_min_gap=5
        )


def test_it_refuses_a_case_that_is_both_practice_and_study_case():
    with pytest.raises(OrderingError):
        plan_order(seed=1, reader_id=1, case_ids=[1, 2], practice_case_ids=[2])


def test_it_rounds_the_repeat_share_half_up():
    assert repeat_count(10, 0.25) == 3
    assert repeat_count(10, 0.0) == 0
    assert repeat_count(30, 0.1) == 3


def test_it_spreads_orders_uniformly_enough():
    # Over many readers, each case takes the first position about equally often.
    firsts = Counter(
        plan_order(seed=9, reader_id=reader_id, case_ids=[1, 2, 3, 4])[0].case_id
        for reader_id in range(800)
    )
    assert set(firsts) == {1, 2, 3, 4}
    assert min(firsts.values()) > 150
