"""Sharded generation jobs: seed ranges as tasks of their own on the GPU queue, each safe to
run twice; the job succeeds exactly once, when its last shard does."""

from __future__ import annotations

import pytest

from generation import recovery, services, tasks
from generation.models import GenerationJob, GenerationShard, JobStatus
from generation.signals import generation_succeeded


def sharded_job(generator, *, count: int = 5, shards: int = 3, seed: int = 10) -> GenerationJob:
    return services.start_generation(
        generator=generator, count=count, finding="normal", steps=2, scheduler="ddim",
        seed=seed, batch_size=2, user=None, shards=shards,
    )  # fmt: skip


@pytest.fixture
def announced():
    seen: list[int] = []

    def receiver(sender, job_pk, **kwargs):
        seen.append(job_pk)

    generation_succeeded.connect(receiver, weak=False)
    yield seen
    generation_succeeded.disconnect(receiver)


def test_it_splits_the_images_into_seed_ranges_and_succeeds_with_the_last_shard(
    real_pool, tiny_generator, announced
):
    job = sharded_job(tiny_generator)
    shards = list(job.shards.order_by("number"))
    assert job.shard_count == 3
    assert [(s.start, s.stop) for s in shards] == [(0, 1), (1, 3), (3, 5)]

    tasks.generate_shard(shard_pk=shards[1].pk)
    tasks.generate_shard(shard_pk=shards[0].pk)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.done_count == 3
    tasks.generate_shard(shard_pk=shards[0].pk)  # twice: nothing more
    assert job.outputs.count() == 3 and not announced

    tasks.generate_shard(shard_pk=shards[2].pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.done_count == 5 and job.finished_at is not None
    slots = list(job.outputs.select_related("image"))
    assert [slot.index for slot in slots] == [0, 1, 2, 3, 4]
    assert [slot.image.provenance["seed"] for slot in slots] == [10, 11, 12, 13, 14]
    assert all(s.status == JobStatus.SUCCEEDED for s in job.shards.all())
    assert announced == [job.pk]

    for shard in shards:  # every shard again: no image more, no second announcement
        tasks.generate_shard(shard_pk=shard.pk)
    tasks.settle_sharded_job(job.pk)
    assert job.outputs.count() == 5 and announced == [job.pk]


def test_it_cancels_every_shard_and_retry_makes_only_the_missing_images(real_pool, tiny_generator):
    job = sharded_job(tiny_generator, count=4, shards=2)
    first, second = job.shards.order_by("number")
    tasks.generate_shard(shard_pk=first.pk)

    services.request_cancel(job)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.done_count == 2
    assert list(job.shards.values_list("status", flat=True)) == [
        JobStatus.SUCCEEDED,
        JobStatus.CANCELLED,
    ]
    tasks.generate_shard(shard_pk=second.pk)  # a stale message: the cancelled shard stays so
    assert job.outputs.count() == 2

    first.refresh_from_db()
    services.retry(job)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    second.refresh_from_db()
    assert second.status == JobStatus.QUEUED
    tasks.generate_shard(shard_pk=second.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.outputs.count() == 4
    # the finished shard was not queued again
    assert GenerationShard.objects.get(pk=first.pk).attempts == first.attempts == 1


def test_it_fails_the_job_with_the_failing_shards_reason(real_pool, tiny_generator, settings):
    job = sharded_job(tiny_generator, count=2, shards=2)
    first, second = job.shards.order_by("number")
    tasks.generate_shard(shard_pk=first.pk)
    settings.MODEL_ROOT = settings.MODEL_ROOT.parent / "elsewhere"  # the folder is gone

    tasks.generate_shard(shard_pk=second.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("shard 1: ") and job.outputs.count() == 1


def test_it_recovers_lost_shards_not_the_sharded_job(real_pool, tiny_generator):
    from django.utils import timezone

    job = sharded_job(tiny_generator, count=2, shards=2)
    long_ago = timezone.now() - timezone.timedelta(hours=1)
    GenerationJob.objects.filter(pk=job.pk).update(created_at=long_ago)
    GenerationShard.objects.filter(job=job).update(
        status=JobStatus.RUNNING, heartbeat_at=long_ago, created_at=long_ago
    )
    now = timezone.now()
    assert job.pk not in recovery._candidates(GenerationJob, now)
    assert set(recovery._candidates(GenerationShard, now)) == set(
        job.shards.values_list("pk", flat=True)
    )


def test_it_refuses_more_shards_than_images(real_pool, tiny_generator):
    with pytest.raises(services.InvalidJob, match="shards must be between 1 and"):
        sharded_job(tiny_generator, count=2, shards=3)


def test_it_adds_a_sharded_jobs_images_to_its_study_once_when_the_last_shard_ends(
    real_pool, tiny_generator
):
    from readerstudy.models import StudyCase
    from tests.factories import StudyFactory

    study = StudyFactory()
    job = services.start_generation(
        generator=tiny_generator, count=2, finding="pneumonia", steps=2, scheduler="ddim",
        batch_size=1, study=study, keep_study_balance=True, user=None, shards=2,
    )  # fmt: skip
    first, second = job.shards.order_by("number")
    tasks.generate_shard(shard_pk=first.pk)
    assert not StudyCase.objects.filter(study=study).exists()  # not before the job succeeds

    tasks.generate_shard(shard_pk=second.pk)
    tasks.generate_shard(shard_pk=second.pk)  # again: the study does not grow

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    truths = sorted(StudyCase.objects.filter(study=study).values_list("image__truth", flat=True))
    assert truths == ["real", "real", "synthetic", "synthetic"]
    assert "to keep the balance" in job.log_tail


def test_it_settles_a_job_whose_worker_died_between_the_last_shard_and_the_job(
    real_pool, tiny_generator, announced, monkeypatch
):
    job = sharded_job(tiny_generator, count=2, shards=2)
    first, second = job.shards.order_by("number")
    # the worker dies after each shard commits its end and before it settles the job
    monkeypatch.setattr(tasks, "settle_sharded_job", lambda job_pk: None)
    tasks.generate_shard(shard_pk=first.pk)
    tasks.generate_shard(shard_pk=second.pk)
    monkeypatch.undo()
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and not announced

    assert recovery.sweep() == []
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.done_count == 2
    assert announced == [job.pk]

    recovery.sweep()  # again: nothing changes, no second announcement
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and announced == [job.pk]


def test_it_settles_a_job_whose_shards_were_all_cancelled_but_not_the_job(
    real_pool, tiny_generator
):
    job = sharded_job(tiny_generator, count=4, shards=2)
    first, second = job.shards.order_by("number")
    tasks.generate_shard(shard_pk=first.pk)
    # cancelled on its own (as request_cancel does a shard whose worker stopped beating)
    GenerationShard.objects.filter(pk=second.pk).update(status=JobStatus.CANCELLED)
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)

    recovery.sweep()
    recovery.sweep()

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.done_count == 2
    assert job.finished_at is not None


def test_it_leaves_a_sharded_job_with_a_shard_still_running_to_its_shards(
    real_pool, tiny_generator
):
    job = sharded_job(tiny_generator, count=4, shards=2)
    first = job.shards.get(number=0)
    tasks.generate_shard(shard_pk=first.pk)

    recovery.sweep()

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.finished_at is None
