"""Cancel asks first: htmx's hx-confirm (no inline script), in a real Chromium too."""

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus

TIMEOUT_MS = 15_000


def running_job() -> GenerationJob:
    generator = GeneratorModel.objects.create(
        name="walker", kind=GeneratorKind.DDPM, findings=["normal"], trained_steps=2
    )
    now = timezone.now()
    return GenerationJob.objects.create(
        generator=generator,
        count=4,
        finding="normal",
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempt_started_at=now,
        worker="gpu-1@lab",
    )


@pytest.mark.django_db
def test_it_puts_a_confirmation_on_the_cancel_button(staff_client):
    job = running_job()
    page = staff_client.get(f"/staff/generation/jobs/generation/{job.pk}/").content.decode()
    assert (
        f'hx-confirm="Cancel generation job #{job.pk}? It stops after the current step; '
        f'images made so far are kept."' in page
    )


@pytest.mark.browser
def test_it_cancels_only_after_the_researcher_confirms(
    live_server, transactional_db, staff, context
):
    job = running_job()
    client = Client()
    client.force_login(staff)
    browser_context = context(viewport={"width": 1200, "height": 900})
    browser_context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = browser_context.new_page()
    dialogs = []
    try:
        page.goto(f"{live_server.url}/staff/generation/jobs/generation/{job.pk}/")
        page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.click("button.job-cancel")
        page.wait_for_timeout(1500)  # a POST, had one been sent, is answered well within this
        job.refresh_from_db()
        assert dialogs and dialogs[0].startswith(f"Cancel generation job #{job.pk}?")
        assert not job.cancel_requested
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button.job-cancel")
        page.wait_for_selector("text=cancel requested", timeout=TIMEOUT_MS)
        job.refresh_from_db()
        assert job.cancel_requested
    finally:
        connections.close_all()
