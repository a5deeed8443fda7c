"""The exposure staircase, against trajectories worked out by hand."""

import pytest

from readerstudy.staircase import Staircase, levels, next_exposure, reversals


def test_it_follows_the_three_down_one_up_rule():
    s = Staircase(start=500, step=30, low=100, high=1000, down=3, up=1)
    outcomes = [True, True, True, True, False, True, True, True, False, False]
    # 500 500 500 -> 470 after the third; 470 470(the 4th right, run 1) -> wrong: 500;
    # three right: 470; wrong: 500; wrong: 530.
    assert levels(s, outcomes) == [500, 500, 500, 470, 470, 500, 500, 500, 470, 500, 530]
    assert next_exposure(s, outcomes) == 530
    assert reversals(levels(s, outcomes)) == [470, 500, 470]


def test_it_stays_within_bounds():
    s = Staircase(start=130, step=30, low=100, high=160, down=1, up=1)
    assert levels(s, [True] * 3) == [130, 100, 100, 100]
    assert levels(s, [False] * 3) == [130, 160, 160, 160]


def test_it_refuses_inconsistent_settings():
    with pytest.raises(ValueError):
        Staircase(start=50, low=100)
    with pytest.raises(ValueError):
        Staircase(down=0)
