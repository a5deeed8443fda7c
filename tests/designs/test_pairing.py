"""Pairs: matched by modality and finding, each image once (unless reuse), reproducible."""

from collections import Counter

import pytest

from readerstudy.ordering import OrderingError
from readerstudy.pairing import PairCase, plan_pairs

REAL = [PairCase(i, False, "CXR", f) for i, f in enumerate(["normal"] * 4 + ["pneumonia"] * 3, 1)]
FAKE = [PairCase(i, True, "CXR", f) for i, f in enumerate(["normal"] * 2 + ["Pneumonia"] * 5, 11)]
CT_FAKE = [PairCase(30, True, "CT", "normal")]
TRUTH = {c.case_id: c for c in REAL + FAKE + CT_FAKE}


def plan(seed=7, reader=3, **options):
    return plan_pairs(seed=seed, reader_id=reader, cases=REAL + FAKE + CT_FAKE, **options)


def test_it_pairs_only_matching_modality_and_finding():
    for pair in plan():
        left, right = TRUTH[pair.left_case_id], TRUTH[pair.right_case_id]
        assert left.key == right.key
        assert left.synthetic != right.synthetic
        assert TRUTH[pair.left_case_id].synthetic == pair.synthetic_on_left


def test_it_uses_each_image_at_most_once_without_reuse():
    pairs = plan()
    assert len(pairs) == 2 + 3  # min(4, 2) normal + min(3, 5) pneumonia; the CT fake has no match
    used = [p.left_case_id for p in pairs] + [p.right_case_id for p in pairs]
    assert len(used) == len(set(used))
    assert [p.position for p in pairs] == [1, 2, 3, 4, 5]
    assert all(p.showing == 1 for p in pairs)


def test_it_pairs_every_image_of_the_larger_side_with_reuse():
    pairs = plan(allow_reuse=True)
    assert len(pairs) == 4 + 5
    used = Counter(p.left_case_id for p in pairs) + Counter(p.right_case_id for p in pairs)
    assert all(used[c.case_id] == 1 for c in REAL[:4] + FAKE[2:])  # the larger sides: once
    assert {used[11], used[12]} == {2}  # two normal fakes cycled over four normal reals


def test_it_is_reproducible_and_differs_between_readers():
    assert plan() == plan()
    assert plan(reader=4) != plan(reader=3)


def test_it_randomizes_sides_evenly():
    lefts = Counter()
    for reader in range(400):
        for pair in plan(reader=reader):
            lefts[pair.synthetic_on_left] += 1
    share = lefts[True] / (lefts[True] + lefts[False])
    assert 0.45 < share < 0.55  # 2000 pairs: 5 standard errors either side


def test_it_puts_practice_pairs_first():
    practice = [PairCase(50, False, "CXR", "normal"), PairCase(51, True, "CXR", "normal")]
    pairs = plan(practice_cases=practice)
    assert pairs[0].is_practice and {pairs[0].left_case_id, pairs[0].right_case_id} == {50, 51}
    assert not any(p.is_practice for p in pairs[1:])


def test_it_refuses_when_nothing_can_be_paired():
    with pytest.raises(OrderingError, match="no real and synthetic"):
        plan_pairs(seed=1, reader_id=1, cases=REAL[:2] + CT_FAKE)
