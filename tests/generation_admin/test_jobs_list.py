"""The jobs list: both kinds, their status and progress, one fixed number of queries."""

import pytest
from django.utils import timezone

from generation.models import GeneratedImage, GenerationJob, GeneratorModel, JobStatus, TrainingRun
from pool.models import Truth
from tests.factories import ImageFactory
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

URL = "/staff/generation/jobs/"


def make_jobs(n: int, *, status=JobStatus.SUCCEEDED) -> None:
    for i in range(n):
        generator = GeneratorModel.objects.create(
            name=f"model-{GeneratorModel.objects.count()}", kind="ddpm"
        )
        TrainingRun.objects.create(
            generator=generator, total_steps=100, step=100, status=status, worker=f"w{i}"
        )
        job = GenerationJob.objects.create(generator=generator, count=3, status=status)
        GeneratedImage.objects.create(job=job, index=0, image=ImageFactory(truth=Truth.SYNTHETIC))


def test_it_lists_runs_and_jobs_with_status_progress_and_worker(staff_client, tiny_model):
    run = TrainingRun.objects.create(
        generator=tiny_model,
        total_steps=400,
        step=100,
        latest_loss=0.5,
        status=JobStatus.RUNNING,
        worker="gpu-a",
        device="cuda:0",
        heartbeat_at=timezone.now(),
    )
    job = GenerationJob.objects.create(generator=tiny_model, count=8, status=JobStatus.FAILED)
    for index in range(2):
        GeneratedImage.objects.create(
            job=job, index=index, image=ImageFactory(truth=Truth.SYNTHETIC)
        )
    html = staff_client.get(URL).content.decode()
    assert f'href="/staff/generation/jobs/training/{run.pk}/"' in html
    assert f'href="/staff/generation/jobs/generation/{job.pk}/"' in html
    assert "100 / 400 steps" in html and "loss 0.5000" in html and "gpu-a (cuda:0)" in html
    assert "2 / 8 images" in html and "Failed" in html


def test_it_refreshes_itself_only_while_a_job_is_active(staff_client, tiny_model):
    run = TrainingRun.objects.create(generator=tiny_model, total_steps=10, status=JobStatus.QUEUED)
    page = staff_client.get(URL).content.decode()
    assert 'hx-trigger="every 5s"' in page
    partial = staff_client.get(URL, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="job-tables"') and "<html" not in partial
    run.status = JobStatus.CANCELLED
    run.save()
    assert "hx-trigger" not in staff_client.get(URL, HTTP_HX_REQUEST="true").content.decode()


def test_it_pages_each_list_on_its_own(staff_client, db):
    make_jobs(30)
    html = staff_client.get(URL + "?jobs=2").content.decode()
    assert "?jobs=2&amp;runs=2" in html  # older runs, keeping the jobs page
    assert "?jobs=1" in html


@pytest.mark.parametrize("n", [1, 5])
def test_its_number_of_queries_does_not_grow_with_the_jobs(
    staff_client, db, n, django_assert_num_queries
):
    make_jobs(n)
    # (session,) user, runs count + page, jobs count + page (images counted in the same query)
    with django_assert_num_queries(5 + session_queries()):
        response = staff_client.get(URL)
    assert len(response.context["run_rows"]) == len(response.context["job_rows"]) == n
