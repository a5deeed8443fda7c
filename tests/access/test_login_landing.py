"""After logging in, researchers land on the staff home; readers keep their studies page."""

import pytest

from tests.factories import DEFAULT_PASSWORD, BareStaffFactory, ResearcherFactory, UserFactory

pytestmark = pytest.mark.django_db


def log_in(client, user, **extra):
    return client.post(
        "/accounts/login/", {"username": user.username, "password": DEFAULT_PASSWORD, **extra}
    )


def test_it_lands_a_researcher_on_the_staff_home(client):
    response = log_in(client, ResearcherFactory())
    assert response.status_code == 302
    assert response["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200


def test_it_lands_a_reader_on_their_studies(client):
    response = log_in(client, UserFactory())
    assert response["Location"] == "/"


def test_it_lands_staff_without_the_researcher_role_on_the_studies_page(client):
    # The staff home would only say 403 to them.
    response = log_in(client, BareStaffFactory())
    assert response["Location"] == "/"


def test_it_still_follows_next(client):
    response = log_in(client, ResearcherFactory(), next="/staff/generation/jobs/")
    assert response["Location"] == "/staff/generation/jobs/"


def test_it_links_the_password_reset_from_the_login_page(client):
    assert b'href="/accounts/password_reset/"' in client.get("/accounts/login/").content
