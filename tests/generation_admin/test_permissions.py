"""Staff only: readers are sent to the admin login, staff without the permission get a 403."""

import pytest
from django.contrib.auth.models import Permission

from generation.models import GenerationJob, TrainingRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def urls(tiny_model) -> list[str]:
    run = TrainingRun.objects.create(generator=tiny_model, total_steps=10)
    job = GenerationJob.objects.create(generator=tiny_model, count=1, finding="normal")
    return [
        "/staff/generation/train/",
        "/staff/generation/generate/",
        "/staff/generation/jobs/",
        f"/staff/generation/jobs/training/{run.pk}/",
        f"/staff/generation/jobs/training/{run.pk}/status/",
        f"/staff/generation/jobs/generation/{job.pk}/",
        f"/staff/generation/models/{tiny_model.pk}/",
        f"/staff/generation/models/{tiny_model.pk}/samples.png",
        f"/staff/generation/models/{tiny_model.pk}/checkpoints/1/samples.png",
    ]


def test_it_a_reader_is_sent_to_the_admin_login(reader_client, urls):
    for url in urls:
        response = reader_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next="), url


def test_it_a_reader_cannot_cancel_or_retry(reader_client, tiny_model):
    job = GenerationJob.objects.create(generator=tiny_model, count=1, finding="normal")
    for action in ("cancel", "retry"):
        response = reader_client.post(f"/staff/generation/jobs/generation/{job.pk}/{action}/")
        assert response["Location"].startswith("/admin/login/")
    job.refresh_from_db()
    assert job.status == "queued"


def test_it_an_anonymous_visitor_is_sent_to_log_in(client, urls):
    for url in urls:
        assert client.get(url).status_code == 302, url


def test_it_staff_need_the_models_permissions(client, tiny_model):
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)
    job = GenerationJob.objects.create(generator=tiny_model, count=1, finding="normal")
    assert client.get(f"/staff/generation/models/{tiny_model.pk}/").status_code == 403
    assert client.get("/staff/generation/train/").status_code == 403
    clerk.user_permissions.add(
        Permission.objects.get(codename="view_generatormodel"),
        Permission.objects.get(codename="view_generationjob"),
    )
    assert client.get(f"/staff/generation/models/{tiny_model.pk}/").status_code == 200
    assert client.get(f"/staff/generation/jobs/generation/{job.pk}/").status_code == 200
    assert client.post(f"/staff/generation/jobs/generation/{job.pk}/cancel/").status_code == 403
