"""What the admin (and anything else with a web request) does with training runs and generation jobs.

Launching never runs any model code: it checks that the broker is reachable, writes the job row
and enqueues the task once the transaction commits. Everything heavy happens in
`generation.tasks` on a GPU worker.

Public API (kept stable for the admin views):

* `BrokerUnavailable` – raised by `start_*` / `retry` when the task queue cannot be reached;
  nothing was created or changed. ``str()`` is a message for the researcher.
* `InvalidJob` (a ValueError) – the request itself is wrong (unknown finding, a prompt for a
  class-conditional model, ...); nothing was created.
* `start_training`, `start_generation`, `request_cancel`, `retry`, `progress`.
"""

from __future__ import annotations

import logging
import math
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from generation.backends import JobError, backend_for
from generation.models import (
    FINISHED,
    GenerationJob,
    GenerationShard,
    GeneratorModel,
    JobStatus,
    Scheduler,
    TrainingRun,
)
from pool.models import Image, Truth

logger = logging.getLogger(__name__)

Job = TrainingRun | GenerationJob


class BrokerUnavailable(Exception):
    """The task queue cannot be reached; the message says so in words a researcher can act on."""


class InvalidJob(ValueError):
    """The job asked for cannot be run as given; the message says why. Nothing was created."""


# ------------------------------------------------------------------------------------ broker
def broker_description(url: str | None = None) -> str:
    """'Redis at host:port' (never the password), or a description of the embedded transport."""
    from spotthefake.celery import app

    url = url or app.conf.broker_url or ""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss"):
        try:
            host = parts.hostname or "localhost"
            port = parts.port or 6379
        except ValueError:
            return "Redis"
        return f"Redis at {host}:{port}"
    if scheme == "filesystem":
        return "the local file-system queue"
    if scheme == "memory":
        return "the in-memory queue"
    return f"the broker ({scheme or 'unknown'})"


def check_broker(timeout: float | None = None) -> None:
    """Raise BrokerUnavailable unless the broker accepts a connection within `timeout` seconds."""
    from spotthefake.celery import app

    timeout = settings.GENERATION_BROKER_CHECK_TIMEOUT_S if timeout is None else timeout
    try:
        with app.connection_for_write(connect_timeout=timeout) as connection:
            connection.ensure_connection(
                max_retries=1,
                interval_start=0,
                interval_step=0.2,
                interval_max=0.2,
                timeout=timeout,
            )
    except Exception as error:  # noqa: BLE001 - kombu raises many kinds of connection errors
        logger.warning("broker check failed: %s", error)
        raise BrokerUnavailable(
            f"The task queue ({broker_description()}) is unreachable: nothing was created. "
            f"Try again when it is back."
        ) from None


def _enqueue(task, job: Job, kwargs: dict) -> None:
    """Publish after commit; if that fails anyway, the job says so instead of waiting forever."""
    model = type(job)
    pk = job.pk

    def publish() -> None:
        try:
            task.apply_async(
                kwargs=kwargs,
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0,
                    "interval_step": 0.5,
                    "interval_max": 1,
                },
            )
        except Exception as error:
            logger.exception("could not enqueue %s #%s", model.__name__, pk)
            model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(
                status=JobStatus.FAILED,
                finished_at=timezone.now(),
                error=(
                    f"The job could not be handed to the task queue ({broker_description()}): "
                    f"{error}. Nothing ran. Press Retry when the queue is back."
                ),
            )

    transaction.on_commit(publish)


# ------------------------------------------------------------------------------ validation
def default_guidance(generator: GeneratorModel) -> float:
    """The guidance scale a job of this model gets when none is asked for (its kind's)."""
    return backend_for(generator.kind).default_guidance


