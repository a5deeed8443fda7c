"""The studies list in the admin shows how far each study's readers are."""

import pytest
from django.utils import timezone

from readerstudy.models import Reading, Study
from readerstudy.progress import progress_label, with_progress
from tests.factories import ResearcherFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder, slots_of

pytestmark = pytest.mark.django_db

LIST = "/admin/readerstudy/study/"


def answer(slots, n: int) -> None:
    now = timezone.now()
    for slot in slots[:n]:
        Reading.objects.create(slot=slot, answer="fake", served_at=now, answered_at=now)


def test_it_counts_answered_of_expected_readings_over_all_readers(db):
    first, second = UserFactory(), UserFactory()
    study = StudyBuilder()(readers=[first, second], n_real=3, n_synthetic=3)
    answer(slots_of(study, first), 6)
    answer(slots_of(study, second), 2)
    draft = StudyBuilder()(readers=[first], open=False)
    rows = {row.pk: row for row in with_progress(Study.objects.all())}
    assert (rows[study.pk].readings_answered, rows[study.pk].readings_expected) == (8, 12)
    assert progress_label(rows[study.pk]) == "8 of 12 (66%)"
    assert progress_label(rows[draft.pk]) == "—"


def test_it_shows_a_progress_column_and_sorts_by_it(client):
    reader = UserFactory()
    behind = StudyBuilder()(readers=[reader], title="Behind")
    ahead = StudyBuilder()(readers=[reader], title="Ahead")
    answer(slots_of(ahead, reader), 3)
    answer(slots_of(behind, reader), 1)
    client.force_login(ResearcherFactory())
    page = client.get(LIST).content.decode()
    assert "Readings answered" in page
    assert "3 of 4 (75%)" in page and "1 of 4 (25%)" in page
    # The column's ordering index: title, status, cases, readers, progress (5).
    ordered = client.get(LIST, {"o": "-5"}).content.decode()
    assert ordered.index("Ahead") < ordered.index("Behind")


def test_it_keeps_the_case_and_reader_counts_right_beside_the_progress(client):
    readers = [UserFactory(), UserFactory()]
    StudyBuilder()(readers=readers, title="Counted", n_real=2, n_synthetic=3)
    client.force_login(ResearcherFactory())
    page = client.get(LIST).content.decode()
    assert '<td class="field-case_count">5</td>' in page
    assert '<td class="field-reader_count">2</td>' in page
    assert "0 of 10 (0%)" in page
