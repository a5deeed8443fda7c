"""The research admin: study pages, open/close with refusals, readers and cases by rule."""

import pytest

from pool.models import Truth
from readerstudy.admin import DESIGN_FIELDS
from readerstudy.models import Assignment, ReadingSlot, StudyStatus
from tests.factories import ImageFactory, StudyFactory, UserFactory
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def change_url(study) -> str:
    return f"/admin/readerstudy/study/{study.pk}/change/"


def design_fields(study) -> dict:
    """The study-design fields of the change form, as they are."""
    data = {
        name: str(getattr(study, name))
        for name in DESIGN_FIELDS
        if not isinstance(getattr(study, name), bool)
    }
    data.update({name: "on" for name in ("allow_reuse", "ask_finding") if getattr(study, name)})
    return data


def inline_post(study, *, readers=(), existing_readers=(), cases=(), **fields) -> dict:
    """The change form's POST, with the two inlines' management forms."""
    data = {
        "title": study.title,
        "instructions": study.instructions,
        "confidence_scale": str(study.confidence_scale),
        "repeat_fraction": str(study.repeat_fraction),
        "repeat_min_gap": str(study.repeat_min_gap),
        "seed": str(study.seed),
        **design_fields(study),
        "cases-TOTAL_FORMS": str(len(cases)),
        "cases-INITIAL_FORMS": "0",
        "assignments-TOTAL_FORMS": str(len(existing_readers) + len(readers)),
        "assignments-INITIAL_FORMS": str(len(existing_readers)),
        **fields,
    }
    if study.allow_revisions:
        data["allow_revisions"] = "on"
    for index, image in enumerate(cases):
        data[f"cases-{index}-image"] = str(image.pk)
        data[f"cases-{index}-study"] = str(study.pk)
    for index, assignment in enumerate(existing_readers):
        data[f"assignments-{index}-id"] = str(assignment.pk)
        data[f"assignments-{index}-study"] = str(study.pk)
    for index, user in enumerate(readers, start=len(existing_readers)):
        data[f"assignments-{index}-reader"] = user.get_username()  # readers are typed by name, not id
        data[f"assignments-{index}-study"] = str(study.pk)
    return data


def test_it_renders_the_study_and_image_pages(admin_client, build_study, reader):
    study = build_study(readers=[reader], n_practice=1)
    assert admin_client.get("/admin/readerstudy/study/").status_code == 200
    assert admin_client.get("/admin/readerstudy/study/add/").status_code == 200
    page = admin_client.get(change_url(study)).content.decode()
    assert "Close study" in page
    assert "staff/images/" in page  # case thumbnails
    images = admin_client.get("/admin/pool/image/?truth__exact=synthetic").content.decode()
    assert "/display.png" in images
    image = study.cases.first().image
    assert admin_client.get(f"/admin/pool/image/{image.pk}/change/").status_code == 200


def test_it_builds_a_study_with_cases_and_readers_in_the_admin(admin_client, staff):
    images = [ImageFactory(truth=Truth.REAL), ImageFactory(truth=Truth.SYNTHETIC)]
    study = StudyFactory()
    readers = [UserFactory(), UserFactory()]
    response = admin_client.post(
        change_url(study), inline_post(study, readers=readers, cases=images)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert study.cases.count() == 2
    assert study.assignments.count() == 2
    assert not ReadingSlot.objects.exists()  # drafts have no orders yet


def test_it_opens_and_closes_with_the_buttons(admin_client, build_study, reader):
    study = build_study(readers=[reader], open=False)
    response = admin_client.post(f"/admin/readerstudy/study/{study.pk}/open/", follow=True)
    assert "is open" in response.content.decode()
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN
    assert len(slots_of(study, reader)) == 4
    assert admin_client.get(f"/admin/readerstudy/study/{study.pk}/open/").status_code == 405
    admin_client.post(f"/admin/readerstudy/study/{study.pk}/close/")
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED


def test_it_explains_why_a_study_cannot_open(admin_client):
    study = StudyFactory(title="Empty one")
    response = admin_client.post(f"/admin/readerstudy/study/{study.pk}/open/", follow=True)
    assert "has no cases" in response.content.decode()
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT


def test_it_opens_and_closes_with_list_actions(admin_client, build_study, reader):
    ready = build_study(readers=[reader], open=False)
    empty = StudyFactory()
    response = admin_client.post(
        "/admin/readerstudy/study/",
        {"action": "open_selected", "_selected_action": [ready.pk, empty.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "is open" in html and "has no cases" in html
    ready.refresh_from_db()
    empty.refresh_from_db()
    assert (ready.status, empty.status) == (StudyStatus.OPEN, StudyStatus.DRAFT)
    admin_client.post(
        "/admin/readerstudy/study/", {"action": "close_selected", "_selected_action": [ready.pk]}
    )
    ready.refresh_from_db()
    assert ready.status == StudyStatus.CLOSED


def test_it_draws_the_order_of_a_reader_added_to_an_open_study(admin_client, build_study, reader):
    study = build_study(readers=[reader])
    newcomer = UserFactory()
    existing = list(Assignment.objects.filter(study=study))
    response = admin_client.post(
        change_url(study), inline_post(study, existing_readers=existing, readers=[newcomer])
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assignment = Assignment.objects.get(study=study, reader=newcomer)
    assert assignment.order_drawn_at is not None
    assert len(slots_of(study, newcomer)) == 4


def test_it_freezes_cases_and_order_options_once_open(admin_client, build_study, reader):
    study = build_study(readers=[reader], seed=77)
    page = admin_client.get(change_url(study)).content.decode()
    assert 'name="seed"' not in page
    assert 'name="cases-0-image"' not in page
    assert "Add cases by rule" not in page
    data = inline_post(study, existing_readers=list(study.assignments.all()), seed="5")
    admin_client.post(change_url(study), data)
    study.refresh_from_db()
    assert study.seed == 77


def test_it_adds_cases_by_rule(admin_client):
    study = StudyFactory()
    for _ in range(3):
        ImageFactory(truth=Truth.REAL, finding="pneumonia")
        ImageFactory(truth=Truth.SYNTHETIC, finding="pneumonia")
    url = f"/admin/readerstudy/study/{study.pk}/add-cases/"
    form = admin_client.get(url).content.decode()
    assert "pneumonia" in form
    response = admin_client.post(
        url,
        {
            "n_real": "2",
            "n_synthetic": "2",
            "n_practice": "2",
            "modality": "CXR",
            "finding": "pneumonia",
        },
    )
    assert response.status_code == 302
    assert study.cases.filter(is_practice=False).count() == 4
    assert study.cases.filter(is_practice=True).count() == 2
    refused = admin_client.post(url, {"n_real": "5", "n_synthetic": "0", "n_practice": "0"})
    assert refused.status_code == 200
    assert "Not enough matching images" in refused.content.decode()


def test_it_refuses_cases_by_rule_for_an_open_study(admin_client, build_study, reader):
    study = build_study(readers=[reader])
    html = admin_client.get(f"/admin/readerstudy/study/{study.pk}/add-cases/").content.decode()
    assert "cases are frozen" in html
    response = admin_client.post(
        f"/admin/readerstudy/study/{study.pk}/add-cases/",
        {"n_real": "1", "n_synthetic": "0", "n_practice": "0"},
    )
    assert "cases are frozen" in response.content.decode()
    assert study.cases.count() == 4
