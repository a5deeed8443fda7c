"""A job's page and its self-polling status block."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import GeneratedImage, GenerationJob, JobStatus, TrainingRun
from pool.models import Truth
from tests.factories import ImageFactory
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

POLL = 'hx-trigger="every 2s"'


def status_url(kind: str, job) -> str:
    return f"/staff/generation/jobs/{kind}/{job.pk}/status/"


@pytest.fixture
def running_run(tiny_model):
    now = timezone.now()
    return TrainingRun.objects.create(
        generator=tiny_model,
        total_steps=200,
        step=50,
        latest_loss=0.123456,
        status=JobStatus.RUNNING,
        worker="gpu-1@box",
        device="cuda:0 (NVIDIA H100)",
        started_at=now - timedelta(minutes=2),
        heartbeat_at=now,
        attempt_started_at=now - timedelta(minutes=2),
        log_tail="step 40 loss 0.2\nstep 50 loss <b>0.12</b>",
    )


def test_it_shows_status_progress_worker_timings_and_the_log(staff_client, running_run):
    response = staff_client.get(f"/staff/generation/jobs/training/{running_run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Running" in html
    assert "50 / 200 steps" in html and "loss 0.1235" in html
    assert 'aria-valuenow="50"' in html and 'class="pct-25"' in html
    assert "gpu-1@box" in html and "cuda:0 (NVIDIA H100)" in html
    assert "2:0" in html  # duration so far, m:ss
    assert "loss &lt;b&gt;0.12&lt;/b&gt;" in html  # the log is text, never markup
    assert POLL in html
    assert 'src="/static/vendor/htmx.min.js"' in html
    assert '<noscript><meta http-equiv="refresh"' in html  # without JS: the page reloads itself
    assert f'action="/staff/generation/jobs/training/{running_run.pk}/cancel/"' in html
    assert "/retry/" not in html


def test_it_status_block_polls_itself_while_the_job_runs(staff_client, running_run):
    response = staff_client.get(status_url("training", running_run), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="job-status"')  # the partial alone
    assert "<html" not in html
    assert f'hx-get="{status_url("training", running_run)}"' in html
    assert POLL in html and 'hx-swap="outerHTML"' in html
    assert "HX-Request" in response["Vary"]


def test_it_status_block_stops_polling_once_the_job_has_ended(staff_client, running_run):
    running_run.status, running_run.step = JobStatus.SUCCEEDED, 200
    running_run.finished_at = timezone.now()
    running_run.save()
    response = staff_client.get(status_url("training", running_run), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "Succeeded" in html and "200 / 200 steps" in html
    assert "hx-trigger" not in html and "hx-get" not in html
    page = staff_client.get(f"/staff/generation/jobs/training/{running_run.pk}/").content.decode()
    assert "hx-trigger" not in page.split('id="job-status"')[1].split(">")[0]
    assert "noscript" not in page


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_it_a_failed_or_cancelled_job_stops_polling_and_offers_retry(staff_client, tiny_model, status):
    job = GenerationJob.objects.create(
        generator=tiny_model, count=4, finding="normal", status=status, error="CUDA out of memory"
    )
    html = staff_client.get(status_url("generation", job), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html
    assert "CUDA out of memory" in html
    assert f"/staff/generation/jobs/generation/{job.pk}/retry/" in html
    assert "/cancel/" not in html


def test_it_a_generation_job_counts_images_and_shows_them(staff_client, tiny_model):
    job = GenerationJob.objects.create(
        generator=tiny_model,
        count=4,
        finding="normal",
        status=JobStatus.RUNNING,
        heartbeat_at=timezone.now(),
    )
    for index in range(3):
        GeneratedImage.objects.create(
            job=job, index=index, image=ImageFactory(truth=Truth.SYNTHETIC)
        )
    html = staff_client.get(f"/staff/generation/jobs/generation/{job.pk}/").content.decode()
    assert "3 / 4 images" in html
    assert html.count("/display.png") == 3
    assert "Queued" not in html


def test_it_a_plain_visit_to_the_status_url_gets_the_page(staff_client, running_run):
    response = staff_client.get(status_url("training", running_run))
    assert response.status_code == 303
    assert response["Location"] == f"/staff/generation/jobs/training/{running_run.pk}/"


def test_it_is_a_404_for_a_job_that_does_not_exist(staff_client, db):
    assert staff_client.get("/staff/generation/jobs/training/999/").status_code == 404
    assert staff_client.get("/staff/generation/jobs/other/1/").status_code == 404


def test_it_status_block_stays_cheap_to_poll(staff_client, tiny_model, django_assert_num_queries):
    job = GenerationJob.objects.create(generator=tiny_model, count=4, finding="normal")
    for index in range(3):
        GeneratedImage.objects.create(
            job=job, index=index, image=ImageFactory(truth=Truth.SYNTHETIC)
        )
    # (session,) user, the job, and the service's fresh read of it and of its images done
    with django_assert_num_queries(4 + session_queries()):
        staff_client.get(status_url("generation", job), HTTP_HX_REQUEST="true")
