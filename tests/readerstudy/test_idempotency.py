"""One reading per slot, whatever the browser does: double clicks, resubmits, two tabs."""

import threading

import pytest
from django.db import connection, connections
from django.test import Client

from readerstudy.models import Reading, ReadingRevision
from readerstudy.services.reading import AnswerData, Outcome, record_answer
from readerstudy.services.studies import close_study
from tests.readerstudy.helpers import HTMX, answer_payload, case_url, slots_of

pytestmark = pytest.mark.django_db


def test_it_treats_a_double_submit_as_one_reading(client, reader, build_study):
    study = build_study(readers=[reader], confidence_scale=5)
    first, second = slots_of(study, reader)[:2]
    client.force_login(reader)
    once = client.post(case_url(first), answer_payload("fake", 3, "x"), **HTMX)
    twice = client.post(case_url(first), answer_payload("fake", 3, "x"), **HTMX)
    assert once.status_code == twice.status_code == 200
    assert once["HX-Push-Url"] == twice["HX-Push-Url"] == case_url(second)
    plain = client.post(case_url(first), answer_payload("fake", 3, "x"))
    assert plain.status_code == 303 and plain["Location"] == case_url(second)
    assert Reading.objects.count() == 1
    reading = Reading.objects.get()
    assert reading.revision_count == 0
    assert not ReadingRevision.objects.exists()


def test_it_refuses_a_different_answer_for_an_answered_case(client, reader, build_study):
    study = build_study(readers=[reader])
    first = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(first), answer_payload("fake"))
    response = client.post(case_url(first), answer_payload("real"))
    assert response.status_code == 409
    assert "Nothing was recorded" in response.content.decode()
    assert f"/studies/{study.public_id}/next/" in response.content.decode()
    partial = client.post(case_url(first), answer_payload("real"), **HTMX)
    assert partial.status_code == 409 and "<html" not in partial.content.decode()
    reading = Reading.objects.get()
    assert (reading.answer, reading.revision_count) == ("fake", 0)
    assert not ReadingRevision.objects.exists()


def test_it_refuses_an_answer_for_a_later_case(client, reader, build_study):
    study = build_study(readers=[reader])
    later = slots_of(study, reader)[2]
    client.force_login(reader)
    response = client.post(case_url(later), answer_payload("real"))
    assert response.status_code == 409
    assert "not your current case" in response.content.decode()
    assert not Reading.objects.exists()


def test_it_lets_two_tabs_create_one_reading_only(reader, build_study):
    study = build_study(readers=[reader])
    first, second = slots_of(study, reader)[:2]
    tab_one, tab_two = Client(), Client()
    tab_one.force_login(reader)
    tab_two.force_login(reader)
    tab_one.get(case_url(first))
    tab_two.get(case_url(first))
    assert tab_one.post(case_url(first), answer_payload("real")).status_code == 303
    assert tab_two.post(case_url(first), answer_payload("fake")).status_code == 409
    # the second tab, now on the next case, answers it normally
    assert tab_two.post(case_url(second), answer_payload("fake")).status_code == 303
    assert [(r.slot_id, r.answer) for r in Reading.objects.order_by("slot__position")] == [
        (first.id, "real"),
        (second.id, "fake"),
    ]


def test_it_writes_nothing_in_a_closed_study(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    close_study(study)
    client.force_login(reader)
    response = client.post(case_url(slot), answer_payload("real"))
    assert response.status_code == 409
    assert "closed" in response.content.decode()
    assert client.get(case_url(slot))["Location"] == f"/studies/{study.public_id}/"
    assert client.get(f"/read/{slot.token}/image.png").status_code == 404
    assert record_answer(slot, AnswerData(answer="real")).outcome is Outcome.CLOSED
    assert not Reading.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_serialises_simultaneous_answers(reader, build_study):
    """Several threads answer the same slot at once: exactly one reading, no error."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database cannot be shared by threads with locking")
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    barrier = threading.Barrier(4)
    outcomes, errors = [], []

    def answer(value):
        try:
            barrier.wait()
            outcomes.append(record_answer(slot, AnswerData(answer=value)).outcome)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=answer, args=(value,))
        for value in ("real", "real", "fake", "unsure")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert Reading.objects.filter(slot=slot).count() == 1
    assert outcomes.count(Outcome.RECORDED) == 1
    assert set(outcomes) <= {Outcome.RECORDED, Outcome.REPEATED, Outcome.STALE}
