"""The admin index links to the staff home and the staff pages that are not model lists."""

import pytest

from tests.factories import BareStaffFactory, ResearcherFactory

pytestmark = pytest.mark.django_db

STAFF_PAGES = (
    "/staff/",
    "/staff/readers/",
    "/staff/import/",
    "/staff/generation/train/",
    "/staff/generation/generate/",
    "/staff/generation/jobs/",
)


def test_it_links_every_staff_page_from_the_admin_index(client):
    client.force_login(ResearcherFactory())
    page = client.get("/admin/").content.decode()
    for url in STAFF_PAGES:
        assert f'href="{url}"' in page, url
    for url in STAFF_PAGES:  # and each link leads somewhere
        assert client.get(url).status_code == 200, url


def test_it_links_the_staff_home_from_every_admin_page(client):
    client.force_login(ResearcherFactory())
    page = client.get("/admin/readerstudy/study/").content.decode()
    assert 'href="/staff/">Staff home</a>' in page


def test_it_shows_no_research_links_to_staff_without_the_role(client):
    client.force_login(BareStaffFactory())
    page = client.get("/admin/").content.decode()
    assert 'id="staff-shortcuts"' not in page
    assert 'href="/staff/"' not in page
