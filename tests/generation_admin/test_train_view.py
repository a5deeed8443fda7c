"""The Train page: a valid form starts a real training run and leads to the run's page."""

import pytest

from generation.models import GeneratorModel, JobStatus, TrainingRun
from tests.generation_admin.test_train_form import ddpm_data

pytestmark = pytest.mark.django_db


def test_it_shows_the_form_in_the_admin(staff_client):
    response = staff_client.get("/staff/generation/train/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="findings"' in html and 'name="lora_rank"' in html
    assert "Train a model" in html
    assert response["Cache-Control"] == "private, no-store"


def test_it_starts_a_run_enqueues_it_on_commit_and_redirects_to_its_page(
    staff_client, staff, real_pool, gpu_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post("/staff/generation/train/", ddpm_data(steps="50"))
    run = TrainingRun.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/staff/generation/jobs/training/{run.pk}/"
    assert (run.status, run.total_steps, run.created_by) == (JobStatus.QUEUED, 50, staff)
    assert run.params == {"batch_size": 8, "lr": 0.0002, "preset": "small"}
    generator = run.generator
    assert (generator.name, generator.kind, generator.findings, generator.resolution) == (
        "lungs-64",
        "ddpm",
        ["normal", "pneumonia"],
        64,
    )
    assert gpu_queue() == [("generation.tasks.train_generator", {"run_pk": run.pk})]


def test_it_continues_an_existing_model(
    staff_client, real_pool, gpu_queue, django_capture_on_commit_callbacks
):
    generator = GeneratorModel.objects.create(
        name="lungs-64", kind="ddpm", findings=["normal", "pneumonia"], resolution=64
    )
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post("/staff/generation/train/", ddpm_data(steps="200"))
    assert TrainingRun.objects.get().generator == generator
    assert GeneratorModel.objects.count() == 1


def test_it_prefills_the_form_from_a_model(staff_client):
    generator = GeneratorModel.objects.create(
        name="lungs-128", kind="ddpm", findings=["normal"], resolution=128
    )
    form = staff_client.get(f"/staff/generation/train/?model={generator.pk}").context["form"]
    assert form.initial["name"] == "lungs-128"
    assert form.initial["findings"] == "normal"


def test_it_rerenders_an_invalid_form_and_creates_nothing(staff_client, real_pool):
    response = staff_client.post("/staff/generation/train/", ddpm_data(findings="effusion"))
    assert response.status_code == 200
    assert "“effusion”" in response.content.decode()
    assert not GeneratorModel.objects.exists()
    assert not TrainingRun.objects.exists()
