"""Celery tasks that train generators and generate images, on the GPU queue.

The tasks are thin: they call `run_training` / `run_generation`, which the management commands
`train_model` and `generate_images` call too (synchronously, without a broker). Both are safe to
run twice: see `generation.runner` for how a job is claimed and held.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from generation import storage as model_storage
from generation.backends import BACKENDS, JobError, Stopped, backend_for
from generation.backends.base import GenerationSession, TrainingOutcome, TrainingSession
from generation.datasets import DatasetError
from generation.models import (
    FINISHED,
    GeneratedImage,
    GenerationJob,
    GenerationShard,
    GeneratorModel,
    JobStatus,
    TrainingRun,
)
from generation.pool import DuplicateImageError, store_generated_image
from generation.runner import LOG_TAIL_CHARS, JobLost, JobRunner, claim, default_worker_name
from generation.signals import generation_succeeded
from readerstudy.services.studies import Balance, ImagesAdded, add_images
from spotthefake.celery import GPU_QUEUE, project_task

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, float | None], None]

MAX_LOSS_POINTS = 2000


try:  # only raised by Celery's prefork pool, which enforces time limits with signals
    from celery.exceptions import SoftTimeLimitExceeded
except ImportError:  # pragma: no cover
    SoftTimeLimitExceeded = None


# ------------------------------------------------------------------------------ devices
def _device_setting() -> str | None:
    return settings.GENERATION_DEVICE or None


def describe_device(device: str | None = None) -> str:
    """'cuda:0 (NVIDIA H100, bfloat16)' / 'cpu (float32)': what the admin shows."""
    from generation.engine.devices import describe_device as describe

    return describe(device)


def _error_text(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


def _engine_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the researcher (bad input, bad folder, API errors)."""
    kinds: tuple[type[BaseException], ...] = ()
    for kind in BACKENDS:
        kinds += backend_for(kind).engine_errors()
    return (*kinds, JobError, DatasetError, DuplicateImageError, ValueError, OSError)


