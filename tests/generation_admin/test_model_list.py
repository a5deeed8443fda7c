"""The generators in the admin: the list's columns, its tools, and one fixed number of queries."""

import pytest

from generation.models import GeneratedImage, GenerationJob, GeneratorModel, JobStatus, TrainingRun
from pool.models import Truth
from tests.factories import ImageFactory
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

URL = "/admin/generation/generatormodel/"


def model_with_history(name: str, n_images: int = 2) -> GeneratorModel:
    generator = GeneratorModel.objects.create(
        name=name, kind="ddpm", findings=["normal", "pneumonia"], resolution=64
    )
    TrainingRun.objects.create(generator=generator, total_steps=10, status=JobStatus.FAILED)
    TrainingRun.objects.create(generator=generator, total_steps=20, status=JobStatus.SUCCEEDED)
    for _ in range(2):
        job = GenerationJob.objects.create(generator=generator, count=n_images)
        for index in range(n_images):
            GeneratedImage.objects.create(
                job=job, index=index, image=ImageFactory(truth=Truth.SYNTHETIC)
            )
    return generator


def test_it_lists_each_model_with_its_latest_run_and_image_count(staff_client):
    generator = model_with_history("lungs", n_images=3)
    GeneratorModel.objects.create(name="api", kind="image-api")
    response = staff_client.get(URL)
    html = response.content.decode()
    row = html.split(f'href="/staff/generation/models/{generator.pk}/"')[1].split("</tr>")[0]
    assert "normal, pneumonia" in row and "64" in row
    assert "Succeeded" in row  # the newest run, not the failed one
    assert '<td class="field-images_produced">6</td>' in row
    api_row = html.split(">api</a>")[1].split("</tr>")[0]
    assert '<td class="field-latest_run">—</td>' in api_row
    assert '<td class="field-images_produced">0</td>' in api_row


def test_it_offers_train_generate_and_jobs(staff_client, db):
    html = staff_client.get(URL).content.decode()
    for link in (
        "/staff/generation/train/",
        "/staff/generation/generate/",
        "/staff/generation/jobs/",
    ):
        assert f'href="{link}"' in html


def test_it_sorts_by_images_produced(staff_client):
    model_with_history("few", n_images=1)
    model_with_history("many", n_images=3)
    response = staff_client.get(URL + "?o=-7")
    assert [m.name for m in response.context["cl"].result_list] == ["many", "few"]


@pytest.mark.parametrize("n", [1, 4])
def test_its_number_of_queries_does_not_grow_with_the_models(
    staff_client, n, django_assert_num_queries
):
    for i in range(n):
        model_with_history(f"model-{i}")
    # (session,) user, 2 counts, the annotated page, and the admin's own filter queries
    with django_assert_num_queries(4 + session_queries()):
        response = staff_client.get(URL)
    assert response.status_code == 200


def test_its_add_form_leaves_pixel_diffusion_to_training(staff_client, staff):
    response = staff_client.post(
        URL + "add/",
        {
            "name": "px",
            "kind": "ddpm",
            "modality": "CXR",
            "findings": "[]",
            "resolution": "64",
            "config": "{}",
        },
    )
    assert "made by training" in response.content.decode()
    response = staff_client.post(
        URL + "add/",
        {
            "name": "sd",
            "kind": "stable-diffusion",
            "modality": "CXR",
            "findings": "[]",
            "resolution": "512",
            "config": "{}",
        },
    )
    assert "needs a base checkpoint folder" in response.content.decode()
    response = staff_client.post(
        URL + "add/",
        {
            "name": "api",
            "kind": "image-api",
            "modality": "CXR",
            "findings": "[]",
            "resolution": "512",
            "config": "{}",
        },
    )
    assert response.status_code == 302
    assert GeneratorModel.objects.get().created_by == staff


def test_its_name_and_kind_are_fixed_once_made(staff_client):
    generator = model_with_history("lungs")
    form = staff_client.get(URL + f"{generator.pk}/change/").context["adminform"].form
    assert "name" not in form.fields and "kind" not in form.fields
