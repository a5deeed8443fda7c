"""Launching, cancelling, retrying jobs and reading their progress, as the admin does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu import Connection

from generation import services
from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus, TrainingRun
from tests.factories import StaffFactory, StudyFactory


def queued_messages(app, queue: str = "gpu") -> list[dict]:
    """Drain the in-memory broker's queue: [(task name, kwargs)]."""
    found = []
    with Connection("memory://") as connection:
        simple = connection.SimpleQueue(queue)
        while True:
            try:
                message = simple.get(block=False)
            except simple.Empty:
                break
            found.append((message.headers["task"], message.payload[1]))
            message.ack()
        simple.close()
    return found


@pytest.fixture
def staff_user(transactional_db):
    return StaffFactory()


def test_it_creates_a_queued_job_and_enqueues_it_after_commit(
    real_pool, tiny_generator, staff_user, _memory_broker
):
    queued_messages(_memory_broker)  # start from an empty queue
    job = services.start_generation(
        generator=tiny_generator, count=5, finding="Pneumonia", steps=10, seed=3, user=staff_user
    )

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.created_by == staff_user
    assert job.finding == "pneumonia"  # the model's spelling
    assert queued_messages(_memory_broker) == [
        ("generation.tasks.generate_images", {"job_pk": job.pk})
    ]


def test_it_enqueues_a_training_run(real_pool, staff_user, _memory_broker):
    queued_messages(_memory_broker)
    generator = GeneratorModel.objects.create(name="fresh", kind=GeneratorKind.DDPM, resolution=32)

    run = services.start_training(
        generator=generator, total_steps=10, params={"preset": "tiny"}, user=staff_user
    )

    assert run.status == JobStatus.QUEUED and run.params == {"preset": "tiny"}
    assert queued_messages(_memory_broker) == [
        ("generation.tasks.train_generator", {"run_pk": run.pk})
    ]
    with pytest.raises(services.InvalidJob, match="already has a training run in progress"):
        services.start_training(generator=generator, total_steps=10, params={}, user=staff_user)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"finding": "covid"}, "unknown finding 'covid'.*knows: normal, pneumonia"),
        ({"prompt": "a chest x-ray"}, "class-conditional ddpm model: it takes a finding"),
        ({"finding": ""}, "choose a finding"),
        ({"count": 0}, "count must be a positive"),
        ({"scheduler": "plms"}, "unknown scheduler"),
        ({"keep_study_balance": True}, "needs a study"),
    ],
)
def test_it_refuses_a_job_that_cannot_run_and_creates_nothing(
    real_pool, tiny_generator, staff_user, fields, message
):
    values = {"count": 2, "finding": "normal", **fields}
    with pytest.raises(services.InvalidJob, match=message):
        services.start_generation(generator=tiny_generator, user=staff_user, **values)
    assert not GenerationJob.objects.exists()


def test_it_refuses_training_with_an_empty_training_set(transactional_db, staff_user):
    generator = GeneratorModel.objects.create(name="empty", kind=GeneratorKind.DDPM, resolution=32)
    with pytest.raises(services.InvalidJob, match="training set is empty"):
        services.start_training(generator=generator, total_steps=5, params={}, user=staff_user)
    assert not TrainingRun.objects.exists()


def test_it_refuses_a_study_whose_orders_are_drawn(
    real_pool, tiny_generator, staff_user, monkeypatch
):
    study = StudyFactory()
    monkeypatch.setattr(type(study), "has_drawn_orders", lambda self: True)
    with pytest.raises(services.InvalidJob, match="cases are frozen"):
        services.start_generation(
            generator=tiny_generator, count=1, finding="normal", study=study, user=staff_user
        )


def test_it_cancels_a_queued_job_at_once(real_pool, tiny_generator, staff_user):
    job = services.start_generation(
        generator=tiny_generator, count=1, finding="normal", user=staff_user
    )

    services.request_cancel(job)

    assert job.status == JobStatus.CANCELLED and job.cancel_requested and job.finished_at


def test_it_flags_a_running_job_and_lets_its_worker_stop_it(real_pool, tiny_generator, staff_user):
    job = services.start_generation(
        generator=tiny_generator, count=1, finding="normal", user=staff_user
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now(), started_at=timezone.now()
    )

    services.request_cancel(job)

    assert job.status == JobStatus.RUNNING and job.cancel_requested


def test_it_cancels_a_running_job_whose_worker_stopped_beating(
    real_pool, tiny_generator, staff_user
):
    job = services.start_generation(
        generator=tiny_generator, count=1, finding="normal", user=staff_user
    )
    old = timezone.now() - timedelta(minutes=10)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=old, started_at=old
    )
    assert services.progress(job)["stalled"] is True

    services.request_cancel(job)

    assert job.status == JobStatus.CANCELLED and "stopped reporting" in job.error


