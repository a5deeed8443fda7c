"""``generation_succeeded``: sent once a job's success is committed; the evaluation app's
receiver enqueues the job's quality evaluation."""

from __future__ import annotations

import contextlib

import pytest

from evaluation.tasks import evaluate_generation_job
from generation import services, tasks
from generation.models import GenerationJob, JobStatus
from generation.signals import generation_succeeded


@contextlib.contextmanager
def receiving(receiver):
    generation_succeeded.connect(receiver, dispatch_uid="test-receiver")
    try:
        yield
    finally:
        generation_succeeded.disconnect(dispatch_uid="test-receiver")


@pytest.fixture
def published(monkeypatch):
    calls = []
    monkeypatch.setattr(evaluate_generation_job, "delay", lambda **kw: calls.append(kw))
    return calls


def new_job(generator) -> GenerationJob:
    return services.create_generation_job(
        generator=generator, count=1, finding="normal", steps=2, scheduler="ddim", seed=0,
        batch_size=1,
    )


def test_it_announces_a_succeeded_job_once_and_the_evaluation_is_enqueued(
    real_pool, tiny_generator, published
):
    job = new_job(tiny_generator)
    heard = []

    def receiver(sender, job_pk, **kwargs):
        # sent after the commit: the job is seen as succeeded from outside its transaction
        heard.append((sender, job_pk, GenerationJob.objects.get(pk=job_pk).status))

    with receiving(receiver):
        tasks.generate_images(job_pk=job.pk)
        tasks.generate_images(job_pk=job.pk)  # a second delivery: a no-op, no second signal

    assert heard == [(GenerationJob, job.pk, JobStatus.SUCCEEDED)]
    assert published == [{"job_pk": job.pk}]


def test_it_keeps_the_job_succeeded_when_a_receiver_fails(real_pool, tiny_generator, published):
    job = new_job(tiny_generator)

    def broken(sender, job_pk, **kwargs):
        raise RuntimeError("a receiver that breaks")

    with receiving(broken):
        tasks.generate_images(job_pk=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert published == [{"job_pk": job.pk}]  # the other receivers still ran


def test_it_announces_nothing_for_a_cancelled_job(real_pool, tiny_generator, published):
    job = new_job(tiny_generator)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)
    heard = []

    with receiving(lambda sender, job_pk, **kwargs: heard.append(job_pk)):
        tasks.generate_images(job_pk=job.pk)

    assert heard == [] and published == []
