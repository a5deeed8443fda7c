"""The case page's one query for the progress and the neighbouring slots (surroundings_of)
agrees with the ORM's progress and with the stored order, at every position."""

import pytest

from readerstudy.models import Assignment
from readerstudy.services.reading import AnswerData, progress_of, record_answer, surroundings_of
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


def test_it_agrees_with_the_progress_and_the_stored_order(reader, build_study):
    study = build_study(readers=[reader], n_real=3, n_synthetic=2, n_practice=2)
    assignment = Assignment.objects.get(study=study, reader=reader)
    slots = slots_of(study, reader)
    for answered in range(len(slots) + 1):
        if answered:
            record_answer(slots[answered - 1], AnswerData(answer="real"))
        progress = progress_of(assignment)
        for index, slot in enumerate(slots):
            around = surroundings_of(slot)
            assert around.progress == progress
            before = slots[index - 1] if index else None
            after = slots[index + 1] if index + 1 < len(slots) else None
            assert around.previous == (before and (before.token, before.is_practice))
            assert around.following == (after and (after.token, after.is_practice))
    assert progress.is_complete and progress.practice_total == 2 and progress.total == 7
