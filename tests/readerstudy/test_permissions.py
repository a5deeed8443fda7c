"""Who may see what: anonymous visitors, other readers, staff, drafts, the admin."""

import pytest

from readerstudy.models import Reading
from tests.factories import StaffFactory
from tests.readerstudy.helpers import answer_payload, case_url, slots_of

pytestmark = pytest.mark.django_db


def reader_urls(study, slot) -> list[str]:
    return [
        f"/studies/{study.public_id}/",
        f"/studies/{study.public_id}/next/",
        f"/studies/{study.public_id}/done/",
        case_url(slot),
        f"/read/{slot.token}/image.png",
        f"/read/{slot.token}/feedback/",
    ]


def test_it_sends_anonymous_visitors_to_the_login_page(client, reader, build_study):
    study = build_study(readers=[reader], n_practice=1)
    slot = slots_of(study, reader)[0]
    for url in ["/", *reader_urls(study, slot)]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    response = client.post(case_url(slot), answer_payload("real"))
    assert response.status_code == 302
    assert not Reading.objects.exists()


def test_it_answers_404_for_another_readers_tokens_and_studies(
    client, reader, other_reader, build_study
):
    study = build_study(readers=[reader], n_practice=1)
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(slot), answer_payload("real"))  # so the feedback page exists
    client.force_login(other_reader)
    for url in reader_urls(study, slot):
        assert client.get(url).status_code == 404, url
    assert client.post(case_url(slot), answer_payload("fake")).status_code == 404
    assert Reading.objects.get().answer == "real"


def test_it_answers_404_for_a_token_that_does_not_exist(client, reader, build_study):
    build_study(readers=[reader])
    client.force_login(reader)
    for url in ("/read/not-a-token/", "/read/not-a-token/image.png", "/read/not-a-token/feedback/"):
        assert client.get(url).status_code == 404


def test_it_does_not_let_unassigned_staff_read(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(StaffFactory())
    for url in reader_urls(study, slot):
        assert client.get(url).status_code == 404, url
    assert client.post(case_url(slot), answer_payload("fake")).status_code == 404


def test_it_hides_draft_studies_from_their_readers(client, reader, build_study):
    study = build_study(readers=[reader], open=False, title="Not yet")
    client.force_login(reader)
    assert "Not yet" not in client.get("/").content.decode()
    for url in (f"/studies/{study.public_id}/", f"/studies/{study.public_id}/next/"):
        assert client.get(url).status_code == 404


def test_it_keeps_readers_out_of_the_admin(client, reader):
    client.force_login(reader)
    for url in ("/admin/", "/admin/readerstudy/study/", "/admin/pool/image/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_it_refuses_other_methods(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    assert client.post(f"/read/{slot.token}/image.png").status_code == 405
    assert client.delete(case_url(slot)).status_code == 405
    assert client.post("/").status_code == 405
