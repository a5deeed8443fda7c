"""The study admin assigns readers by name or e-mail with completion, never by raw user id."""

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from readerstudy.admin import AssignmentInline
from readerstudy.models import Assignment, Study
from tests.factories import ResearcherFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(client):
    client.force_login(ResearcherFactory())
    return client


def formset_for(study, data=None):
    request = RequestFactory().post("/") if data else RequestFactory().get("/")
    request.user = ResearcherFactory()
    inline = AssignmentInline(Study, site)
    formset_class = inline.get_formset(request, study)
    return formset_class(data=data, instance=study, prefix="assignments")


def management(total: int, initial: int) -> dict:
    return {
        "assignments-TOTAL_FORMS": str(total),
        "assignments-INITIAL_FORMS": str(initial),
        "assignments-MIN_NUM_FORMS": "0",
        "assignments-MAX_NUM_FORMS": "1000",
    }


def test_it_offers_readers_by_name_and_e_mail(researcher_client):
    UserFactory(
        username="ada@example.org", email="ada@example.org", first_name="Ada", last_name="Lovelace"
    )
    study = StudyBuilder()(open=False)
    page = researcher_client.get(f"/admin/readerstudy/study/{study.pk}/change/").content.decode()
    assert '<option value="ada@example.org">Ada Lovelace &lt;ada@example.org&gt;</option>' in page
    assert 'list="id_assignments-__prefix__-reader-readers"' in page
    assert "lookup_id_assignments" not in page  # no raw id box (and its lookup) for the reader


def test_it_assigns_a_reader_by_username_or_by_the_label_picked(db):
    ada = UserFactory(username="ada@example.org", email="ada@example.org", first_name="Ada")
    bob = UserFactory(username="bob@example.org", email="bob@example.org")
    study = StudyBuilder()(open=False)
    formset = formset_for(
        study,
        {
            **management(2, 0),
            "assignments-0-reader": "ada@example.org",
            "assignments-1-reader": "Bob <bob@example.org>",
        },
    )
    assert formset.is_valid(), formset.errors
    formset.save()
    assert set(Assignment.objects.filter(study=study).values_list("reader", flat=True)) == {
        ada.pk,
        bob.pk,
    }


def test_it_refuses_an_unknown_name(db):
    study = StudyBuilder()(open=False)
    formset = formset_for(study, {**management(1, 0), "assignments-0-reader": "nobody"})
    assert not formset.is_valid()
    assert "No active account with this username." in str(formset.errors)


def test_it_shows_an_assigned_reader_by_name_not_by_id(db):
    ada = UserFactory(username="ada@example.org", email="ada@example.org")
    study = StudyBuilder()(readers=[ada], open=False)
    assert formset_for(study).forms[0]["reader"].value() == "ada@example.org"
    assignment = Assignment.objects.get(study=study)
    posted_back = formset_for(
        study,
        {
            **management(1, 1),
            "assignments-0-id": str(assignment.pk),
            "assignments-0-study": str(study.pk),
            "assignments-0-reader": "ada@example.org",
        },
    )
    assert posted_back.is_valid(), posted_back.errors
    assert not posted_back.forms[0].has_changed()


def reader_list_queries(queries) -> int:
    """The queries that fetch the completion list (users ordered by name)."""
    return sum(
        'FROM "auth_user"' in query["sql"]
        and '"auth_user"."last_name" ASC' in query["sql"].split("ORDER BY")[-1]
        for query in queries
    )


def test_it_lists_the_readers_once_per_page_whatever_the_number_of_rows(
    researcher_client, django_assert_max_num_queries
):
    readers = [UserFactory() for _ in range(12)]
    counts = []
    for study in (
        StudyBuilder()(readers=readers[:1], open=False),
        StudyBuilder()(readers=readers, open=False),
    ):
        with django_assert_max_num_queries(60) as captured:
            researcher_client.get(f"/admin/readerstudy/study/{study.pk}/change/")
            counts.append(reader_list_queries(captured.captured_queries))
    assert counts == [1, 1]
