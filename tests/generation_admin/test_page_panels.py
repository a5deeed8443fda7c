"""Panels other apps add to a model's and a job's page (``generation.extensions``)."""

import pytest

from evaluation.pages import latest_evaluation
from generation import extensions
from generation.models import GenerationJob, GeneratorModel, JobStatus

pytestmark = pytest.mark.django_db


def test_it_has_the_evaluation_apps_quality_panel_registered():
    assert extensions._model_panels["quality"] is latest_evaluation
    assert extensions._job_panels["quality"] is latest_evaluation


def test_it_puts_every_registered_panel_into_the_model_and_job_pages(staff_client, monkeypatch):
    generator = GeneratorModel.objects.create(name="panelled", kind="ddpm")
    job = GenerationJob.objects.create(generator=generator, count=1, status=JobStatus.SUCCEEDED)
    monkeypatch.setitem(extensions._model_panels, "extra", lambda generator: generator.name)
    monkeypatch.setitem(extensions._job_panels, "extra", lambda job: f"job {job.pk}")

    model_page = staff_client.get(f"/staff/generation/models/{generator.pk}/")
    job_page = staff_client.get(f"/staff/generation/jobs/generation/{job.pk}/")

    assert model_page.status_code == 200 and model_page.context["extra"] == "panelled"
    assert job_page.status_code == 200 and job_page.context["extra"] == f"job {job.pk}"
    assert model_page.context["quality"] is None and job_page.context["quality"] is None
    assert "Not evaluated yet" in job_page.content.decode()
