"""The database unreachable for a moment while a reader answers, in a real Chromium.

The reader is told calmly that the answer is not saved yet, the page sends the same answer
again by itself, and the answer is stored exactly once, also when it was stored but the reply
was lost. Full pages show the site's own error page, not a bare "Server Error (500)".
"""

import pytest

from readerstudy.models import Reading, ReadingRevision, ReadingSlot
from spotthefake import testing
from tests.e2e.test_reading_in_browser import TIMEOUT_MS, build_study
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.browser

RETRY_MESSAGE = "Connection problem: your answer was not saved yet; retrying…"


@pytest.fixture(autouse=True)
def _no_outage_left():
    yield
    testing.fail_next_requests(0)


def log_in(page, live_server, reader, study) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.public_id}/next/")
    page.fill("#id_username", reader.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.keyboard.press("Enter")


def test_it_retries_an_answer_until_the_database_is_back(live_server, transactional_db, context):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded machine is slow; nothing here is timed
    reader = UserFactory(username="patient-reader")
    study = build_study(reader)
    slots = list(ReadingSlot.objects.filter(assignment__reader=reader).order_by("position"))
    page = context(viewport={"width": 1200, "height": 800}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, live_server, reader, study)
    status = page.locator("#connection-status")
    expect(page.locator("[data-counter]")).to_have_text("Practice 1 of 1")
    expect(page.locator("[data-viewer].ready")).to_have_count(1)
    expect(status).to_be_hidden()
    page.keyboard.press("r")
    page.keyboard.press("4")
    expect(page.locator(".feedback .question")).to_be_visible()
    page.keyboard.press("Enter")  # past the practice feedback
    expect(page.locator("[data-counter]")).to_have_text("Case 1 of 4")
    expect(page.locator("[data-viewer].ready")).to_have_count(1)

    # The database refuses the next three answer posts: the reader is told, the page retries.
    testing.fail_next_requests(3, path_prefix=f"/read/{slots[1].token}/", method="POST")
    page.keyboard.press("f")
    page.keyboard.press("3")
    expect(status).to_be_visible()
    expect(status).to_have_text(RETRY_MESSAGE)
    expect(page.locator("[data-counter]")).to_have_text("Case 2 of 4")
    expect(status).to_be_hidden()
    assert testing.refused_requests() == 3

    # Stored, but the reply is lost: the retry finds the same answer and stores nothing more.
    expect(page.locator("[data-viewer].ready")).to_have_count(1)
    testing.fail_next_requests(1, path_prefix=f"/read/{slots[2].token}/", method="POST", after=True)
    page.keyboard.press("u")
    page.keyboard.press("2")
    expect(status).to_have_text(RETRY_MESSAGE)
    expect(page.locator("[data-counter]")).to_have_text("Case 3 of 4")
    expect(status).to_be_hidden()
    assert testing.refused_requests() == 1

    readings = list(Reading.objects.order_by("slot__position"))
    assert [(r.slot_id, r.answer, r.confidence) for r in readings] == [
        (slots[0].pk, "real", 4),
        (slots[1].pk, "fake", 3),
        (slots[2].pk, "unsure", 2),
    ]
    assert not ReadingRevision.objects.exists()


def test_it_shows_its_own_error_page_when_a_full_page_fails(live_server, transactional_db, context):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded machine is slow; nothing here is timed
    reader = UserFactory(username="unlucky-reader")
    study = build_study(reader)
    page = context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, live_server, reader, study)
    expect(page.locator("[data-viewer].ready")).to_have_count(1)

    testing.fail_next_requests(1, path_prefix="/studies/")
    response = page.goto(f"{live_server.url}/studies/{study.public_id}/")
    assert response.status == 500
    expect(page.get_by_role("heading", name="Something went wrong on our side")).to_be_visible()
    expect(page.get_by_text("sending it again is always safe")).to_be_visible()
    assert "Server Error (500)" not in page.content()
    page.goto(f"{live_server.url}/studies/{study.public_id}/")  # back by itself
    expect(page.get_by_role("heading", name=study.title)).to_be_visible()