# ============================================================================== training
def _read_loss_curve(path: Path) -> list[list[float]]:
    if not path.is_file():
        return []
    points = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            points.append([int(row["step"]), float(row["loss"])])
        except (ValueError, KeyError, TypeError):
            continue
    if len(points) > MAX_LOSS_POINTS:
        stride = -(-len(points) // MAX_LOSS_POINTS)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return points


def _checkpoint_entries(generator: GeneratorModel) -> list[dict]:
    """[{step, path, weights_sha256}] of the complete checkpoints in the local model folder."""
    entries = backend_for(generator.kind).checkpoint_entries(generator.folder)
    entries.sort(key=lambda e: e["step"])
    return entries


def record_checkpoints(generator: GeneratorModel, runner: JobRunner | None = None) -> None:
    """Copy what the model folder says (checkpoints, loss curve, sample grid) into the model row,
    and share the newest checkpoint through the media storage when configured."""
    entries = _checkpoint_entries(generator)
    known = {e["step"]: e for e in generator.checkpoints or []}
    for entry in entries:
        entry["saved_at"] = (
            known.get(entry["step"], {}).get("saved_at") or timezone.now().isoformat()
        )
    newest = entries[-1] if entries else None
    is_new = newest is not None and newest["step"] not in known
    if newest is not None and settings.GENERATION_SHARE_MODELS:
        files = known.get(newest["step"], {}).get("files", [])
        backend = backend_for(generator.kind)
        dirs = [newest["path"]]
        # e.g. the final LoRA export, written after the last checkpoint
        dirs += [d for d in backend.shared_folders if (generator.folder / d).is_dir()]
        if not files or not all(any(f.startswith(d + "/") for f in files) for d in dirs):
            files = model_storage.publish(generator, *dirs)
        newest["files"] = files
    log_name = backend_for(generator.kind).loss_log_name
    generator.checkpoints = entries
    generator.trained_steps = newest["step"] if newest else 0
    generator.loss_curve = _read_loss_curve(generator.folder / log_name)
    fields = ["checkpoints", "trained_steps", "loss_curve", "updated_at"]
    grid = generator.folder / newest["path"] / "samples.png" if newest else None
    if is_new and grid is not None and grid.is_file():
        old = generator.sample_grid.name if generator.sample_grid else ""
        generator.sample_grid.save("samples.png", ContentFile(grid.read_bytes()), save=False)
        fields.append("sample_grid")
        if old:
            generator.sample_grid.storage.delete(old)
    generator.save(update_fields=fields)
    if is_new and runner is not None:
        runner.log(f"checkpoint at step {newest['step']} saved")


def run_training(
    run_pk: int,
    *,
    token: str | None = None,
    worker: str | None = None,
    heartbeat: bool = True,
    soft_time_limit_s: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainingRun | None:
    """Run (or resume) training run `run_pk`; returns the run as it ended, or None if this call
    did not get to run it (finished already, or held by a live worker).

    Pre: the run exists; its generator is ddpm or stable-diffusion; the pool has real images of
    the generator's modality and findings. Post: the run is succeeded (the model folder holds a
    checkpoint at `total_steps`), cancelled (the last checkpoint is kept, including one of the
    step it stopped at), or failed with a reason; the generator row lists the checkpoints, the
    loss curve and the latest sample grid. Running it again resumes from the latest checkpoint.
    """
    token = token or f"local-{uuid.uuid4().hex}"
    run = claim(TrainingRun, run_pk, token, worker=worker or default_worker_name())
    if run is None:
        return None
    with JobRunner(
        run,
        token,
        heartbeat=heartbeat,
        soft_time_limit_s=soft_time_limit_s,
        on_progress=on_progress,
    ) as runner:
        try:
            _train(run, runner)
        except JobLost:
            logger.info("training run #%s was taken over or ended elsewhere", run_pk)
        except Exception as error:  # noqa: BLE001 - every failure must end up on the row
            _fail(runner, error, kept=_training_kept(run))
    run.refresh_from_db()
    return run


def _training_kept(run: TrainingRun) -> str:
    generator = GeneratorModel.objects.get(pk=run.generator_id)
    return (
        f"The last checkpoint (step {generator.trained_steps}) is kept; Retry resumes from it."
        if generator.trained_steps
        else "No checkpoint was written."
    )


def _fail(runner: JobRunner, error: BaseException, *, kept: str) -> None:
    if SoftTimeLimitExceeded is not None and isinstance(error, SoftTimeLimitExceeded):
        message = runner.time_limit_message(kept)
    elif isinstance(error, _engine_errors()):
        message = _error_text(error)
    else:
        logger.exception("job failed unexpectedly")
        message = f"Unexpected error ({type(error).__name__}): {error}. {kept}"
    try:
        runner.log(f"failed: {message}", flush=False)
        runner.finish(JobStatus.FAILED, error=message)
    except JobLost:
        pass


def _train(run: TrainingRun, runner: JobRunner) -> None:
    generator = run.generator
    backend = backend_for(generator.kind)
    params = {k: v for k, v in (run.params or {}).items() if v not in (None, "")}
    backend.check_params(params)
    if not backend.trainable:
        raise JobError(backend.untrainable_reason)
    device = params.get("device") or _device_setting()
    runner.write(device=backend.describe_device(device)[:100])
    runner.log(
        f"attempt {run.attempts} on {run.worker}, device {runner.job.device}; "
        f"training {generator.name} ({generator.kind}) to step {run.total_steps}"
    )
    if settings.GENERATION_SHARE_MODELS:
        model_storage.fetch(generator, for_training=True)

    def on_step(step: int, total: int, loss: float, checkpoint_every: int) -> None:
        if step % max(1, checkpoint_every) == 0 or step == total:
            record_checkpoints(generator, runner)
        runner.progress(step, total, loss=loss, step=step, latest_loss=loss)

    session = TrainingSession(run, generator, params, device, runner, on_step)
    outcome = backend.train(session)
    record_checkpoints(generator, runner)
    _finish_training(runner, outcome)


def _finish_training(runner: JobRunner, outcome: TrainingOutcome) -> None:
    """Succeeded, or why it stopped: lost to another worker, out of time, or cancelled."""
    step = outcome.step
    fields = {"step": step}
    if outcome.last_loss is not None:
        fields["latest_loss"] = outcome.last_loss
    if not outcome.stopped:
        runner.log(f"finished at step {step}", flush=False)
        runner.finish(JobStatus.SUCCEEDED, **fields)
    elif runner.stop_reason == "lost":
        raise JobLost()
    elif runner.stop_reason == "time":
        message = runner.time_limit_message(
            f"A checkpoint of step {step} is kept; Retry resumes from it."
        )
        runner.log(message, flush=False)
        runner.finish(JobStatus.FAILED, error=message, **fields)
    else:
        runner.log(f"cancelled at step {step}; a checkpoint of that step is kept", flush=False)
        runner.finish(JobStatus.CANCELLED, **fields)


# ============================================================================ generation
def _prompt_for(job: GenerationJob) -> str:
    from generation.engine.prompts import build_prompt

    if job.prompt:
        return job.prompt
    age_group = (job.generator.config or {}).get("age_group")
    return build_prompt(job.generator.modality, job.finding, age_group)


def run_generation(
    job_pk: int,
    *,
    token: str | None = None,
    worker: str | None = None,
    heartbeat: bool = True,
    soft_time_limit_s: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> GenerationJob | None:
    """Make the missing images of generation job `job_pk`; returns the job as it ended, or None
    if this call did not get to run it (finished already, or held by a live worker).

    Pre: the job exists and its generator can sample (a trained ddpm folder, a Stable Diffusion
    folder, or a configured image API). Post: succeeded with exactly `count` images, image k in
    slot (job, k) from seed `seed + k`, each in the pool as synthetic with its provenance (and,
    with a study whose orders are not drawn yet, added to it as cases); or cancelled / failed with
    the images made so far kept. Running it again makes only the missing images.
    """
    token = token or f"local-{uuid.uuid4().hex}"
    job = claim(GenerationJob, job_pk, token, worker=worker or default_worker_name())
    if job is None:
        return None
    with JobRunner(
        job,
        token,
        heartbeat=heartbeat,
        soft_time_limit_s=soft_time_limit_s,
        on_progress=on_progress,
    ) as runner:
        try:
            _generate(job, runner)
        except JobLost:
            logger.info("generation job #%s was taken over or ended elsewhere", job_pk)
        except Exception as error:  # noqa: BLE001 - every failure must end up on the row
            done = job.outputs.count()
            _fail(
                runner,
                error,
                kept=(
                    f"The {done} image(s) made so far are kept; Retry makes only the missing ones."
                ),
            )
    job.refresh_from_db()
    return job


def _generate(job: GenerationJob, runner: JobRunner) -> None:
    generator = job.generator
    made = set(job.outputs.values_list("index", flat=True))
    missing = [k for k in range(job.count) if k not in made]
    runner.write(done_count=len(made))
    if not missing:
        runner.log(f"all {job.count} images were already made")
        _succeed(job, runner)
        return
    backend = backend_for(generator.kind)
    device = _device_setting()
    runner.write(device=backend.describe_device(device)[:100])
    runner.log(
        f"attempt {job.attempts} on {job.worker}, device {runner.job.device}: making "
        f"{len(missing)} of {job.count} images with {generator.name} ({generator.kind})"
    )

    def store(position: int, image) -> None:
        index = missing[position]
        store_generated_image(job, index, image.array, image.provenance)
        done = job.outputs.count()
        runner.progress(done, job.count, done_count=done)

    _run_backend(job, backend, device, [job.seed_for(k) for k in missing], store, runner)
    _finish_generation(job, runner)


def _finish_generation(job: GenerationJob, runner: JobRunner) -> None:
    """Succeeded with every image, or why it stopped: lost, out of time, or cancelled."""
    done = job.outputs.count()
    if runner.stop_reason == "lost":
        raise JobLost()
    if runner.stop_reason is None or done >= job.count:
        if done < job.count:
            raise JobError(f"the generator returned {done} of {job.count} images without an error")
        runner.progress(done, job.count, done_count=done, force=True)
        _succeed(job, runner)
    elif runner.stop_reason == "time":
        message = runner.time_limit_message(
            f"The {done} image(s) made so far are kept; Retry makes only the missing ones."
        )
        runner.log(message, flush=False)
        runner.finish(JobStatus.FAILED, error=message, done_count=done)
    else:
        runner.log(f"cancelled with {done} of {job.count} images made; they are kept", flush=False)
        runner.finish(JobStatus.CANCELLED, done_count=done)


def _succeed(job: GenerationJob, runner: JobRunner) -> None:
    """Mark the job succeeded and, in the same transaction, add its images to its study."""
    with transaction.atomic():
        if job.study_id is not None:
            _add_to_study(job, runner)
        runner.log(f"done: {job.count} images in the pool", flush=False)
        runner.finish(JobStatus.SUCCEEDED, done_count=job.count)
        transaction.on_commit(partial(_announce_success, job.pk))


def _announce_success(job_pk: int) -> None:
    # Robust: the job is already committed as succeeded, so what other apps start on it
    # (the evaluation app's quality evaluation) is logged when it fails, never raised.
    generation_succeeded.send_robust(sender=GenerationJob, job_pk=job_pk)


def _add_to_study(job: GenerationJob, runner: JobRunner) -> None:
    runner.log(_hand_to_study(job), flush=False)


def _hand_to_study(job: GenerationJob) -> str:
    """Hand the job's images to the reader study (its service decides what may be added);
    returns the log line saying what happened."""
    image_ids = list(
        GeneratedImage.objects.filter(job=job).order_by("index").values_list("image_id", flat=True)
    )
    balance = (
        Balance(job.generator.modality, job.finding, tuple(job.balance_sources or ()))
        if job.keep_study_balance
        else None
    )
    return _study_note(job, add_images(job.study_id, image_ids, balance=balance))


def _study_note(job: GenerationJob, outcome: ImagesAdded) -> str:
    if outcome.study_title is None:
        return "the study was deleted meanwhile; images not added to any study"
    if outcome.frozen:
        return (
            f"NOTE: readers' orders are already drawn for study {outcome.study_title!r}, so its "
            f"cases are frozen: the images were NOT added to it (they are in the pool)."
        )
    note = f"added {outcome.added} synthetic image(s) to study {outcome.study_title!r}"
    if job.keep_study_balance and outcome.added:
        note += f" and {outcome.balancing} real one(s) to keep the balance"
        if outcome.balancing < outcome.added:
            sources = job.balance_sources or ()
            note += (
                f" (NOTE: only {outcome.balancing} matching real {job.generator.modality} "
                f"image(s) {'with finding ' + job.finding + ' ' if job.finding else ''}"
                f"{'from ' + ' or '.join(sources) + ' ' if sources else ''}were left "
                f"in the pool, so the study is not balanced)"
            )
    return note


# ======================================================================= sharded generation
def run_shard(
    shard_pk: int,
    *,
    token: str | None = None,
    worker: str | None = None,
    heartbeat: bool = True,
    soft_time_limit_s: float | None = None,
) -> GenerationShard | None:
    """Make the missing images start..stop-1 of one shard of a sharded generation job, then
    settle the job (it succeeds with its last shard). Claimed, beaten, cancelled and recovered
    like a job of its own; safe to run twice (only missing slots are made)."""
    token = token or f"local-{uuid.uuid4().hex}"
    shard = claim(GenerationShard, shard_pk, token, worker=worker or default_worker_name())
    if shard is None:
        return None
    with JobRunner(
        shard, token, heartbeat=heartbeat, soft_time_limit_s=soft_time_limit_s
    ) as runner:
        try:
            _generate_shard(shard, runner)
        except JobLost:
            logger.info("generation shard #%s was taken over or ended elsewhere", shard_pk)
        except Exception as error:  # noqa: BLE001 - every failure must end up on the row
            _fail(runner, error, kept="The images made so far are kept; Retry makes the rest.")
    settle_sharded_job(shard.job_id)
    shard.refresh_from_db()
    return shard


def _generate_shard(shard: GenerationShard, runner: JobRunner) -> None:
    job = shard.job
    made = set(job.outputs.filter(index__gte=shard.start, index__lt=shard.stop).values_list(
        "index", flat=True))  # fmt: skip
    missing = [k for k in range(shard.start, shard.stop) if k not in made]
    size = shard.stop - shard.start
    backend = backend_for(job.generator.kind)
    device = _device_setting()
    runner.write(device=backend.describe_device(device)[:100])
    GenerationJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), attempt_started_at=timezone.now()
    )
    runner.log(
        f"shard {shard.number}: making {len(missing)} of images {shard.start}-{shard.stop - 1}"
    )

    def store(position: int, image) -> None:
        store_generated_image(job, missing[position], image.array, image.provenance)
        # the backend stores the missing slots in order, each once: no need to count rows
        runner.progress(len(made) + position + 1, size)
        GenerationJob.objects.filter(pk=job.pk).update(
            done_count=job.outputs.count(), heartbeat_at=timezone.now()
        )

    if missing:
        _run_backend(job, backend, device, [job.seed_for(k) for k in missing], store, runner)
    done = job.outputs.filter(index__gte=shard.start, index__lt=shard.stop).count()
    if runner.stop_reason == "lost":
        raise JobLost()
    if done >= size:
        runner.finish(JobStatus.SUCCEEDED)
    elif runner.stop_reason == "time":
        runner.finish(JobStatus.FAILED, error=runner.time_limit_message("Retry makes the rest."))
    elif runner.stop_reason is not None:
        runner.finish(JobStatus.CANCELLED)
    else:
        raise JobError(f"the generator returned {done} of {size} images without an error")


def _run_backend(job, backend, device, seeds: list[int], store, runner: JobRunner) -> None:
    session = GenerationSession(
        job=job,
        generator=job.generator,
        seeds=seeds,
        device=device,
        store=store,
        cancel=runner.should_stop,
        prompt=_prompt_for(job) if backend.takes_prompt else "",
    )
    if settings.GENERATION_SHARE_MODELS and backend.runs_locally:
        model_storage.fetch(job.generator)
    try:
        backend.generate(session)
    except Stopped:
        pass


def settle_sharded_job(job_pk: int) -> None:
    """Finish a sharded job once all its shards have: succeeded with every image, failed (a
    shard's reason) or cancelled. The job row is locked (select_for_update), so of shards that
    end at once exactly one finishes the job and announces it."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().filter(pk=job_pk).first()
        if job is None or job.status in FINISHED:
            return
        shards = list(job.shards.order_by("number"))
        done = job.outputs.count()
        if any(s.status not in FINISHED for s in shards):
            GenerationJob.objects.filter(pk=job_pk).update(done_count=done)
            return
        failed = [s for s in shards if s.status == JobStatus.FAILED]
        fields = {"done_count": done, "finished_at": timezone.now(), "heartbeat_at": timezone.now()}
        if done >= job.count:
            log = _sharded_success(job)
            GenerationJob.objects.filter(pk=job_pk).update(
                status=JobStatus.SUCCEEDED, log_tail=log[-LOG_TAIL_CHARS:], **fields
            )
            transaction.on_commit(partial(_announce_success, job.pk))
        elif failed:
            error = "; ".join(f"shard {s.number}: {s.error}" for s in failed)
            GenerationJob.objects.filter(pk=job_pk).update(
                status=JobStatus.FAILED, error=error[:10000], **fields
            )
        else:
            GenerationJob.objects.filter(pk=job_pk).update(status=JobStatus.CANCELLED, **fields)


def _sharded_success(job: GenerationJob) -> str:
    lines = [line for line in (job.log_tail or "").splitlines() if line]
    lines.append(f"done: {job.count} images in the pool, made by {job.shard_count} shards")
    if job.study_id is not None:
        lines.append(_hand_to_study(job))
    return "\n".join(lines)


# ================================================================================ tasks
def _celery_worker_name(task) -> str:
    hostname = getattr(task.request, "hostname", None)
    return f"{hostname} (pid {__import__('os').getpid()})" if hostname else default_worker_name()


_GPU_LIMITS = {
    "soft_time_limit": settings.GPU_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.GPU_TASK_HARD_TIME_LIMIT,
}


@project_task(queue=GPU_QUEUE, bind=True, **_GPU_LIMITS)
def train_generator(self, *, run_pk: int) -> None:
    """Train (or resume) the training run `run_pk` on a GPU worker.

    Pre: a TrainingRun with this pk (normally queued; enqueued on commit by
    `services.start_training` / `services.retry`). Post: the run is succeeded, cancelled or failed
    (with a reason), the model folder holds its checkpoints and the generator row mirrors them.
    Safe to run twice: a finished run is left alone, a run held by a live worker is left alone,
    and a run whose worker died resumes from its latest checkpoint.
    """
    run_training(
        run_pk,
        token=self.request.id or f"celery-{uuid.uuid4().hex}",
        worker=_celery_worker_name(self),
        soft_time_limit_s=settings.GPU_TASK_SOFT_TIME_LIMIT,
    )


@project_task(queue=GPU_QUEUE, bind=True, **_GPU_LIMITS)
def generate_images(self, *, job_pk: int) -> None:
    """Make the images of generation job `job_pk` on a GPU worker.

    Pre: a GenerationJob with this pk (normally queued; enqueued on commit by
    `services.start_generation` / `services.retry`). Post: succeeded with exactly `count` images
    in the pool (and in the study, if asked and still allowed), or cancelled / failed with the
    images made so far kept. Safe to run twice: only the missing (job, k) slots are made, with
    seed `seed + k`; a finished job is left alone.
    """
    run_generation(
        job_pk,
        token=self.request.id or f"celery-{uuid.uuid4().hex}",
        worker=_celery_worker_name(self),
        soft_time_limit_s=settings.GPU_TASK_SOFT_TIME_LIMIT,
    )


@project_task(queue=GPU_QUEUE, bind=True, **_GPU_LIMITS)
def generate_shard(self, *, shard_pk: int) -> None:
    """Make the images of one shard of a sharded generation job on a GPU worker.

    Pre: a GenerationShard with this pk (queued by `services.start_generation` with shards > 1,
    or `services.retry`). Post: the shard is succeeded, cancelled or failed with its images kept;
    the job is finished when its last shard is. Safe to run twice: only missing slots are made,
    and a finished shard is left alone.
    """
    run_shard(
        shard_pk,
        token=self.request.id or f"celery-{uuid.uuid4().hex}",
        worker=_celery_worker_name(self),
        soft_time_limit_s=settings.GPU_TASK_SOFT_TIME_LIMIT,
    )