def _check_generation(
    generator,
    *,
    count,
    finding,
    prompt,
    negative_prompt,
    scheduler,
    steps,
    guidance,
    seed,
    batch_size,
) -> str:
    """Validate a generation request; returns the finding to store (canonical spelling)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidJob(f"count must be a positive whole number, not {count!r}")
    if count > settings.GENERATION_MAX_COUNT:
        raise InvalidJob(
            f"count {count} is over the limit of {settings.GENERATION_MAX_COUNT} images per job "
            f"(GENERATION_MAX_COUNT); split it into several jobs"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidJob(f"steps must be a positive whole number, not {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidJob(f"batch size must be a positive whole number, not {batch_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0 or seed + count > 2**63 - 1:
        raise InvalidJob(f"seed must be a whole number from 0 to 2**63 - 1 - count, not {seed!r}")
    try:
        guidance = float(guidance)
    except (TypeError, ValueError):
        raise InvalidJob(f"guidance must be a number, not {guidance!r}") from None
    if not math.isfinite(guidance) or guidance < 0:
        raise InvalidJob(f"guidance must be a finite number >= 0, not {guidance!r}")
    if scheduler not in Scheduler.values:
        raise InvalidJob(
            f"unknown scheduler {scheduler!r}; choose one of {', '.join(Scheduler.values)}"
        )
    try:
        return backend_for(generator.kind).check_sampling_request(
            generator,
            finding=(finding or "").strip(),
            prompt=(prompt or "").strip(),
            negative_prompt=(negative_prompt or "").strip(),
        )
    except JobError as error:
        raise InvalidJob(str(error)) from None


# ------------------------------------------------------------------------------------ start
def _check_training(generator: GeneratorModel, total_steps: int, params: dict) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise InvalidJob(f"steps must be a positive whole number, not {total_steps!r}")
    from generation.datasets import DatasetError, check_training_set

    backend = backend_for(generator.kind)
    if not backend.trainable:
        raise InvalidJob(f"{backend.untrainable_reason} here")
    if backend.needs_base_checkpoint and not generator.base_checkpoint:
        raise InvalidJob(
            f"model {generator.name!r} needs a base checkpoint folder to fine-tune from"
        )
    try:
        backend.check_params(params or {})
    except JobError as error:
        raise InvalidJob(str(error)) from None

    try:
        check_training_set(generator)
    except DatasetError as error:
        raise InvalidJob(str(error)) from None
    busy = TrainingRun.objects.filter(
        generator=generator, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    ).first()
    if busy is not None:
        raise InvalidJob(
            f"model {generator.name!r} already has a training run in progress (#{busy.pk}, "
            f"{busy.get_status_display().lower()}); cancel it or wait for it to finish"
        )


def create_training_run(
    *, generator: GeneratorModel, total_steps: int, params: dict, user=None
) -> TrainingRun:
    """Validate and create a queued training run without enqueueing it (commands run it
    themselves; `start_training` enqueues it)."""
    _check_training(generator, total_steps, params)
    return TrainingRun.objects.create(
        generator=generator,
        total_steps=total_steps,
        params=dict(params or {}),
        created_by=user if getattr(user, "pk", None) else None,
    )


def start_training(
    *, generator: GeneratorModel, total_steps: int, params: dict, user
) -> TrainingRun:
    """Create a queued training run for `generator` and enqueue it once the transaction commits.

    `total_steps` is the step the model should reach (a model trained to 1000 steps and asked
    for 1500 trains 500 more, resuming from its last checkpoint). `params` are the training
    settings (batch_size, lr, preset, checkpoint_every, lora_rank, ...; see
    `generation.tasks.training_config_from`). Raises BrokerUnavailable (nothing created) when
    the queue is down and InvalidJob for a request that cannot run.
    """
    from generation import tasks

    _check_training(generator, total_steps, params)
    check_broker()
    with transaction.atomic():
        run = create_training_run(
            generator=generator, total_steps=total_steps, params=params, user=user
        )
        _enqueue(tasks.train_generator, run, {"run_pk": run.pk})
    return run


def create_generation_job(
    *,
    generator: GeneratorModel,
    count: int,
    finding: str = "",
    prompt: str = "",
    negative_prompt: str = "",
    scheduler: str = "ddim",
    steps: int = 50,
    guidance: float | None = None,
    seed: int = 0,
    batch_size: int = 8,
    study=None,
    keep_study_balance: bool = False,
    balance_sources: list[str] | tuple[str, ...] = (),
    user=None,
) -> GenerationJob:
    """Validate and create a queued generation job without enqueueing it (commands run it
    themselves; `start_generation` enqueues it). Raises InvalidJob. `guidance` None: the
    model kind's default (`Backend.default_guidance`)."""
    guidance = default_guidance(generator) if guidance is None else guidance
    finding = _check_generation(
        generator,
        count=count,
        finding=finding,
        prompt=prompt,
        negative_prompt=negative_prompt,
        scheduler=scheduler,
        steps=steps,
        guidance=guidance,
        seed=seed,
        batch_size=batch_size,
    )
    if keep_study_balance and study is None:
        raise InvalidJob("keeping the study balance needs a study")
    sources = _balance_sources(balance_sources if keep_study_balance else ())
    if study is not None and study.has_drawn_orders():
        raise InvalidJob(
            f"readers' orders are already drawn for study {study}: its cases are frozen. "
            f"Generate without a study, or pick a study whose orders are not drawn yet."
        )
    return GenerationJob.objects.create(
        generator=generator,
        count=count,
        finding=finding,
        prompt=(prompt or "").strip(),
        negative_prompt=(negative_prompt or "").strip(),
        scheduler=scheduler,
        steps=steps,
        guidance=float(guidance),
        seed=seed,
        batch_size=batch_size,
        study=study,
        keep_study_balance=bool(keep_study_balance and study is not None),
        balance_sources=sources,
        created_by=user if getattr(user, "pk", None) else None,
    )


