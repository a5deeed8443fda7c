"""ReadingTable validates its input with clear errors."""

import numpy as np
import pytest

from readerstudy.analysis import ReadingTable


def _kwargs(**overrides):
    base = {
        "reader": [0, 1, 0, 1],
        "case": [0, 0, 1, 1],
        "is_fake": [True, True, False, False],
        "answer": [2, 1, 0, 2],
        "reader_labels": ["r1", "r2"],
        "case_labels": ["c1", "c2"],
    }
    base.update(overrides)
    return base


def test_it_accepts_a_valid_table_and_fills_defaults():
    table = ReadingTable(**_kwargs())
    assert len(table) == 4
    assert table.n_readers == 2 and table.n_cases == 2
    assert np.isnan(table.confidence).all()
    assert (table.showing == 1).all()
    assert table.answer.dtype == np.int8
    with pytest.raises(ValueError):
        table.answer[0] = 1  # read-only copy


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"answer": [2, 1, 0, 3]}, "answer codes"),
        ({"answer": [2, 1, 0]}, "answer has 3 entries"),
        ({"reader": [0, 1, 0, 2]}, "reader codes"),
        ({"case": [0, 0, 1, -1]}, "case codes"),
        ({"showing": [1, 1, 1, 3]}, "showing must be 1 or 2"),
        ({"confidence": [1, 2, 0, 5]}, "confidence must be a positive"),
        ({"confidence": [1, 2, np.inf, 5]}, "confidence must be a positive"),
        ({"is_fake": [True, False, False, False]}, "marked both fake and real"),
        ({"is_fake": [2, 1, 0, 0]}, "is_fake must be boolean"),
        ({"reader": [0, 0, 0, 1]}, "more than one reading"),
        ({"reader_labels": ["r1", "r1"]}, "reader_labels must be unique"),
        ({"answer": [2.5, 1, 0, 2]}, "answer must hold integers"),
        ({"answer": ["fake", "unsure", "real", "fake"]}, "answer must hold integers"),
        ({"reader": [[0, 1], [0, 1]]}, "one-dimensional"),
        ({"case_groups": {"generator": ["a"]}}, "case_groups['generator'] has 1 entries"),
    ],
)
def test_it_rejects_bad_input_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ReadingTable(**_kwargs(**overrides))


def test_it_allows_a_repeat_of_the_same_case():
    table = ReadingTable(**_kwargs(reader=[0, 1, 0, 0], case=[0, 0, 1, 1], showing=[1, 1, 1, 2]))
    assert (table.showing == [1, 1, 1, 2]).all()


def test_it_builds_from_records_with_answer_names():
    table = ReadingTable.from_records(
        [
            {"reader": "ann", "case": "x", "is_fake": True, "answer": "fake", "confidence": 4},
            {"reader": "bob", "case": "x", "is_fake": True, "answer": "unsure", "confidence": None},
            {"reader": "ann", "case": "y", "is_fake": False, "answer": "real", "showing": 1},
            {"reader": "ann", "case": "y", "is_fake": False, "answer": "fake", "showing": 2},
        ],
        case_groups={"generator": {"x": "sd-v1", "y": None}},
    )
    assert table.reader_labels == ("ann", "bob")
    assert table.case_labels == ("x", "y")
    assert table.answer.tolist() == [2, 1, 0, 2]
    assert table.confidence[0] == 4 and np.isnan(table.confidence[1])
    assert table.showing.tolist() == [1, 1, 1, 2]
    assert table.case_groups == {"generator": ("sd-v1", "(none)")}
    with pytest.raises(ValueError, match="unknown answer 'maybe'"):
        ReadingTable.from_records([{"reader": "a", "case": "x", "is_fake": 1, "answer": "maybe"}])
    with pytest.raises(ValueError, match="reader 'zed' is not among"):
        ReadingTable.from_records(
            [{"reader": "zed", "case": "x", "is_fake": 1, "answer": "fake"}], reader_labels=["a"]
        )


def test_it_accepts_an_empty_table():
    table = ReadingTable(
        reader=[], case=[], is_fake=[], answer=[], reader_labels=[], case_labels=[]
    )
    assert len(table) == 0
