"""A researcher invites a reader, and the reader gets in with the link, in real Chromium.

Two browser contexts (separate cookies): the researcher's, who logs in, lands on the staff
home, creates a reader from a pasted list and copies the invitation link; and the reader's,
who opens the link, sets a password and logs in. Screenshots go to the test output folder.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from tests.factories import DEFAULT_PASSWORD, ResearcherFactory

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
READER_PASSWORD = "seven-horses-read-slowly"


@pytest.fixture
def closing_connections():
    yield
    # ORM calls made while Playwright's loop runs get their own database connection.
    connections.close_all()


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def researcher_invites(page, base: str, output) -> str:
    page.set_default_timeout(TIMEOUT_MS)
    researcher = ResearcherFactory()
    log_in(page, base, researcher.username, DEFAULT_PASSWORD)
    page.wait_for_url(f"{base}/staff/")
    assert page.locator("#staff-studies").is_visible()
    page.screenshot(path=str(output / "staff-home.png"), full_page=True)
    page.click("#staff-entry-points >> text=Readers")
    page.wait_for_url(f"{base}/staff/readers/")
    page.fill("#id_list-lines", "Ada Lovelace, ada@example.org\nGrace Hopper, grace@example.org")
    page.click("#add-reader-list input[type=submit]")
    page.wait_for_selector("text=2 reader accounts created")
    page.screenshot(path=str(output / "reader-invitations.png"), full_page=True)
    link = page.get_attribute('input[aria-label="Invitation link for ada@example.org"]', "value")
    assert link.startswith(f"{base}/accounts/reset/")
    return link


def reader_accepts(page, base: str, link: str, output) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(link)
    page.wait_for_selector("text=Set your password")
    assert "ada@example.org" in page.inner_text("main")
    page.fill("#id_new_password1", READER_PASSWORD)
    page.fill("#id_new_password2", READER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#reset-complete")
    page.click("main a.button")
    page.wait_for_url(f"{base}/accounts/login/")
    page.fill("#id_username", "ada@example.org")
    page.fill("#id_password", READER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert page.locator("h1").inner_text() == "Your studies"
    assert "ada@example.org" in page.inner_text("header")
    page.screenshot(path=str(output / "reader-first-login.png"), full_page=True)


def test_it_invites_a_reader_who_then_sets_a_password_and_logs_in(
    live_server, transactional_db, context, test_output_dir, closing_connections
):
    base = live_server.url
    link = researcher_invites(context().new_page(), base, test_output_dir)
    reader_accepts(context().new_page(), base, link, test_output_dir)
    ada = get_user_model().objects.get(username="ada@example.org")
    assert ada.check_password(READER_PASSWORD) and not ada.is_staff
    # The link was for one use: opened again, it is refused.
    again = context().new_page()
    again.goto(link)
    again.wait_for_selector("#invalid-link", timeout=TIMEOUT_MS)
