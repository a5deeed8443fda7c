"""Password reset for everyone: Django's views, the project's pages, nothing revealed."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from access.invites import NewReader, create_reader
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()
RESET = "/accounts/password_reset/"
LINK = re.compile(r"http://testserver(/accounts/reset/[\w-]+/[\w-]+/)")
NEW_PASSWORD = "a-long-new-passphrase-42"


def without_csrf(page: bytes) -> bytes:
    return re.sub(rb'"X-CSRFToken": "\w+"', b"", page)


def ask(client, email: str):
    return client.post(RESET, {"email": email}, follow=True)


def set_password(client, path: str, password: str = NEW_PASSWORD):
    form = client.get(path, follow=True)
    assert b"Set your password" in form.content
    return client.post(
        form.redirect_chain[-1][0],
        {"new_password1": password, "new_password2": password},
        follow=True,
    )


def test_it_answers_the_same_whether_or_not_the_address_has_an_account(client):
    UserFactory(email="known@example.org")
    known = ask(client, "known@example.org")
    unknown = ask(client, "nobody@example.org")
    assert (
        known.redirect_chain == unknown.redirect_chain == [("/accounts/password_reset/done/", 302)]
    )
    assert without_csrf(known.content) == without_csrf(unknown.content)
    assert b"If an account has this address" in known.content
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["known@example.org"]


def test_it_sets_a_new_password_once_with_the_e_mailed_link(client):
    reader = UserFactory(email="reader@example.org")
    ask(client, "READER@example.org")
    path = LINK.search(mail.outbox[0].body).group(1)
    done = set_password(client, path)
    assert b"Password set" in done.content
    reader.refresh_from_db()
    assert reader.check_password(NEW_PASSWORD)
    assert not reader.check_password(DEFAULT_PASSWORD)
    # Used once: the same link is refused now.
    assert b"does not work any more" in client.get(path, follow=True).content
    logged_in = client.post(
        "/accounts/login/", {"username": reader.username, "password": NEW_PASSWORD}
    )
    assert logged_in.status_code == 302


def test_it_reaches_an_invited_reader_who_lost_the_link(client):
    invited = create_reader(NewReader(name="Ada Lovelace", email="ada@example.org"))
    ask(client, "ada@example.org")
    assert len(mail.outbox) == 1
    set_password(client, LINK.search(mail.outbox[0].body).group(1))
    invited.refresh_from_db()
    assert invited.check_password(NEW_PASSWORD)


def test_it_sends_nothing_to_a_disabled_account(client):
    disabled = UserFactory(email="gone@example.org")
    disabled.set_unusable_password()
    disabled.last_login = disabled.date_joined
    disabled.save()
    UserFactory(email="inactive@example.org", is_active=False)
    ask(client, "gone@example.org")
    ask(client, "inactive@example.org")
    assert mail.outbox == []


def test_it_refuses_a_weak_password(client):
    UserFactory(email="reader@example.org")
    ask(client, "reader@example.org")
    response = set_password(client, LINK.search(mail.outbox[0].body).group(1), "12345678")
    assert b"This password is too common" in response.content


def test_it_keeps_a_locked_account_locked_after_a_reset(client, settings):
    reader = UserFactory(email="reader@example.org")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": reader.username, "password": "wrong"})
    ask(client, "reader@example.org")
    set_password(client, LINK.search(mail.outbox[0].body).group(1))
    response = client.post(
        "/accounts/login/", {"username": reader.username, "password": NEW_PASSWORD}
    )
    assert response.status_code == 429
