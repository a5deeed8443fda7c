"""With the Content-Security-Policy on, every kind of page loads in a real Chromium without a
single violation: nothing inline was left behind, and htmx and the viewer still work."""

import pytest

from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus
from readerstudy.models import Reading
from tests.factories import DEFAULT_PASSWORD, StaffFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder, slots_of

pytestmark = pytest.mark.browser
TIMEOUT_MS = 20_000




def watched_page(browser, violations: list[str]):
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on(
        "console",
        lambda message: violations.append(message.text)
        if "Content Security Policy" in message.text else None,
    )
    # Also the DOM's own report, which catches what the console may word differently.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    return page


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def test_it_loads_the_reader_pages_without_a_violation(live_server, transactional_db, browser):
    from playwright.sync_api import expect

    reader = UserFactory(username="csp-reader")
    study = StudyBuilder()(readers=[reader], n_practice=1, confidence_scale=5)
    violations: list[str] = []
    page = watched_page(browser, violations)
    log_in(page, live_server.url, reader.username)
    expect(page.get_by_role("heading", name="Your studies")).to_be_visible()
    page.goto(f"{live_server.url}/studies/{study.public_id}/")
    page.goto(f"{live_server.url}/studies/{study.public_id}/next/")
    expect(page.locator("[data-viewer].ready")).to_have_count(1)  # reader.js drew the canvas
    page.keyboard.press("r")
    page.keyboard.press("3")
    expect(page.locator(".feedback .question")).to_be_visible()  # htmx swapped the answer in
    assert Reading.objects.count() == 1
    assert violations == []


def test_it_loads_the_researcher_pages_without_a_violation(live_server, transactional_db, browser):
    reader = UserFactory(username="csp-reader-2")
    study = StudyBuilder()(readers=[reader], n_practice=0, confidence_scale=5)
    slot = slots_of(study, reader)[0]
    from django.utils import timezone

    Reading.objects.create(
        slot=slot, answer="fake", confidence=4, served_at=timezone.now(), answered_at=timezone.now()
    )
    generator = GeneratorModel.objects.create(
        name="csp", kind=GeneratorKind.DDPM, findings=["normal"], resolution=32
    )
    job = GenerationJob.objects.create(generator=generator, count=4, status=JobStatus.RUNNING)
    admin = StaffFactory(username="csp-admin")
    violations: list[str] = []
    page = watched_page(browser, violations)
    log_in(page, live_server.url, admin.username)
    for path in [
        "/admin/",
        f"/admin/readerstudy/study/{study.pk}/change/",
        "/admin/readerstudy/study/",
        "/admin/pool/image/",
        f"/staff/studies/{study.public_id}/results/",
        "/staff/import/",
        "/staff/generation/train/",
        "/staff/generation/generate/",
        "/staff/generation/jobs/",
        f"/staff/generation/models/{generator.pk}/",
        "/admin/axes/accessattempt/",
        "/staff/",
        "/staff/readers/",
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
    # A running job's page polls itself through htmx: wait for one poll to land.
    with page.expect_response(lambda r: "/status/" in r.url):
        page.goto(f"{live_server.url}/staff/generation/jobs/generation/{job.pk}/")
    assert violations == []