def test_it_leaves_a_finished_job_as_it_is_on_cancel(real_pool, tiny_generator, staff_user):
    job = services.start_generation(
        generator=tiny_generator, count=1, finding="normal", user=staff_user
    )
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)

    services.request_cancel(job)

    assert job.status == JobStatus.SUCCEEDED and not job.cancel_requested


def test_it_retries_a_failed_job_and_enqueues_it_again(
    real_pool, tiny_generator, staff_user, _memory_broker
):
    job = services.start_generation(
        generator=tiny_generator, count=1, finding="normal", user=staff_user
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error="boom", cancel_requested=True, finished_at=timezone.now()
    )
    queued_messages(_memory_broker)

    services.retry(job)

    assert job.status == JobStatus.QUEUED and job.error == "" and not job.cancel_requested
    assert job.finished_at is None
    assert queued_messages(_memory_broker) == [
        ("generation.tasks.generate_images", {"job_pk": job.pk})
    ]
    with pytest.raises(services.InvalidJob, match="only a failed or cancelled job"):
        services.retry(job)


def test_it_marks_the_job_failed_when_the_queue_goes_away_after_the_check(
    real_pool, tiny_generator, staff_user, monkeypatch
):
    from generation import tasks

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(tasks.generate_images, "apply_async", broken)
    job = services.start_generation(
        generator=tiny_generator, count=1, finding="normal", user=staff_user
    )

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "could not be handed to the task queue" in job.error and "Retry" in job.error


def test_it_reports_progress_for_the_progress_partial(real_pool, tiny_generator, staff_user):
    job = services.start_generation(
        generator=tiny_generator, count=4, finding="normal", user=staff_user
    )
    assert services.progress(job) == {
        "status": "queued",
        "status_display": "Queued",
        "done": 0,
        "total": 4,
        "percent": 0.0,
        "latest_loss": None,
        "eta_s": None,
        "is_finished": False,
        "cancel_requested": False,
        "stalled": False,
        "worker": "",
        "device": "",
        "error": "",
    }
    from generation import tasks

    tasks.run_generation(job.pk, heartbeat=False)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        heartbeat_at=timezone.now(),
        attempt_started_at=timezone.now() - timedelta(seconds=20),
        attempt_start_done=0,
    )
    job.outputs.filter(index__gte=2).delete()

    running = services.progress(job)
    assert (running["done"], running["total"], running["percent"]) == (2, 4, 50.0)
    assert 15 <= running["eta_s"] <= 25 and not running["is_finished"]

    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    assert services.progress(job)["is_finished"] is True


def test_it_reports_training_progress_with_the_latest_loss(transactional_db, staff_user):
    generator = GeneratorModel.objects.create(name="p", kind=GeneratorKind.DDPM, resolution=32)
    run = TrainingRun.objects.create(
        generator=generator,
        total_steps=200,
        step=50,
        latest_loss=0.25,
        status=JobStatus.RUNNING,
        heartbeat_at=timezone.now(),
        attempt_start_done=10,
        attempt_started_at=timezone.now() - timedelta(seconds=40),
    )

    state = services.progress(run)

    assert (state["done"], state["total"], state["percent"]) == (50, 200, 25.0)
    assert state["latest_loss"] == 0.25
    assert 145 <= state["eta_s"] <= 155  # 40 steps in 40 s, 150 to go


def test_it_refuses_a_training_setting_the_kind_does_not_take(real_pool, staff_user):
    generator = GeneratorModel.objects.create(name="ddpm", kind=GeneratorKind.DDPM, resolution=32)
    with pytest.raises(services.InvalidJob, match="unknown training setting.*lora_rank"):
        services.start_training(
            generator=generator, total_steps=5, params={"lora_rank": 8}, user=staff_user
        )
    assert not TrainingRun.objects.exists()
    # blank settings from a form are simply not given
    services.start_training(
        generator=generator, total_steps=5, params={"lora_rank": None, "lr": None}, user=staff_user
    )


def test_it_gives_a_job_its_model_kinds_guidance_unless_asked(real_pool, tiny_generator, tmp_path):
    from generation.backends import BACKENDS, backend_for

    sd = GeneratorModel.objects.create(
        name="sd", kind=GeneratorKind.STABLE_DIFFUSION, base_checkpoint=str(tmp_path)
    )
    pixel = services.create_generation_job(generator=tiny_generator, count=1, finding="normal")
    text = services.create_generation_job(generator=sd, count=1, prompt="a chest x-ray")
    asked = services.create_generation_job(generator=sd, count=1, prompt="x", guidance=4.0)
    assert (pixel.guidance, text.guidance, asked.guidance) == (2.0, 7.5, 4.0)
    assert all(isinstance(backend_for(kind).default_guidance, float) for kind in BACKENDS)
