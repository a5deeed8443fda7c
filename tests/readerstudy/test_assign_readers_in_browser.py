"""In real Chromium: a reader row added with "Add another" completes names too, and saves."""

import pytest
from django.db import connections
from django.test import Client

from readerstudy.models import Assignment
from tests.factories import ResearcherFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


def test_it_assigns_a_reader_typed_by_name_in_an_added_row(
    live_server, transactional_db, context, test_output_dir
):
    ada = UserFactory(
        username="ada@example.org", email="ada@example.org", first_name="Ada", last_name="Lovelace"
    )
    study = StudyBuilder()(open=False, title="By name")
    client = Client()
    client.force_login(ResearcherFactory())
    browser_context = context(viewport={"width": 1280, "height": 1000})
    browser_context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{live_server.url}/admin/readerstudy/study/{study.pk}/change/")
        page.click("#assignments-group .add-row a")
        box = page.locator("#id_assignments-0-reader")
        list_id = box.get_attribute("list")
        assert list_id == "id_assignments-0-reader-readers"
        option = page.locator(f'datalist#{list_id} option[value="ada@example.org"]')
        assert option.inner_text() == "Ada Lovelace <ada@example.org>"
        box.fill("ada@example.org")
        page.screenshot(path=str(test_output_dir / "study-assign-reader.png"), full_page=True)
        page.click("input[name=_continue]")
        page.wait_for_selector(".messagelist .success")
        assert Assignment.objects.filter(study=study, reader=ada).exists()
    finally:
        connections.close_all()
