"""Redis unreachable: launching shows a clear error and creates nothing; reading pages still work."""

import pytest

from generation.models import GenerationJob, GeneratorModel, JobStatus, TrainingRun
from tests.generation_admin.test_generate_form import generate_data
from tests.generation_admin.test_train_form import ddpm_data

pytestmark = pytest.mark.django_db


def test_it_keeps_the_train_form_and_creates_nothing(staff_client, real_pool, broker_down):
    response = staff_client.post("/staff/generation/train/", ddpm_data())
    assert response.status_code == 200
    html = response.content.decode()
    assert "The task queue (Redis at 127.0.0.1:1) is unreachable" in html
    assert 'value="lungs-64"' in html  # the researcher's input is still there
    assert not GeneratorModel.objects.exists()  # not even the new model row
    assert not TrainingRun.objects.exists()


def test_it_keeps_the_generate_form_and_creates_nothing(staff_client, tiny_model, broker_down):
    response = staff_client.post("/staff/generation/generate/", generate_data(tiny_model))
    assert response.status_code == 200
    assert "is unreachable" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_it_refuses_a_retry_and_leaves_the_job_as_it_was(staff_client, tiny_model, broker_down):
    job = GenerationJob.objects.create(
        generator=tiny_model, count=2, finding="normal", status=JobStatus.FAILED, error="boom"
    )
    response = staff_client.post(f"/staff/generation/jobs/generation/{job.pk}/retry/", follow=True)
    assert "is unreachable" in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "boom")


def test_its_reading_pages_never_touch_the_broker(staff_client, tiny_model, broker_down):
    run = TrainingRun.objects.create(generator=tiny_model, total_steps=10, status=JobStatus.RUNNING)
    for url in (
        "/staff/generation/jobs/",
        f"/staff/generation/jobs/training/{run.pk}/",
        f"/staff/generation/models/{tiny_model.pk}/",
        "/admin/generation/generatormodel/",
        "/staff/generation/train/",
        "/staff/generation/generate/",
    ):
        assert staff_client.get(url).status_code == 200, url
    htmx = staff_client.get(
        f"/staff/generation/jobs/training/{run.pk}/status/", HTTP_HX_REQUEST="true"
    )
    assert htmx.status_code == 200
