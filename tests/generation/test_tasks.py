"""The Celery tasks, called directly (in this process, no broker): twice, cancelled, taken over."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image as PILImage

from generation import services, tasks
from generation.models import (
    GeneratedImage,
    GenerationJob,
    GeneratorKind,
    GeneratorModel,
    JobStatus,
    TrainingRun,
)
from pool.models import Image, Truth
from readerstudy.models import StudyCase
from tests.factories import AssignmentFactory, StudyFactory, UserFactory
from tests.generation.conftest import FINDINGS


def new_job(generator, **fields) -> GenerationJob:
    values = {
        "count": 3,
        "finding": "normal",
        "steps": 2,
        "scheduler": "ddim",
        "seed": 0,
        "batch_size": 2,
    }
    values.update(fields)
    return services.create_generation_job(generator=generator, **values)


def test_it_generates_images_into_the_pool_as_synthetic_with_provenance(real_pool, tiny_generator):
    job = new_job(tiny_generator, count=3, seed=10)

    tasks.generate_images(job_pk=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.done_count == 3 and job.attempts == 1
    assert job.worker and job.device.startswith("cpu")
    slots = list(job.outputs.select_related("image"))
    assert [slot.index for slot in slots] == [0, 1, 2]
    real_length = len(real_pool[0].display.read())
    for slot in slots:
        image = slot.image
        assert image.truth == Truth.SYNTHETIC
        assert (image.modality, image.finding, image.source) == ("CXR", "normal", "tiny")
        assert image.provenance["job"] == job.pk and image.provenance["index"] == slot.index
        assert image.provenance["seed"] == 10 + slot.index
        assert image.provenance["generator"] == "ddpm"
        assert image.provenance["weights_sha256"]
        assert image.provenance["scheduler"] == "ddim" and image.provenance["steps"] == 2
        original = image.original.read()
        assert hashlib.sha256(original).hexdigest() == image.sha256
        assert PILImage.open(io.BytesIO(original)).size == (32, 32)
        # the display derivative is made by the same code as for real images: same byte length
        assert len(image.display.read()) == real_length


def test_it_makes_nothing_more_when_run_twice(real_pool, tiny_generator):
    job = new_job(tiny_generator, count=2)
    tasks.generate_images(job_pk=job.pk)
    first = list(Image.objects.filter(truth=Truth.SYNTHETIC).values_list("id", "sha256"))

    tasks.generate_images(job_pk=job.pk)  # a second delivery of a succeeded job: a no-op

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1
    assert list(Image.objects.filter(truth=Truth.SYNTHETIC).values_list("id", "sha256")) == first
    assert GeneratedImage.objects.filter(job=job).count() == 2


def test_it_makes_only_the_missing_images_when_a_dead_workers_job_is_redelivered(
    real_pool, tiny_generator
):
    job = new_job(tiny_generator, count=4, seed=5)
    # a first attempt made images 0 and 2, then its worker died: running, heartbeat long gone
    tasks.run_generation(job.pk, heartbeat=False)
    keep = set(
        GeneratedImage.objects.filter(job=job, index__in=[0, 2]).values_list("image_id", flat=True)
    )
    for slot in GeneratedImage.objects.filter(job=job, index__in=[1, 3]):
        image = slot.image
        slot.delete()
        image.delete()
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        task_id="celery-task-1",
        done_count=2,
        heartbeat_at=timezone.now() - timedelta(minutes=5),
    )

    tasks.run_generation(job.pk, token="celery-task-1", heartbeat=False)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    slots = {slot.index: slot for slot in job.outputs.all()}
    assert sorted(slots) == [0, 1, 2, 3]
    assert {slots[0].image_id, slots[2].image_id} == keep
    assert [slots[k].image.provenance["seed"] for k in range(4)] == [5, 6, 7, 8]


def test_it_leaves_a_job_alone_that_a_live_worker_holds(real_pool, tiny_generator):
    job = new_job(tiny_generator, count=2)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        task_id="another-task",
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
    )

    assert tasks.run_generation(job.pk, token="duplicate-message") is None

    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.task_id == "another-task"
    assert not job.outputs.exists()


def test_it_takes_over_its_own_redelivered_job_once_the_heartbeat_goes_quiet(
    real_pool, tiny_generator
):
    job = new_job(tiny_generator, count=1)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING,
        task_id="same-task",
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
    )

    result = tasks.run_generation(job.pk, token="same-task")  # waits ~3 s for staleness

    assert result.status == JobStatus.SUCCEEDED and result.outputs.count() == 1


def test_it_stops_cleanly_on_cancel_keeping_finished_images_and_retry_makes_the_rest(
    real_pool, tiny_generator, monkeypatch
):
    job = new_job(tiny_generator, count=4, batch_size=1)
    made = []

    def cancel_after_two(done, total, loss):
        made.append(done)
        if done == 2:
            GenerationJob.objects.filter(pk=job.pk).update(cancel_requested=True)

    monkeypatch.setattr("generation.runner.CANCEL_CHECK_EVERY_S", 0)
    tasks.run_generation(job.pk, on_progress=cancel_after_two)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.outputs.count() == 2 and job.done_count == 2
    assert "cancelled with 2 of 4" in job.log_tail
    first_two = set(job.outputs.values_list("image_id", flat=True))

    services.reopen(job)
    tasks.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.outputs.count() == 4
    assert first_two <= set(job.outputs.values_list("image_id", flat=True))
    assert sorted(job.outputs.values_list("index", flat=True)) == [0, 1, 2, 3]


def test_it_fails_with_an_actionable_reason_when_the_model_folder_is_missing(
    real_pool, tiny_generator
):
    job = new_job(tiny_generator, count=1)
    import shutil

    shutil.rmtree(tiny_generator.folder)
    tasks.generate_images(job_pk=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "does not exist" in job.error and str(tiny_generator.folder) in job.error
    assert not Image.objects.filter(truth=Truth.SYNTHETIC).exists()


def test_it_fails_at_the_soft_time_limit_keeping_what_is_made(real_pool, tiny_generator):
    job = new_job(tiny_generator, count=3, batch_size=1, steps=3)

    result = tasks.run_generation(job.pk, soft_time_limit_s=1e-9)

    assert result.status == JobStatus.FAILED
    assert "soft time limit" in result.error and "Retry" in result.error


def test_it_adds_the_images_and_as_many_real_ones_to_a_study_without_drawn_orders(
    real_pool, tiny_generator
):
    study = StudyFactory()
    job = new_job(
        tiny_generator, count=2, finding="pneumonia", study=study, keep_study_balance=True
    )

    tasks.generate_images(job_pk=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    cases = StudyCase.objects.filter(study=study).select_related("image")
    truths = sorted(case.image.truth for case in cases)
    assert truths == ["real", "real", "synthetic", "synthetic"]
    assert {case.image.finding for case in cases} == {"pneumonia"}
    assert "to keep the balance" in job.log_tail

    tasks.generate_images(job_pk=job.pk)  # again: the study does not grow
    assert StudyCase.objects.filter(study=study).count() == 4


def test_it_leaves_a_study_with_drawn_orders_alone_and_says_so(real_pool, tiny_generator):
    from readerstudy.models import ReadingSlot
    from readerstudy.services.studies import open_study

    study = StudyFactory()
    StudyCase.objects.create(study=study, image=real_pool[0])
    job = new_job(tiny_generator, count=1, study=study)
    AssignmentFactory(study=study, reader=UserFactory())
    open_study(study)
    assert ReadingSlot.objects.filter(assignment__study=study).exists()

    tasks.generate_images(job_pk=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert StudyCase.objects.filter(study=study).count() == 1
    assert "NOTE: readers' orders are already drawn" in job.log_tail


def test_it_trains_a_model_and_a_second_run_is_a_no_op(real_pool, settings):
    generator = GeneratorModel.objects.create(
        name="trained", kind=GeneratorKind.DDPM, modality="CXR", resolution=32
    )
    run = services.create_training_run(
        generator=generator,
        total_steps=2,
        params={"batch_size": 2, "preset": "tiny", "grid_steps": 1, "checkpoint_every": 1},
    )

    tasks.train_generator(run_pk=run.pk)

    run.refresh_from_db()
    generator.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.step == 2 and run.latest_loss is not None and run.device.startswith("cpu")
    assert generator.findings == FINDINGS and generator.config["preset"] == "tiny"
    assert generator.trained_steps == 2
    assert [c["step"] for c in generator.checkpoints] == [1, 2]
    assert all(c["weights_sha256"] for c in generator.checkpoints)
    assert generator.loss_curve and generator.loss_curve[-1][0] == 2
    assert generator.sample_grid and default_storage.exists(generator.sample_grid.name)

    tasks.train_generator(run_pk=run.pk)
    run.refresh_from_db()
    assert run.attempts == 1


def test_it_resumes_training_from_the_last_checkpoint(real_pool):
    generator = GeneratorModel.objects.create(
        name="resumed", kind=GeneratorKind.DDPM, modality="CXR", resolution=32
    )
    params = {"batch_size": 2, "preset": "tiny", "grid_steps": 0, "checkpoint_every": 2}
    first = services.create_training_run(generator=generator, total_steps=2, params=params)
    tasks.run_training(first.pk)
    second = services.create_training_run(generator=generator, total_steps=4, params=params)
    steps = []

    tasks.run_training(second.pk, on_progress=lambda done, total, loss: steps.append(done))

    second.refresh_from_db()
    assert second.status == JobStatus.SUCCEEDED and second.step == 4
    assert steps[0] == 3  # continued after the checkpoint of step 2, not from zero
    generator.refresh_from_db()
    assert [c["step"] for c in generator.checkpoints][-1] == 4


def test_it_cancels_training_keeping_a_checkpoint_of_the_step_it_stopped_at(real_pool, monkeypatch):
    generator = GeneratorModel.objects.create(
        name="stopped", kind=GeneratorKind.DDPM, modality="CXR", resolution=32
    )
    run = services.create_training_run(
        generator=generator,
        total_steps=50,
        params={"batch_size": 2, "preset": "tiny", "grid_steps": 0, "checkpoint_every": 100},
    )
    monkeypatch.setattr("generation.runner.CANCEL_CHECK_EVERY_S", 0)

    def cancel_at_three(done, total, loss):
        if done == 3:
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    tasks.run_training(run.pk, on_progress=cancel_at_three)

    run.refresh_from_db()
    generator.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.step == 3
    assert generator.trained_steps == 3


def test_it_fails_training_with_the_engines_reason(real_pool):
    generator = GeneratorModel.objects.create(
        name="oddsize", kind=GeneratorKind.DDPM, modality="CXR", resolution=48
    )
    run = services.create_training_run(
        generator=generator, total_steps=2, params={"preset": "tiny"}
    )

    tasks.train_generator(run_pk=run.pk)

    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "resolution must be a power of two" in run.error
    assert not generator.folder.exists()
