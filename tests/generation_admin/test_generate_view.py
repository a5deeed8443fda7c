"""The Generate page: a valid form starts a real generation job and leads to its page."""

import pytest

from generation.models import GenerationJob, JobStatus
from tests.factories import StudyFactory
from tests.generation_admin.test_generate_form import generate_data

pytestmark = pytest.mark.django_db


def test_it_shows_the_form_preselecting_a_model(staff_client, tiny_model):
    response = staff_client.get(f"/staff/generation/generate/?model={tiny_model.pk}")
    assert response.status_code == 200
    assert response.context["form"].initial["generator"] == str(tiny_model.pk)
    assert 'name="keep_study_balance"' in response.content.decode()


def test_it_offers_the_models_own_guidance(staff_client, tiny_model, tmp_path):
    from generation.models import GeneratorModel

    sd = GeneratorModel.objects.create(
        name="sd", kind="stable-diffusion", base_checkpoint=str(tmp_path), resolution=512
    )
    for model, guidance in ((tiny_model, 2.0), (sd, 7.5)):
        response = staff_client.get(f"/staff/generation/generate/?model={model.pk}")
        assert response.context["form"].initial["guidance"] == guidance
        assert f'name="guidance" value="{guidance}"' in response.content.decode()
    assert "guidance" not in staff_client.get("/staff/generation/generate/").context["form"].initial


def test_it_gives_a_job_without_guidance_its_models_default(staff_client, tiny_model, gpu_queue):
    response = staff_client.post(
        "/staff/generation/generate/", generate_data(tiny_model, guidance="")
    )
    assert response.status_code == 303
    assert GenerationJob.objects.get().guidance == 2.0


def test_it_starts_a_job_enqueues_it_on_commit_and_redirects_to_its_page(
    staff_client, staff, tiny_model, gpu_queue, django_capture_on_commit_callbacks
):
    study = StudyFactory()
    data = generate_data(
        tiny_model, count="6", seed="7", study=str(study.pk), keep_study_balance="on"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/staff/generation/generate/", data)
    job = GenerationJob.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/staff/generation/jobs/generation/{job.pk}/"
    assert (job.status, job.count, job.seed, job.finding, job.study, job.keep_study_balance) == (
        JobStatus.QUEUED,
        6,
        7,
        "normal",
        study,
        True,
    )
    assert job.created_by == staff
    assert gpu_queue() == [("generation.tasks.generate_images", {"job_pk": job.pk})]


def test_it_rerenders_an_invalid_form_and_creates_nothing(staff_client, tiny_model):
    response = staff_client.post(
        "/staff/generation/generate/", generate_data(tiny_model, prompt="lungs")
    )
    assert response.status_code == 200
    assert "class-conditional" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_it_shows_what_the_services_refuse(staff_client, settings, db):
    from generation.models import GeneratorModel

    api = GeneratorModel.objects.create(name="api", kind="image-api")
    settings.IMAGE_API_BASE_URL = ""
    response = staff_client.post(
        "/staff/generation/generate/", generate_data(api, prompt="a chest x-ray")
    )
    assert response.status_code == 200
    assert "The hosted image API is not configured" in response.content.decode()
    assert not GenerationJob.objects.exists()
