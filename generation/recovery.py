"""Queueing again the jobs that nobody will run: their worker died and their message is gone.

A worker killed mid-job leaves the job "running" with a heartbeat that stops. Normally the
broker hands the unacknowledged message out again after its visibility timeout and the next
worker takes the job over (`generation.runner.claim`). When the message is lost as well (Redis
flushed, failed over or restarted without persistence; the filesystem transport, whose messages
are gone once a worker read them), nothing would ever run the job again: this periodic sweep
(Celery beat, every GENERATION_SWEEP_INTERVAL_S) publishes a new message for it.

A job counts as lost when it is running with a stale heartbeat, or queued for longer than the
staleness window, and no message for it is waiting or held unacknowledged in the broker. A
second message for a job is harmless: claiming is a conditional update, so one of the two runs
and the other does nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from generation.models import GenerationJob, GenerationShard, JobStatus, TrainingRun
from spotthefake.celery import GPU_QUEUE, app, project_task

logger = logging.getLogger(__name__)

# (model, task name, keyword of the pk): how each kind of job is queued.
KINDS = (
    (GenerationJob, "generation.tasks.generate_images", "job_pk"),
    (TrainingRun, "generation.tasks.train_generator", "run_pk"),
    (GenerationShard, "generation.tasks.generate_shard", "shard_pk"),
)

MessageKey = tuple[str, int]


class BrokerUnreadable(Exception):
    """The broker's contents cannot be listed; the sweep then does nothing (it never guesses)."""


# ------------------------------------------------------------------------- broker contents
def _key_of(payload: dict) -> MessageKey | None:
    """(task name, job pk) of one Celery message (protocol 2), or None if it is no job's."""
    headers = payload.get("headers") or {}
    name = headers.get("task")
    body = payload.get("body")
    if not name or body is None:
        return None
    try:
        if (payload.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
    except (ValueError, TypeError):
        return None
    for _model, task, keyword in KINDS:
        if name == task and isinstance(kwargs, dict) and keyword in kwargs:
            return name, int(kwargs[keyword])
    return None


def _redis_payloads(channel, queue: str) -> Iterable[dict]:
    client = channel.client
    for priority in channel.priority_steps:
        for raw in client.lrange(channel._q_for_pri(queue, priority), 0, -1):
            yield json.loads(raw)
    # Delivered but not acknowledged yet: held by a live worker, or by a dead one until the
    # visibility timeout puts it back.
    for raw in client.hvals(channel.unacked_key):
        yield json.loads(raw)[0]


def _filesystem_payloads(channel, queue: str) -> Iterable[dict]:
    folder = channel.data_folder_in
    for name in os.listdir(folder):
        if name.endswith(f".{queue}.msg"):
            try:
                with open(os.path.join(folder, name), "rb") as handle:
                    yield json.loads(handle.read())
            except (OSError, ValueError):
                continue  # taken by a worker meanwhile


def _memory_payloads(channel, queue: str) -> Iterable[dict]:
    pending = channel.queues.get(queue)
    return list(pending.queue) if pending is not None else []


_READERS = {
    "redis": _redis_payloads,
    "filesystem": _filesystem_payloads,
    "memory": _memory_payloads,
}


def pending_messages(queue: str = GPU_QUEUE) -> set[MessageKey]:
    """The (task name, job pk) of every job message waiting in `queue` or held unacknowledged."""
    with app.connection_for_read() as connection:
        driver = connection.transport.driver_type
        reader = _READERS.get(driver)
        if reader is None:
            raise BrokerUnreadable(f"cannot list the messages of a {driver!r} broker")
        channel = connection.default_channel
        keys = {_key_of(payload) for payload in reader(channel, queue)}
    keys.discard(None)
    return keys


# ----------------------------------------------------------------------------------- sweep
def _candidates(model, now) -> list[int]:
    """Jobs nobody seems to hold: running and silent, or queued for a while."""
    stale = now - timedelta(seconds=settings.GENERATION_HEARTBEAT_STALE_S)
    silent = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    rows = model.objects.filter(
        Q(status=JobStatus.RUNNING) & silent
        | Q(status=JobStatus.QUEUED, created_at__lt=stale) & silent
    )
    if model is GenerationJob:  # a sharded job is run, and recovered, by its shards
        rows = rows.filter(shard_count__lte=1)
    return list(rows.values_list("pk", flat=True))


def _settle_finished_sharded_jobs() -> None:
    """Finish the sharded jobs whose shards have all finished but the job has not.

    A shard commits its own end and only then settles its job, so a worker killed in between
    leaves the job running with nothing left to run it: no shard is a candidate, and the job
    itself never is (it is run by its shards). Settling is idempotent (the job row is locked and
    a finished job is left alone), so two sweeps, or a sweep racing a shard, settle it once.
    """
    from generation import tasks  # no ML imports at module level

    open_statuses = (JobStatus.QUEUED, JobStatus.RUNNING)
    shards = GenerationShard.objects.filter(job=OuterRef("pk"))
    # Exists(shards): a job whose shards are not written yet is not "all finished"
    jobs = GenerationJob.objects.filter(
        Exists(shards),
        ~Exists(shards.filter(status__in=open_statuses)),
        status__in=open_statuses,
        shard_count__gt=1,
    ).values_list("pk", flat=True)
    for pk in list(jobs):
        tasks.settle_sharded_job(pk)
        logger.warning("sharded generation job #%s had all shards finished; settled it", pk)


def _task(name: str):
    from generation import tasks  # registers the tasks; no ML imports at module level

    return {
        "generation.tasks.generate_images": tasks.generate_images,
        "generation.tasks.train_generator": tasks.train_generator,
        "generation.tasks.generate_shard": tasks.generate_shard,
    }[name]


def sweep() -> list[tuple[str, int]]:
    """Publish a message for every lost job; returns [(model name, pk)] of those queued again."""
    now = timezone.now()
    # The database first, the broker second: a job queued after the query is no candidate, and
    # one queued before it has had its message published on commit by now.
    candidates = [(kind, pk) for kind in KINDS for pk in _candidates(kind[0], now)]
    _settle_finished_sharded_jobs()
    if not candidates:
        return []
    pending = pending_messages()
    requeued = []
    for (model, task, keyword), pk in candidates:
        if (task, pk) in pending:
            continue
        if pk not in _candidates(model, timezone.now()):
            continue  # claimed or finished while we looked
        _task(task).apply_async(kwargs={keyword: pk})
        logger.warning(
            "%s #%s had no live worker and no message in the queue; queued it again",
            model.__name__,
            pk,
        )
        requeued.append((model.__name__, pk))
    return requeued


@project_task(ignore_result=True)
def recover_lost_jobs() -> None:
    """Periodic (Celery beat): queue again the jobs whose worker died and whose message is gone.

    Safe to run twice, and by two beats at once: a job queued twice runs once (claiming is a
    conditional update); the second message finds it held or finished and does nothing.
    """
    try:
        sweep()
    except BrokerUnreadable as error:
        logger.error("job recovery sweep skipped: %s", error)
