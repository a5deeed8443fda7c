"""The jobs list keeps its progress bars readable, however long the other columns get."""

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus, TrainingRun

pytestmark = pytest.mark.browser

MIN_BAR_PX = 100  # 8em of the admin's 13 px font is 104 px


def test_it_keeps_a_readable_bar_width(
    live_server, transactional_db, staff, context, test_output_dir
):
    generator = GeneratorModel.objects.create(
        name="a-model-with-a-rather-long-descriptive-name-for-the-pediatric-cxr-population",
        kind=GeneratorKind.DDPM,
        findings=["normal"],
        trained_steps=2,
    )
    now = timezone.now()
    TrainingRun.objects.create(
        generator=generator,
        total_steps=1000,
        step=400,
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        attempt_started_at=now,
        worker="celery-gpu-worker-with-a-long-hostname@node-0042.cluster.example.org",
        device="cuda:0 (NVIDIA H200, 139 GiB)",
    )
    GenerationJob.objects.create(generator=generator, count=64, status=JobStatus.QUEUED)
    client = Client()
    client.force_login(staff)
    browser_context = context(viewport={"width": 1024, "height": 900})
    browser_context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = browser_context.new_page()
    try:
        page.goto(f"{live_server.url}/staff/generation/jobs/")
        bars = page.locator(".job-table .job-progress .bar")
        assert bars.count() == 2
        widths = [bars.nth(index).bounding_box()["width"] for index in range(2)]
        page.screenshot(path=str(test_output_dir / "generation-jobs-list.png"), full_page=True)
        assert min(widths) >= MIN_BAR_PX, widths
        filled = page.locator(".job-table .job-progress .bar span").first.bounding_box()["width"]
        assert filled == pytest.approx(0.4 * widths[0], abs=3)  # 400 of 1000 steps
    finally:
        connections.close_all()
