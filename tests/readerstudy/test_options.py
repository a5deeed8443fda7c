"""The study options: going back with revisions kept, practice cases, repeated cases."""

import pytest

from readerstudy.models import Reading, ReadingRevision
from readerstudy.services.reading import AnswerData, record_answer
from tests.readerstudy.helpers import HTMX, answer_payload, case_url, slots_of

pytestmark = pytest.mark.django_db


# --- going back ----------------------------------------------------------------------


def test_it_keeps_every_changed_answer_as_a_revision(client, reader, build_study):
    study = build_study(readers=[reader], allow_revisions=True, confidence_scale=5)
    first, second, third = slots_of(study, reader)[:3]
    client.force_login(reader)
    client.post(case_url(first), answer_payload("real", 2, client_ms="900"))
    client.post(case_url(second), answer_payload("fake", 4))

    page = client.get(case_url(first))
    assert page.status_code == 200
    html = page.content.decode()
    assert "You answered <strong>Real</strong>, confidence 2" in html
    assert 'value="real" data-key="r" required checked' in html

    response = client.post(case_url(first), answer_payload("fake", 5, "second look"))
    assert response.status_code == 303
    assert response["Location"] == case_url(third)  # back to where the reader was
    reading = Reading.objects.get(slot=first)
    assert (reading.answer, reading.confidence, reading.comment, reading.revision_count) == (
        "fake",
        5,
        "second look",
        1,
    )
    revision = ReadingRevision.objects.get(reading=reading)
    assert (revision.answer, revision.confidence, revision.client_ms) == ("real", 2, 900)
    assert revision.answered_at < reading.answered_at

    client.post(case_url(first), answer_payload("unsure", 1))
    assert Reading.objects.get(slot=first).revision_count == 2
    assert list(ReadingRevision.objects.values_list("answer", flat=True)) == ["real", "fake"]
    assert Reading.objects.count() == 2


def test_it_makes_no_revision_for_the_same_answer(client, reader, build_study):
    study = build_study(readers=[reader], allow_revisions=True)
    first = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(first), answer_payload("real"))
    client.post(case_url(first), answer_payload("real"))
    assert Reading.objects.get(slot=first).revision_count == 0
    assert not ReadingRevision.objects.exists()


def test_it_links_previous_and_next_cases_when_going_back_is_on(client, reader, build_study):
    study = build_study(readers=[reader], allow_revisions=True, n_practice=1)
    practice, first, second, third = slots_of(study, reader)[:4]
    client.force_login(reader)
    for slot in (practice, first, second):
        record_answer(slot, AnswerData(answer="real"))
    current = client.get(case_url(third)).content.decode()
    assert f'href="{case_url(second)}"' in current and "data-previous" in current
    assert "data-forward" not in current
    middle = client.get(case_url(second), **HTMX).content.decode()
    assert f'hx-get="{case_url(first)}"' in middle and f'hx-get="{case_url(third)}"' in middle
    earliest = client.get(case_url(first)).content.decode()
    assert "data-previous" not in earliest  # never back into the practice
    assert practice.token not in earliest


def test_it_offers_no_way_back_when_going_back_is_off(client, reader, build_study):
    study = build_study(readers=[reader])
    first, second = slots_of(study, reader)[:2]
    record_answer(first, AnswerData(answer="real"))
    client.force_login(reader)
    html = client.get(case_url(second)).content.decode()
    assert "data-previous" not in html
    assert case_url(first) not in html


def test_it_offers_a_review_from_the_completion_page(client, reader, build_study):
    study = build_study(readers=[reader], allow_revisions=True, n_real=1, n_synthetic=1)
    slots = slots_of(study, reader)
    for slot in slots:
        record_answer(slot, AnswerData(answer="real"))
    client.force_login(reader)
    html = client.get(f"/studies/{study.public_id}/done/").content.decode()
    assert case_url(slots[-1]) in html
    assert client.get(case_url(slots[0])).status_code == 200


# --- practice -------------------------------------------------------------------------


def test_it_reveals_the_truth_of_a_practice_case_only_after_the_answer(client, reader, build_study):
    study = build_study(readers=[reader], n_practice=2)
    slots = slots_of(study, reader)
    practice = [slot for slot in slots if slot.is_practice]
    assert [slot.position for slot in practice] == [1, 2]
    client.force_login(reader)
    feedback_url = f"/read/{practice[0].token}/feedback/"
    assert client.get(feedback_url).status_code == 404
    before = client.get(case_url(practice[0])).content.decode()
    assert "This image is" not in before

    truth = practice[0].case.image.truth
    response = client.post(case_url(practice[0]), answer_payload("fake"))
    assert response.status_code == 303 and response["Location"] == feedback_url
    html = client.get(feedback_url).content.decode()
    assert f"This image is {truth}." in html
    assert ("Correct." in html) == (truth == "synthetic")
    assert f'href="{case_url(practice[1])}"' in html and "data-continue" in html
    # the answered practice case leads to its feedback, not to a new answer
    assert client.get(case_url(practice[0]))["Location"] == feedback_url


def test_it_swaps_in_the_feedback_for_htmx(client, reader, build_study):
    study = build_study(readers=[reader], n_practice=1)
    practice, first = slots_of(study, reader)[:2]
    client.force_login(reader)
    response = client.post(case_url(practice), answer_payload("unsure"), **HTMX)
    assert response["HX-Push-Url"] == f"/read/{practice.token}/feedback/"
    html = response.content.decode()
    assert "This image is" in html and "<html" not in html
    assert f'hx-get="{case_url(first)}"' in html
    assert f'data-next-image="/read/{first.token}/image.png"' in html


def test_it_never_revises_a_practice_answer(client, reader, build_study):
    study = build_study(readers=[reader], n_practice=1, allow_revisions=True)
    practice = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(practice), answer_payload("real"))
    assert client.post(case_url(practice), answer_payload("fake")).status_code == 409
    assert Reading.objects.get(slot=practice).answer == "real"


def test_it_marks_practice_slots_for_the_statistics(build_study, reader):
    study = build_study(readers=[reader], n_practice=3)
    flags = [slot.is_practice for slot in slots_of(study, reader)]
    assert flags == [True, True, True, False, False, False, False]


# --- repeated cases -------------------------------------------------------------------


def test_it_records_a_repeated_case_as_a_separate_reading(client, reader, build_study):
    study = build_study(
        readers=[reader], n_real=3, n_synthetic=3, repeat_fraction=0.34, repeat_min_gap=3
    )
    slots = slots_of(study, reader)
    assert len(slots) == 8
    repeats = [slot for slot in slots if slot.showing == 2]
    assert len(repeats) == 2
    client.force_login(reader)
    for slot in slots:
        assert client.post(case_url(slot), answer_payload("real")).status_code == 303
    for repeat in repeats:
        first = next(s for s in slots if s.case_id == repeat.case_id and s.showing == 1)
        assert repeat.position - first.position >= 3
        assert repeat.token != first.token
        assert Reading.objects.filter(slot__case_id=repeat.case_id).count() == 2


def test_it_does_not_tell_the_reader_a_case_is_a_repeat(client, reader, build_study):
    study = build_study(
        readers=[reader], n_real=2, n_synthetic=2, repeat_fraction=0.5, repeat_min_gap=1
    )
    client.force_login(reader)
    for slot in slots_of(study, reader):
        html = client.get(case_url(slot)).content.decode().lower()
        assert "repeat" not in html and "again" not in html and "second" not in html
        record_answer(slot, AnswerData(answer="real"))
