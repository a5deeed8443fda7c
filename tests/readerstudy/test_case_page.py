"""The case page: what it shows, serving times, resuming, and its query count."""

import re
from datetime import timedelta

import pytest

from readerstudy.models import ReadingSlot
from readerstudy.services.reading import AnswerData, record_answer
from tests.readerstudy.helpers import HTMX, case_url, session_queries, slots_of

pytestmark = pytest.mark.django_db


def test_it_shows_the_current_case_with_image_answers_and_progress(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    response = client.get(case_url(slot))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'src="/read/{slot.token}/image.png"' in html
    assert "Case 1 of 4" in html
    for key, label in (("R", "Real"), ("F", "Fake"), ("U", "Unsure")):
        assert f"<kbd>{key}</kbd> {label}" in html
    assert 'name="comment"' in html
    assert 'name="client_ms"' in html
    assert 'name="confidence"' not in html
    assert "<canvas" in html and "reader.js" in html and "htmx.min.js" in html
    assert response["Cache-Control"] == "private, no-store"


def test_it_shows_the_confidence_scale_when_the_study_collects_it(client, reader, build_study):
    study = build_study(readers=[reader], confidence_scale=5)
    client.force_login(reader)
    html = client.get(case_url(slots_of(study, reader)[0])).content.decode()
    for level in range(1, 6):
        assert f'name="confidence" value="{level}"' in html
    assert 'type="radio" name="answer" value="real"' in html


def test_it_preloads_the_next_image(client, reader, build_study):
    study = build_study(readers=[reader])
    first, second = slots_of(study, reader)[:2]
    client.force_login(reader)
    html = client.get(case_url(first)).content.decode()
    assert f'data-next-image="/read/{second.token}/image.png"' in html


def test_it_answers_htmx_with_the_partial_only(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    partial = client.get(case_url(slot), **HTMX)
    full = client.get(case_url(slot))
    assert "<html" not in partial.content.decode()
    assert 'class="reader-bar"' in partial.content.decode()
    assert "<html" in full.content.decode()
    assert "HX-Request" in partial["Vary"] and "HX-Request" in full["Vary"]


def test_it_records_the_first_serve_and_never_moves_it(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    client.get(case_url(slot))
    slot.refresh_from_db()
    first_served = slot.served_at
    assert first_served is not None
    ReadingSlot.objects.filter(pk=slot.pk).update(served_at=first_served - timedelta(minutes=5))
    client.get(case_url(slot))
    client.get(case_url(slot), **HTMX)
    slot.refresh_from_db()
    assert slot.served_at == first_served - timedelta(minutes=5)


def test_it_sends_a_later_case_back_to_the_current_one(client, reader, build_study):
    study = build_study(readers=[reader])
    slots = slots_of(study, reader)
    client.force_login(reader)
    response = client.get(case_url(slots[2]))
    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.public_id}/next/"
    slots[2].refresh_from_db()
    assert slots[2].served_at is None


def test_it_resumes_at_the_first_unanswered_case(client, reader, build_study):
    study = build_study(readers=[reader])
    slots = slots_of(study, reader)
    for slot in slots[:2]:
        record_answer(slot, AnswerData(answer="real"))
    client.force_login(reader)
    response = client.get(f"/studies/{study.public_id}/next/")
    assert response["Location"] == case_url(slots[2])
    # a fresh login (new session) resumes at the same place: nothing lives in the session
    client.logout()
    client.force_login(reader)
    assert client.get(f"/studies/{study.public_id}/next/")["Location"] == case_url(slots[2])
    assert "Case 3 of 4" in client.get(case_url(slots[2])).content.decode()


def test_it_redirects_an_answered_case_when_going_back_is_off(client, reader, build_study):
    study = build_study(readers=[reader])
    first = slots_of(study, reader)[0]
    record_answer(first, AnswerData(answer="real"))
    client.force_login(reader)
    assert client.get(case_url(first))["Location"] == f"/studies/{study.public_id}/next/"
    htmx = client.get(case_url(first), **HTMX)
    assert htmx.status_code == 204
    assert htmx["HX-Redirect"] == f"/studies/{study.public_id}/next/"


def test_it_shows_the_study_intro_with_sanitised_instructions(client, reader, build_study):
    study = build_study(
        readers=[reader],
        instructions="Read **carefully**.\n\n<script>alert(1)</script>",
        n_practice=2,
    )
    client.force_login(reader)
    html = client.get(f"/studies/{study.public_id}/").content.decode()
    assert "<strong>carefully</strong>" in html
    assert "<script>alert" not in html
    assert "Start" in html and f"/studies/{study.public_id}/next/" in html
    assert "practice" in html


def test_it_shows_the_completion_page_only_at_the_end(client, reader, build_study):
    study = build_study(readers=[reader], n_real=1, n_synthetic=1)
    slots = slots_of(study, reader)
    client.force_login(reader)
    done_url = f"/studies/{study.public_id}/done/"
    assert client.get(done_url)["Location"] == f"/studies/{study.public_id}/next/"
    for slot in slots:
        record_answer(slot, AnswerData(answer="unsure"))
    assert client.get(f"/studies/{study.public_id}/next/")["Location"] == done_url
    html = client.get(done_url).content.decode()
    assert "Thank you" in html and "2 of 2" in html


def test_it_uses_a_fixed_number_of_queries(client, reader, build_study, django_assert_num_queries):
    study = build_study(readers=[reader], n_real=5, n_synthetic=5, n_practice=2, confidence_scale=5)
    slots = slots_of(study, reader)
    record_answer(slots[0], AnswerData(answer="real", confidence=3))
    client.force_login(reader)
    # (session,) user, slot with study and reading, progress with the neighbours, served_at
    with django_assert_num_queries(4 + session_queries()):
        assert client.get(case_url(slots[1])).status_code == 200
    with django_assert_num_queries(4 + session_queries()):
        assert client.get(case_url(slots[1]), **HTMX).status_code == 200


def test_it_shows_case_numbers_after_the_practice(client, reader, build_study):
    study = build_study(readers=[reader], n_practice=2)
    slots = slots_of(study, reader)
    client.force_login(reader)
    assert "Practice 1 of 2" in client.get(case_url(slots[0])).content.decode()
    for slot in slots[:2]:
        record_answer(slot, AnswerData(answer="real"))
    html = client.get(case_url(slots[2])).content.decode()
    assert "Case 1 of 4" in html
    assert re.search(r'aria-valuenow="2"', html)
