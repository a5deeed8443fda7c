"""In a real headless Chromium: the job page's progress updates by itself and stops polling.

Debian's chromium driven by Playwright's Python package (skipped where it is not installed).
Screenshots of the job page and the model page go to the test output folder.
"""

import time

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from generation.models import JobStatus, TrainingRun
from tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000


@pytest.fixture
def page(live_server, transactional_db, staff):
    require_chromium()
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(staff)
    session = client.cookies["sessionid"].value
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1200, "height": 1000})
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            yield context.new_page()
            browser.close()
            # ORM calls made while Playwright's loop runs get their own database connection;
            # close it here, or PostgreSQL refuses to drop the test database at the end
            connections.close_all()


def test_it_updates_the_progress_by_itself_and_stops_when_the_run_ends(
    tiny_model, page, live_server, test_output_dir
):
    now = timezone.now()
    run = TrainingRun.objects.create(
        generator=tiny_model,
        total_steps=100,
        step=10,
        latest_loss=0.9,
        status=JobStatus.RUNNING,
        worker="gpu-1@lab",
        device="cuda:0",
        started_at=now,
        heartbeat_at=now,
        attempt_started_at=now,
        log_tail="step 10 loss 0.9",
    )
    polls = []
    page.on(
        "request", lambda request: polls.append(request.url) if "/status/" in request.url else None
    )
    page.goto(f"{live_server.url}/staff/generation/jobs/training/{run.pk}/")
    page.wait_for_selector("text=10 / 100 steps", timeout=TIMEOUT_MS)

    TrainingRun.objects.filter(pk=run.pk).update(
        step=60, latest_loss=0.25, heartbeat_at=timezone.now()
    )
    page.wait_for_selector("text=60 / 100 steps", timeout=TIMEOUT_MS)  # no reload: htmx swapped it
    page.screenshot(path=str(test_output_dir / "generation-job-running.png"), full_page=True)

    TrainingRun.objects.filter(pk=run.pk).update(
        step=100, status=JobStatus.SUCCEEDED, finished_at=timezone.now()
    )
    page.wait_for_selector("#job-status >> text=Succeeded", timeout=TIMEOUT_MS)
    seen = len(polls)
    time.sleep(5)  # two and a half polling intervals
    assert len(polls) == seen, "the status block kept polling after the run ended"
    assert page.locator("#job-status").get_attribute("hx-trigger") is None


def test_it_shows_the_model_page(tiny_model, page, live_server, test_output_dir):
    page.goto(f"{live_server.url}/staff/generation/models/{tiny_model.pk}/")
    page.wait_for_selector("svg.loss-curve", timeout=TIMEOUT_MS)
    grid = page.locator(".model-grid img")
    assert grid.evaluate("img => img.complete && img.naturalWidth > 0")
    page.screenshot(path=str(test_output_dir / "generation-model-page.png"), full_page=True)
