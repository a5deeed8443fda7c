"""Invitation mail (access.invites): a reader who has a password never has a link shown to the
researcher, and a batch of invitations shares one mail connection that is given up on after it
fails once."""

import re

import pytest
from django.core import mail
from django.core.mail.backends import locmem

from tests.factories import DEFAULT_PASSWORD, ResearcherFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/staff/readers/"
LINK = re.compile(r"http://testserver/accounts/reset/[\w-]+/[\w-]+/")
BACKEND = "tests.access.test_invitation_mail.CountingBackend"


class CountingBackend(locmem.EmailBackend):
    """The test outbox, counting connections and sends; `fail_from` makes the n-th send fail
    the way a dropped SMTP connection does."""

    connections = 0
    sends = 0
    fail_from: int | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        CountingBackend.connections += 1

    def send_messages(self, messages):
        CountingBackend.sends += 1
        if self.fail_from is not None and CountingBackend.sends >= self.fail_from:
            raise ConnectionResetError("the mail server went away")
        return super().send_messages(messages)


@pytest.fixture
def counting(settings):
    settings.EMAIL_BACKEND = BACKEND
    CountingBackend.connections = CountingBackend.sends = 0
    CountingBackend.fail_from = None
    yield CountingBackend
    CountingBackend.fail_from = None


@pytest.fixture
def researcher_client(client):
    client.force_login(ResearcherFactory())
    return client


@pytest.fixture
def reader():
    return UserFactory(username="ada@example.org", email="ada@example.org")


def test_it_never_shows_a_link_for_a_reader_with_a_password_without_smtp(researcher_client, reader):
    response = researcher_client.post(f"/staff/readers/{reader.pk}/invite/")
    assert response.status_code == 200
    page = response.content.decode()
    assert not LINK.search(page)
    assert "Forgot your password?" in page
    assert not mail.outbox
    reader.refresh_from_db()
    assert reader.check_password(DEFAULT_PASSWORD)
    # The readers page offers no button that could only be refused.
    listing = researcher_client.get(PAGE).content.decode()
    assert f"/staff/readers/{reader.pk}/invite/" not in listing
    assert "Forgot your password?" in listing


def test_it_e_mails_but_never_shows_the_link_of_a_reader_with_a_password(
    researcher_client, reader, settings
):
    settings.EMAIL_HOST = "smtp.example.org"  # the test backend (locmem) still catches the mail
    listing = researcher_client.get(PAGE).content.decode()
    assert f"/staff/readers/{reader.pk}/invite/" in listing
    page = researcher_client.post(f"/staff/readers/{reader.pk}/invite/").content.decode()
    assert "e-mailed to ada@example.org" in page
    assert not LINK.search(page)
    assert len(mail.outbox) == 1 and LINK.search(mail.outbox[0].body)


def test_it_hides_the_link_of_a_reader_with_a_password_when_the_mail_fails(
    researcher_client, reader, settings, counting
):
    settings.EMAIL_HOST = "smtp.example.org"
    counting.fail_from = 1
    page = researcher_client.post(f"/staff/readers/{reader.pk}/invite/").content.decode()
    assert "The e-mail could not be sent." in page
    assert "Forgot your password?" in page
    assert not LINK.search(page)


def test_it_mails_a_list_of_readers_over_one_connection(researcher_client, counting):
    lines = "\n".join(f"Reader {n}, reader{n}@example.org" for n in range(5))
    page = researcher_client.post(PAGE, {"action": "list", "list-lines": lines}).content
    assert b"5 reader accounts created" in page
    assert len(mail.outbox) == 5
    assert counting.connections == 1


def test_it_stops_mailing_after_the_connection_fails_and_shows_the_remaining_links(
    researcher_client, settings, counting
):
    settings.EMAIL_HOST = "smtp.example.org"
    counting.fail_from = 2
    lines = "\n".join(f"Reader {n}, reader{n}@example.org" for n in range(4))
    page = researcher_client.post(PAGE, {"action": "list", "list-lines": lines}).content.decode()
    assert "e-mailed to reader0@example.org" in page
    assert page.count("The e-mail could not be sent.") == 3
    assert len(set(LINK.findall(page))) == 3
    # The failed send, then nothing more: no reader waits on a dead server again.
    assert counting.sends == 2
    assert len(mail.outbox) == 1
