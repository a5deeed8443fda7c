"""The researchers' reader page: one reader or a pasted list, each with a one-time link."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from tests.factories import BareStaffFactory, ResearcherFactory, UserFactory
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

User = get_user_model()
PAGE = "/staff/readers/"
# Session, user, permissions (2), the count of readers, one page of them.
LIST_QUERIES = 5  # besides the session's own (tests/sessions.py)
LINK = re.compile(r"http://testserver/accounts/reset/[\w-]+/[\w-]+/")


@pytest.fixture
def researcher_client(client):
    client.force_login(ResearcherFactory())
    return client


def paste(client, text: str):
    return client.post(PAGE, {"action": "list", "list-lines": text})


def test_it_creates_readers_from_a_pasted_list_and_shows_their_links(researcher_client):
    response = paste(
        researcher_client,
        "Ada Lovelace, Ada@Example.org\n\n  Doe, Jane , jane@example.org \nGrace Hopper,grace@example.org",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "3 reader accounts created" in page
    assert len(set(LINK.findall(page))) == 3
    ada = User.objects.get(username="ada@example.org")
    assert (ada.first_name, ada.last_name, ada.email) == ("Ada", "Lovelace", "ada@example.org")
    assert User.objects.get(email="jane@example.org").get_full_name() == "Doe, Jane"
    for user in User.objects.filter(email__endswith="@example.org", is_staff=False):
        assert not user.is_staff and not user.has_usable_password()
    # Without an SMTP server the mail still goes through the backend (console/file in a demo).
    assert len(mail.outbox) == 3
    assert response["Cache-Control"] == "private, no-store"


def test_it_creates_one_reader(researcher_client):
    response = researcher_client.post(
        PAGE, {"action": "one", "one-name": "Alan Turing", "one-email": "alan@example.org"}
    )
    assert "1 reader account created" in response.content.decode()
    assert LINK.search(response.content.decode())
    assert User.objects.get(username="alan@example.org").last_name == "Turing"


def test_it_reports_every_bad_line_and_creates_nobody(researcher_client):
    UserFactory(username="taken", email="taken@example.org")
    response = paste(
        researcher_client,
        "No Comma Here\nBad Mail, not-an-address\nTwice, two@example.org\nAgain, two@example.org",
    )
    page = response.content.decode()
    assert "Line 1: write “name, e-mail”" in page
    assert "Line 2: “not-an-address” is not an e-mail address" in page
    assert "Line 4: two@example.org is listed twice" in page
    assert not User.objects.filter(email="two@example.org").exists()
    response = paste(researcher_client, "Someone, TAKEN@example.org")
    assert "already have an account: taken@example.org" in response.content.decode()
    assert User.objects.filter(email__iexact="taken@example.org").count() == 1


def test_it_e_mails_the_link_and_hides_it_when_smtp_is_configured(researcher_client, settings):
    settings.EMAIL_HOST = "smtp.example.org"  # the test backend (locmem) still catches the mail
    response = paste(researcher_client, "Ada Lovelace, ada@example.org")
    page = response.content.decode()
    assert "e-mailed to ada@example.org" in page
    assert not LINK.search(page)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.org"]
    assert LINK.search(mail.outbox[0].body)


def test_it_voids_the_earlier_link_when_inviting_again(researcher_client, client):
    page = paste(researcher_client, "Ada Lovelace, ada@example.org").content.decode()
    first = LINK.search(page).group(0)
    ada = User.objects.get(username="ada@example.org")
    again = researcher_client.post(f"/staff/readers/{ada.pk}/invite/").content.decode()
    second = LINK.search(again).group(0)
    assert first != second
    researcher_client.logout()
    assert b"does not work any more" in client.get(first, follow=True).content
    assert b"Set your password" in client.get(second, follow=True).content


def test_it_lists_and_searches_the_readers_only(researcher_client):
    UserFactory(username="ada@example.org", email="ada@example.org", first_name="Ada")
    UserFactory(username="bob@example.org", email="bob@example.org", first_name="Bob")
    staff = ResearcherFactory()
    page = researcher_client.get(PAGE).content.decode()
    assert "ada@example.org" in page and "bob@example.org" in page
    assert staff.username not in page
    searched = researcher_client.get(PAGE, {"q": "ada"}).content.decode()
    assert "ada@example.org" in searched and "bob@example.org" not in searched


def test_it_lists_readers_in_a_fixed_number_of_queries(
    researcher_client, django_assert_num_queries
):
    UserFactory()
    researcher_client.get(PAGE)  # warm the session and permission caches
    with django_assert_num_queries(LIST_QUERIES + session_queries()):
        researcher_client.get(PAGE)
    for _ in range(10):
        UserFactory()
    with django_assert_num_queries(LIST_QUERIES + session_queries()):
        researcher_client.get(PAGE)


def test_it_refuses_staff_without_the_researcher_role(client):
    client.force_login(BareStaffFactory())
    assert client.get(PAGE).status_code == 403
    assert paste(client, "Ada, ada@example.org").status_code == 403
    assert not User.objects.filter(email="ada@example.org").exists()
    reader = UserFactory()
    assert client.post(f"/staff/readers/{reader.pk}/invite/").status_code == 403


def test_it_does_not_invite_staff_through_the_reader_page(researcher_client):
    other = ResearcherFactory()
    assert researcher_client.post(f"/staff/readers/{other.pk}/invite/").status_code == 404
