"""Cancel and Retry: POST only, only in the states that allow them, through the services."""

import pytest
from django.utils import timezone

from generation.models import GenerationJob, JobStatus, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tiny_model):
    return GenerationJob.objects.create(generator=tiny_model, count=4, finding="normal")


def url(job, action: str, kind: str = "generation") -> str:
    return f"/staff/generation/jobs/{kind}/{job.pk}/{action}/"


def test_it_cancels_a_queued_job_at_once(staff_client, job):
    response = staff_client.post(url(job, "cancel"))
    assert response.status_code == 303
    assert response["Location"] == f"/staff/generation/jobs/generation/{job.pk}/"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.cancel_requested


def test_it_asks_a_running_job_to_stop(staff_client, job):
    job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, timezone.now(), timezone.now()
    job.save()
    page = staff_client.post(url(job, "cancel"), follow=True).content.decode()
    assert "Cancel requested" in page
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (JobStatus.RUNNING, True)  # the worker stops it
    assert "/cancel/" not in page  # asked once is enough


def test_it_answers_htmx_with_the_refreshed_status_block(staff_client, job):
    response = staff_client.post(url(job, "cancel"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="job-status"')
    assert "Cancelled" in html and "Cancel requested" in html
    assert "hx-trigger" not in html  # it has ended: no more polling
    assert url(job, "retry") in html


def test_it_does_not_cancel_a_finished_job(staff_client, job):
    job.status = JobStatus.SUCCEEDED
    job.save()
    page = staff_client.post(url(job, "cancel"), follow=True).content.decode()
    assert "nothing to cancel" in page
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and not job.cancel_requested


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_it_retries_a_failed_or_cancelled_job(
    staff_client, job, status, gpu_queue, django_capture_on_commit_callbacks
):
    job.status, job.error, job.cancel_requested = status, "worker lost", True
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url(job, "retry"))
    assert response.status_code == 303
    job.refresh_from_db()
    assert (job.status, job.error, job.cancel_requested) == (JobStatus.QUEUED, "", False)
    assert gpu_queue() == [("generation.tasks.generate_images", {"job_pk": job.pk})]


def test_it_retries_a_training_run(
    staff_client, tiny_model, gpu_queue, django_capture_on_commit_callbacks
):
    run = TrainingRun.objects.create(generator=tiny_model, total_steps=10, status=JobStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        html = staff_client.post(
            url(run, "retry", "training"), HTTP_HX_REQUEST="true"
        ).content.decode()
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED
    assert "Retry queued" in html and 'hx-trigger="every 2s"' in html  # polling again
    assert gpu_queue() == [("generation.tasks.train_generator", {"run_pk": run.pk})]


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED])
def test_it_does_not_retry_a_job_that_has_not_failed(staff_client, job, status):
    job.status = status
    job.save()
    page = staff_client.post(url(job, "retry"), follow=True).content.decode()
    assert "only failed or cancelled jobs can be retried" in page
    job.refresh_from_db()
    assert job.status == status


def test_it_takes_posts_only(staff_client, job):
    assert staff_client.get(url(job, "cancel")).status_code == 405
    assert staff_client.get(url(job, "retry")).status_code == 405
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_it_needs_the_csrf_token(client, staff, job):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    assert strict.post(url(job, "cancel")).status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