def _balance_sources(sources) -> list[str]:
    """The real sources (datasets) balancing images may come from: each must be in the pool."""
    wanted = sorted({str(source).strip() for source in sources or () if str(source).strip()})
    # one row per source, not per image (order_by() so no ordering column defeats DISTINCT)
    known = set(
        Image.objects.filter(truth=Truth.REAL, source__in=wanted)
        .order_by()
        .values_list("source", flat=True)
        .distinct()
    )
    unknown = [source for source in wanted if source not in known]
    if unknown:
        raise InvalidJob(
            f"no real images from {', '.join(repr(s) for s in unknown)} in the pool to keep "
            f"the balance with"
        )
    return wanted


# What _check_generation validates of a generation request.
_CHECKED_FIELDS = (
    "count", "finding", "prompt", "negative_prompt", "scheduler", "steps", "guidance", "seed",
    "batch_size",
)


def start_generation(
    *,
    generator: GeneratorModel,
    count: int,
    finding: str = "",
    prompt: str = "",
    negative_prompt: str = "",
    scheduler: str = "ddim",
    steps: int = 50,
    guidance: float | None = None,
    seed: int = 0,
    batch_size: int = 8,
    study=None,
    keep_study_balance: bool = False,
    balance_sources: list[str] | tuple[str, ...] = (),
    user,
    shards: int = 1,
) -> GenerationJob:
    """Create a queued generation job of `count` images and enqueue it after commit (as
    `shards` seed-range tasks when > 1: N GPU workers then make it about N times faster).

    Image k of the job gets seed `seed + k` and the unique slot (job, k). With a `study`, the
    images are added to it as cases when the job succeeds (with `keep_study_balance`, as many
    real pool images of the same modality and finding too, only from `balance_sources` when
    given), as long as no reader's order has been drawn yet. Raises InvalidJob (nothing
    created) for a request that cannot run, and BrokerUnavailable (nothing created) when the
    task queue is unreachable. `guidance` None: the model kind's default.
    """
    guidance = default_guidance(generator) if guidance is None else guidance
    fields = {
        "generator": generator,
        "count": count,
        "finding": finding,
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "scheduler": scheduler,
        "steps": steps,
        "guidance": guidance,
        "seed": seed,
        "batch_size": batch_size,
        "study": study,
        "keep_study_balance": keep_study_balance,
        "balance_sources": balance_sources,
        "user": user,
    }
    _check_generation(generator, **{name: fields[name] for name in _CHECKED_FIELDS})
    if not 1 <= shards <= count:
        raise InvalidJob(f"shards must be between 1 and the number of images ({count})")
    check_broker()
    with transaction.atomic():
        job = create_generation_job(**fields)
        _enqueue_generation(job, shards)
    return job


def _enqueue_generation(job: GenerationJob, shards: int) -> None:
    from generation import tasks

    if shards == 1:
        _enqueue(tasks.generate_images, job, {"job_pk": job.pk})
        return
    _enqueue_shards(create_shards(job, shards))


def _enqueue_shards(shards) -> None:
    """Enqueue each shard's task once the transaction commits."""
    from generation import tasks

    for shard in shards:
        _enqueue(tasks.generate_shard, shard, {"shard_pk": shard.pk})


