"""The reader's home page: their studies, progress, and a start/continue button."""

import pytest

from readerstudy.services.reading import AnswerData, record_answer
from readerstudy.services.studies import close_study
from tests.readerstudy.helpers import slots_of
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db


def test_it_lists_only_the_readers_open_and_closed_studies(
    client, reader, other_reader, build_study
):
    mine = build_study(readers=[reader], title="Mine")
    build_study(readers=[other_reader], title="Theirs")
    build_study(readers=[reader], title="Still a draft", open=False)
    client.force_login(reader)
    html = client.get("/").content.decode()
    assert "Mine" in html
    assert "Theirs" not in html
    assert "Still a draft" not in html
    assert f"/studies/{mine.public_id}/" in html
    assert "Start" in html


def test_it_shows_progress_and_continue(client, reader, build_study):
    study = build_study(readers=[reader])
    record_answer(slots_of(study, reader)[0], AnswerData(answer="fake"))
    client.force_login(reader)
    html = client.get("/").content.decode()
    assert "1 of 4 answered" in html
    assert f'href="/studies/{study.public_id}/next/"' in html
    assert "Continue" in html


def test_it_shows_closed_studies_read_only(client, reader, build_study):
    study = build_study(readers=[reader], title="Finished business")
    close_study(study)
    client.force_login(reader)
    html = client.get("/").content.decode()
    assert "Finished business" in html
    assert "read-only" in html
    assert f"/studies/{study.public_id}/next/" not in html


def test_it_says_when_nothing_is_assigned(client, reader):
    client.force_login(reader)
    assert "No study is assigned to you yet" in client.get("/").content.decode()


def test_it_uses_a_fixed_number_of_queries(client, reader, build_study, django_assert_num_queries):
    for _ in range(3):
        build_study(readers=[reader])
    client.force_login(reader)
    # (session,) user, the assignments with their progress
    with django_assert_num_queries(2 + session_queries()):
        assert client.get("/").status_code == 200
