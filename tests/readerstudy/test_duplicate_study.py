"""Duplicating a study: a draft copy of its settings, presentation, design and cases, never its
orders or readings; readers only when asked."""

import pytest
from django.utils import timezone

from readerstudy.models import (
    Design,
    PresentationProfile,
    Reading,
    ReadingSlot,
    Study,
    StudyCase,
    StudyStatus,
)
from readerstudy.services.copies import copy_title, duplicate_study
from readerstudy.services.studies import close_study
from tests.factories import ResearcherFactory, UserFactory
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def read_study(build_study, reader):
    """A closed study with non-default settings, a presentation profile and a reading."""
    study = build_study(
        readers=[reader],
        n_practice=2,
        title="Adult CXR vs ddpm",
        instructions="Look **carefully**.",
        confidence_scale=5,
        allow_revisions=True,
        repeat_fraction=0.25,
        repeat_min_gap=1,
        design=Design.EXPOSURE,
        exposure_start_ms=400,
        ask_finding=True,
        finding_vocabulary="normal, nodule",
        reader_feedback=True,
        open=False,
    )
    PresentationProfile.objects.create(study=study, display_size=384, border_crop_percent=4.0)
    from readerstudy.services.studies import open_study

    open_study(study)
    now = timezone.now()
    Reading.objects.create(slot=slots_of(study, reader)[0], answer="real", served_at=now,
                           answered_at=now)
    close_study(study)
    study.refresh_from_db()
    return study


SETTINGS = (
    "instructions", "confidence_scale", "allow_revisions", "repeat_fraction", "repeat_min_gap",
    "design", "exposure_start_ms", "ask_finding", "finding_vocabulary", "reader_feedback",
)


def test_it_copies_settings_design_presentation_and_cases_as_a_draft(read_study, staff):
    copy = duplicate_study(read_study, user=staff)
    assert copy.pk != read_study.pk and copy.public_id != read_study.public_id
    assert copy.title == "Adult CXR vs ddpm (copy)"
    assert copy.status == StudyStatus.DRAFT and copy.opened_at is None and copy.closed_at is None
    assert copy.created_by == staff
    assert [getattr(copy, name) for name in SETTINGS] == [
        getattr(read_study, name) for name in SETTINGS
    ]
    assert copy.seed != read_study.seed
    profile = copy.presentation
    assert (profile.display_size, profile.border_crop_percent) == (384, 4.0)
    assert profile.frozen_at is None and profile.frozen_key == ""
    assert read_study.presentation.frozen_at is not None
    original_cases = sorted(read_study.cases.values_list("image_id", "is_practice"))
    assert sorted(copy.cases.values_list("image_id", "is_practice")) == original_cases


def test_it_copies_no_orders_readings_or_readers_by_default(read_study):
    copy = duplicate_study(read_study)
    assert not copy.assignments.exists()
    assert not ReadingSlot.objects.filter(assignment__study=copy).exists()
    assert not Reading.objects.filter(slot__assignment__study=copy).exists()
    assert Reading.objects.filter(slot__assignment__study=read_study).count() == 1


def test_it_copies_reader_assignments_without_orders_when_asked(read_study, reader):
    copy = duplicate_study(read_study, with_readers=True)
    [assignment] = copy.assignments.all()
    assert assignment.reader == reader
    assert assignment.order_drawn_at is None and assignment.completed_at is None
    assert not ReadingSlot.objects.filter(assignment=assignment).exists()


def test_it_names_further_copies_clearly(read_study):
    first = duplicate_study(read_study)
    second = duplicate_study(read_study)
    assert (first.title, second.title) == ("Adult CXR vs ddpm (copy)", "Adult CXR vs ddpm (copy 2)")
    long = Study.objects.create(title="x" * 200)
    assert copy_title(long.title) == "x" * 193 + " (copy)"


def test_it_duplicates_from_the_admin_page_and_lands_on_the_copy(client, read_study):
    client.force_login(ResearcherFactory())
    url = f"/admin/readerstudy/study/{read_study.pk}/duplicate/"
    page = client.get(url)
    assert page.status_code == 200 and b"new randomization seed" in page.content
    response = client.post(url, {"with_readers": "on"})
    copy = Study.objects.get(title="Adult CXR vs ddpm (copy)")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/readerstudy/study/{copy.pk}/change/"
    assert copy.assignments.count() == 1
    assert StudyCase.objects.filter(study=copy).count() == read_study.cases.count()


def test_it_names_the_copy_on_the_admin_page_as_it_will_be_made(client, read_study):
    client.force_login(ResearcherFactory())
    url = f"/admin/readerstudy/study/{read_study.pk}/duplicate/"
    assert "“Adult CXR vs ddpm (copy)”" in client.get(url).content.decode()
    duplicate_study(read_study)
    page = client.get(url).content.decode()
    assert "“Adult CXR vs ddpm (copy 2)”" in page
    assert Study.objects.filter(title="Adult CXR vs ddpm (copy)").count() == 1


def test_it_duplicates_selected_studies_from_the_list(admin_client_for, build_study):
    studies = [build_study(open=False), build_study(open=False)]
    client = admin_client_for(ResearcherFactory())
    response = client.post(
        "/admin/readerstudy/study/",
        {"action": "duplicate_selected", "_selected_action": [s.pk for s in studies]},
    )
    assert response.status_code == 302
    for study in studies:
        assert Study.objects.filter(title=f"{study.title} (copy)", status="draft").exists()


def test_it_lets_only_staff_who_may_add_studies_duplicate(client, read_study):
    from tests.factories import BareStaffFactory

    client.force_login(BareStaffFactory())
    url = f"/admin/readerstudy/study/{read_study.pk}/duplicate/"
    assert client.post(url).status_code == 403
    client.force_login(UserFactory())
    assert client.post(url).status_code == 302  # to the admin login
    assert Study.objects.count() == 1


@pytest.fixture
def admin_client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login
