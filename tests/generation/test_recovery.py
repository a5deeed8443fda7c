"""The recovery sweep, and jobs stopped by a signal: nothing is left "running" for good.

The kill-and-flush case with real worker processes is in test_worker_kill.py; here the sweep
runs in-process against the in-memory broker of this package's tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from generation import recovery, shutdown
from generation.models import GenerationJob, GeneratorModel, JobStatus, TrainingRun
from generation.tasks import run_generation


@pytest.fixture(autouse=True)
def _empty_queue(_memory_broker):
    from kombu.transport.memory import Channel

    Channel.queues.clear()
    shutdown.reset()
    yield
    Channel.queues.clear()
    shutdown.reset()


def make_job(generator, *, status=JobStatus.RUNNING, beat_age_s=None, age_s=600) -> GenerationJob:
    now = timezone.now()
    job = GenerationJob.objects.create(
        generator=generator, count=2, finding="normal", steps=2, batch_size=1, status=status
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        created_at=now - timedelta(seconds=age_s),
        heartbeat_at=None if beat_age_s is None else now - timedelta(seconds=beat_age_s),
        task_id="dead-worker-task" if status == JobStatus.RUNNING else "",
    )
    return job


def test_it_queues_again_a_job_whose_worker_and_message_are_gone(tiny_generator):
    job = make_job(tiny_generator, beat_age_s=600)

    assert recovery.sweep() == [("GenerationJob", job.pk)]
    assert recovery.pending_messages() == {("generation.tasks.generate_images", job.pk)}
    # run twice: the message is there now, so nothing more is published
    assert recovery.sweep() == []
    assert recovery.pending_messages() == {("generation.tasks.generate_images", job.pk)}


def test_it_leaves_alone_jobs_that_are_alive_waiting_or_finished(tiny_generator):
    make_job(tiny_generator, beat_age_s=0)  # a live worker beats
    make_job(tiny_generator, status=JobStatus.QUEUED, age_s=0)  # just queued, publishing
    make_job(tiny_generator, status=JobStatus.SUCCEEDED, beat_age_s=600)
    make_job(tiny_generator, status=JobStatus.CANCELLED, beat_age_s=600)
    waiting = make_job(tiny_generator, beat_age_s=600)
    from generation.tasks import generate_images

    generate_images.apply_async(kwargs={"job_pk": waiting.pk})  # its message is still queued

    assert recovery.sweep() == []


def test_it_queues_again_a_training_run_and_a_long_queued_job(tiny_generator):
    run = TrainingRun.objects.create(generator=tiny_generator, total_steps=4)
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    queued = make_job(tiny_generator, status=JobStatus.QUEUED, age_s=600)

    requeued = recovery.sweep()

    assert sorted(requeued) == [("GenerationJob", queued.pk), ("TrainingRun", run.pk)]
    assert recovery.pending_messages() == {
        ("generation.tasks.generate_images", queued.pk),
        ("generation.tasks.train_generator", run.pk),
    }


def test_it_hands_a_job_back_to_the_queue_when_the_worker_shuts_down(tiny_generator):
    job = make_job(tiny_generator, status=JobStatus.QUEUED, age_s=600)
    shutdown.request(shutdown.REQUEUE)  # what a warm shutdown of the worker does

    ended = run_generation(job.pk)

    assert ended.status == JobStatus.QUEUED and ended.heartbeat_at is None
    assert "handed back to the queue" in ended.log_tail
    shutdown.reset()
    assert recovery.sweep() == [("GenerationJob", job.pk)]
    finished = run_generation(job.pk)
    assert finished.status == JobStatus.SUCCEEDED
    assert sorted(finished.outputs.values_list("index", flat=True)) == [0, 1]


def _signal_when(condition, signum: int) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline and not condition():
                time.sleep(0.1)
        finally:
            connection.close()
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_it_ends_a_train_model_run_cancelled_on_a_signal(real_pool, settings, signum):
    def started() -> bool:
        return TrainingRun.objects.filter(status=JobStatus.RUNNING, step__gte=1).exists()

    watcher = _signal_when(started, signum)
    with pytest.raises(CommandError, match="cancelled"):
        call_command(
            "train_model", "sig", "--resolution", "32", "--preset", "tiny", "--steps",
            "100000", "--batch-size", "2", "--grid-steps", "0", "--checkpoint-every", "100000",
            "--no-progress",
        )  # fmt: skip
    watcher.join(timeout=10)

    run = TrainingRun.objects.get()
    assert run.status == JobStatus.CANCELLED
    assert 1 <= run.step < 100000
    generator = GeneratorModel.objects.get(name="sig")
    assert generator.trained_steps == run.step  # a checkpoint of the step it stopped at
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back