def create_shards(job: GenerationJob, shards: int) -> list[GenerationShard]:
    """Split images 0..count-1 into `shards` contiguous seed ranges of (nearly) equal size."""
    GenerationJob.objects.filter(pk=job.pk).update(shard_count=shards)
    job.shard_count = shards
    bounds = [job.count * i // shards for i in range(shards + 1)]
    return [
        GenerationShard.objects.create(
            job=job, number=i, start=bounds[i], stop=bounds[i + 1], created_by=job.created_by
        )
        for i in range(shards)
    ]


# ---------------------------------------------------------------------------- cancel, retry
def _heartbeat_is_stale(job: Job, now=None) -> bool:
    now = now or timezone.now()
    last = job.heartbeat_at or job.started_at
    if last is None:
        return True
    return (now - last).total_seconds() > settings.GENERATION_HEARTBEAT_STALE_S


def request_cancel(job: Job) -> None:
    """Ask a job to stop. Queued: cancelled at once. Running: the worker stops after the current
    step or batch, keeping what is finished. Running with no sign of life from its worker (stale
    heartbeat): cancelled at once. Finished: nothing happens."""
    if isinstance(job, GenerationJob) and job.is_sharded:
        _cancel_shards(job)
        return
    model = type(job)
    now = timezone.now()
    stale_before = now - timezone.timedelta(seconds=settings.GENERATION_HEARTBEAT_STALE_S)
    model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now
    )
    model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
    ).update(
        status=JobStatus.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        error="Cancelled; its worker had stopped reporting (it probably died).",
    )
    model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()


def _cancel_shards(job: GenerationJob) -> None:
    """Cancel each shard as a job of its own; the job ends when the last of them has."""
    from generation.tasks import settle_sharded_job

    GenerationJob.objects.filter(
        pk=job.pk, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
    ).update(cancel_requested=True)
    for shard in job.shards.all():
        request_cancel(shard)
    settle_sharded_job(job.pk)
    job.refresh_from_db()


def reopen(job: Job) -> None:
    """Failed or cancelled -> queued (without enqueueing); InvalidJob otherwise."""
    model = type(job)
    job.refresh_from_db()
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise InvalidJob(
            f"only a failed or cancelled job can be retried; this one is "
            f"{job.get_status_display().lower()}"
        )
    if isinstance(job, TrainingRun):
        busy = TrainingRun.objects.filter(
            generator_id=job.generator_id, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)
        ).exclude(pk=job.pk)
        if busy.exists():
            raise InvalidJob("this model already has another training run in progress")
    updated = model.objects.filter(
        pk=job.pk, status__in=(JobStatus.FAILED, JobStatus.CANCELLED)
    ).update(
        status=JobStatus.QUEUED,
        cancel_requested=False,
        error="",
        finished_at=None,
        task_id="",
    )
    if not updated:
        raise InvalidJob("the job changed state meanwhile; reload the page")
    job.refresh_from_db()


def retry(job: Job) -> None:
    """Queue a failed or cancelled job again. A generation job makes only the images still
    missing; a training run resumes from its last checkpoint. Raises InvalidJob for a job in
    another state and BrokerUnavailable (nothing changed) when the queue is down."""
    from generation import tasks

    job.refresh_from_db()
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise InvalidJob(
            f"only a failed or cancelled job can be retried; this one is "
            f"{job.get_status_display().lower()}"
        )
    check_broker()
    with transaction.atomic():
        reopen(job)
        if isinstance(job, TrainingRun):
            _enqueue(tasks.train_generator, job, {"run_pk": job.pk})
        elif job.is_sharded:
            shards = list(job.shards.exclude(status=JobStatus.SUCCEEDED))
            for shard in shards:
                reopen(shard)
            _enqueue_shards(shards)
        else:
            _enqueue(tasks.generate_images, job, {"job_pk": job.pk})


# -------------------------------------------------------------------------------- progress
def progress(job: Job) -> dict:
    """What the progress partial shows: status, done / total, percent, latest loss (training),
    estimated seconds left (None when unknown), and whether the job has ended."""
    job.refresh_from_db()
    if isinstance(job, TrainingRun):
        done, total = job.step, job.total_steps
        latest_loss = job.latest_loss
    else:
        done, total = job.outputs.count(), job.count
        latest_loss = None
    done = min(done, total) if total else done
    percent = round(100.0 * done / total, 1) if total else 0.0
    if job.status == JobStatus.SUCCEEDED:
        percent = 100.0
    eta_s = None
    if job.status == JobStatus.RUNNING and job.attempt_started_at and done < total:
        made = done - job.attempt_start_done
        elapsed = (timezone.now() - job.attempt_started_at).total_seconds()
        if made > 0 and elapsed > 0:
            eta_s = max(0, round(elapsed / made * (total - done)))
    stalled = job.status == JobStatus.RUNNING and _heartbeat_is_stale(job)
    return {
        "status": job.status,
        "status_display": job.get_status_display(),
        "done": done,
        "total": total,
        "percent": percent,
        "latest_loss": latest_loss,
        "eta_s": eta_s,
        "is_finished": job.status in FINISHED,
        "cancel_requested": job.cancel_requested,
        "stalled": stalled,
        "worker": job.worker,
        "device": job.device,
        "error": job.error,
    }
