"""django-axes: a burst of wrong passwords locks the account and the address; a cool-off or an
administrator unlocks them. Requests go through the real login view and the real database."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY

from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def log_in(client, username: str, password: str, address: str = "198.51.100.7", **headers):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def is_logged_in(client) -> bool:
    return SESSION_KEY in client.session


def test_it_refuses_the_right_password_after_a_burst_of_wrong_ones(client, settings):
    reader = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, reader.username, "wrong").status_code == 200  # the form again
    assert log_in(client, reader.username, "wrong").status_code == 429  # the limit: locked
    response = log_in(client, reader.username, DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert not is_logged_in(client)
    # The lock is on the account: another address with the right password is refused too.
    elsewhere = log_in(client, reader.username, DEFAULT_PASSWORD, address="192.0.2.50")
    assert elsewhere.status_code == 429


def test_it_accepts_a_login_below_the_limit_and_forgets_the_failures(client, settings):
    reader = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, reader.username, "wrong")
    assert log_in(client, reader.username, DEFAULT_PASSWORD).status_code == 302
    assert is_logged_in(client)
    assert not AccessAttempt.objects.filter(username=reader.username).exists()


def test_it_locks_an_address_that_tries_many_accounts(client, settings):
    reader = UserFactory()
    for index in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"guess{index}", "wrong", address="203.0.113.20")
    same_address = log_in(client, reader.username, DEFAULT_PASSWORD, address="203.0.113.20")
    assert same_address.status_code == 429
    other_address = log_in(client, reader.username, DEFAULT_PASSWORD, address="203.0.113.21")
    assert other_address.status_code == 302


def test_it_tells_clients_behind_the_proxy_apart(client, settings):
    """Behind Caddy every request comes from the proxy: the client is X-Forwarded-For's hop."""
    assert settings.BEHIND_TLS_PROXY
    reader = UserFactory()
    proxy = "172.18.0.3"
    for index in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"guess{index}", "wrong", address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.30")
    assert AccessAttempt.objects.filter(ip_address="203.0.113.30").exists()
    assert not AccessAttempt.objects.filter(ip_address=proxy).exists()
    # What a client writes into the header itself is not believed (Caddy would replace it).
    log_in(client, "guess", "wrong", address=proxy, HTTP_X_FORWARDED_FOR="not-an-ip")
    assert AccessAttempt.objects.filter(ip_address=proxy).exists()
    response = log_in(
        client, reader.username, DEFAULT_PASSWORD, address=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.31",
    )
    assert response.status_code == 302


def test_it_unlocks_after_the_cool_off(client, settings):
    reader = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, reader.username, "wrong")
    assert log_in(client, reader.username, DEFAULT_PASSWORD).status_code == 429
    # The failures happened a cool-off (and a minute) ago.
    earlier = settings.AXES_COOLOFF_TIME + timedelta(minutes=1)
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= earlier
        attempt.save(update_fields=["attempt_time"])
    assert log_in(client, reader.username, DEFAULT_PASSWORD).status_code == 302
    assert is_logged_in(client)


def test_it_shows_the_lock_out_in_the_admin_and_an_admin_unlocks_it(client, settings):
    reader = UserFactory()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, reader.username, "wrong")
    assert log_in(client, reader.username, DEFAULT_PASSWORD).status_code == 429

    admin_client = client.__class__()
    admin_client.force_login(StaffFactory())
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert reader.username.encode() in listing.content
    attempts = list(
        AccessAttempt.objects.filter(username=reader.username).values_list("pk", flat=True)
    )
    response = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username=reader.username).exists()
    assert log_in(client, reader.username, DEFAULT_PASSWORD).status_code == 302
    assert is_logged_in(client)
