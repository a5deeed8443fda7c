"""Holding a job while it runs: claiming it, the heartbeat, progress, cancel checks, the log.

Every write while a job runs is a conditional UPDATE on (pk, status=running, task_id=ours): a run
that lost its job (because it was presumed dead and the job was taken over, or cancelled from
the admin) can never overwrite the newer state.

Claiming (`claim`):

* queued -> running: ours.
* running with a stale heartbeat (its worker died): taken over.
* running with a fresh heartbeat and *our* task id: this is our own message redelivered after
  its worker died a moment ago; wait until the heartbeat goes stale, then take over (if it keeps
  beating, a live worker holds it and we leave it alone).
* running under another task id with a fresh heartbeat, or finished: a duplicate; do nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Self

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from generation import shutdown
from generation.models import GenerationJob, GenerationShard, JobStatus, TrainingRun

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 60
LOG_TAIL_CHARS = 8000
PROGRESS_EVERY_S = 1.0
CANCEL_CHECK_EVERY_S = 1.0


class JobLost(Exception):
    """The job is no longer ours (taken over, or ended from outside); stop without writing."""


def default_worker_name() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


def _stale_before(now):
    return now - timedelta(seconds=settings.GENERATION_HEARTBEAT_STALE_S)


def _done_so_far(job) -> int:
    if isinstance(job, TrainingRun):
        return job.step
    if isinstance(job, GenerationShard):
        return job.job.outputs.filter(index__gte=job.start, index__lt=job.stop).count()
    return job.outputs.count()


def claim(model, pk: int, token: str, *, worker: str, wait: bool = True):
    """Take job `pk` for the run identified by `token`; the job, or None if it is not ours to run."""
    waited_since = None
    last_beat = None
    while True:
        now = timezone.now()
        claimable = Q(status=JobStatus.QUEUED) | Q(
            Q(heartbeat_at__lt=_stale_before(now)) | Q(heartbeat_at__isnull=True),
            status=JobStatus.RUNNING,
        )
        updated = model.objects.filter(claimable, pk=pk).update(
            status=JobStatus.RUNNING,
            task_id=token,
            worker=worker[:200],
            heartbeat_at=now,
            attempt_started_at=now,
            started_at=Coalesce(F("started_at"), now),
            attempts=F("attempts") + 1,
            finished_at=None,
        )
        job = model.objects.filter(pk=pk).first()
        if job is None:
            logger.warning("%s #%s does not exist (deleted?); nothing to do", model.__name__, pk)
            return None
        if updated:
            start_done = _done_so_far(job)
            model.objects.filter(pk=pk, task_id=token).update(attempt_start_done=start_done)
            job.attempt_start_done = start_done
            return job
        if job.status != JobStatus.RUNNING or job.task_id != token or not wait:
            logger.info(
                "%s #%s is %s (task %s); this delivery (%s) does nothing",
                model.__name__,
                pk,
                job.status,
                job.task_id or "-",
                token,
            )
            return None
        # Our own message, redelivered while the job still looks alive: wait for it to go quiet.
        patience = (
            settings.GENERATION_HEARTBEAT_STALE_S + 2 * settings.GENERATION_HEARTBEAT_INTERVAL_S
        )
        still_beating = last_beat is not None and job.heartbeat_at != last_beat
        if still_beating and waited_since and time.monotonic() - waited_since > patience:
            logger.info("%s #%s is still beating; leaving it to its worker", model.__name__, pk)
            return None
        last_beat = job.heartbeat_at
        waited_since = waited_since or time.monotonic()
        time.sleep(min(1.0, settings.GENERATION_HEARTBEAT_INTERVAL_S))


class JobRunner:
    """The running side of one claimed job. Use as a context manager (starts the heartbeat)."""

    def __init__(
        self,
        job,
        token: str,
        *,
        heartbeat: bool = True,
        soft_time_limit_s: float | None = None,
        on_progress: Callable[[int, int, float | None], None] | None = None,
    ):
        self.job = job
        self.model = type(job)
        self.token = token
        self.lines = [line for line in (job.log_tail or "").splitlines() if line]
        self.on_progress = on_progress
        self.stop_reason: str | None = None
        self.lost = False
        self._heartbeat = heartbeat
        self._deadline = time.monotonic() + soft_time_limit_s if soft_time_limit_s else None
        self.soft_time_limit_s = soft_time_limit_s
        self._last_progress = 0.0
        self._last_cancel_check = 0.0
        self._pending: dict = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> Self:
        if self._heartbeat:
            self._thread = threading.Thread(
                target=self._beat,
                name=f"heartbeat-{self.model.__name__}-{self.job.pk}",
                daemon=True,
            )
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.GENERATION_HEARTBEAT_INTERVAL_S):
                try:
                    if not self._ours().update(heartbeat_at=timezone.now()):
                        self.lost = True
                        return
                except Exception:
                    logger.warning("heartbeat write failed", exc_info=True)
                    close_old_connections()
        finally:
            connection.close()

    # --------------------------------------------------------------------------- writes
    def _ours(self):
        return self.model.objects.filter(
            pk=self.job.pk, status=JobStatus.RUNNING, task_id=self.token
        )

    def write(self, **fields) -> None:
        """Conditional update of our row; JobLost if it is not ours any more."""
        fields.setdefault("heartbeat_at", timezone.now())
        if not self._ours().update(**fields):
            self.lost = True
            raise JobLost(f"{self.model.__name__} #{self.job.pk} is no longer held by this run")
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self.job, name, value)

    def log(self, message: str, *, flush: bool = True) -> None:
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
        for line in str(message).splitlines() or [""]:
            self.lines.append(f"{stamp} {line}")
        logger.info("%s #%s: %s", self.model.__name__, self.job.pk, message)
        self.lines = self.lines[-LOG_TAIL_LINES:]
        if flush:
            self.write(log_tail=self.log_tail())

    def log_tail(self) -> str:
        text = "\n".join(self.lines)
        return text[-LOG_TAIL_CHARS:]

    def progress(
        self, done: int, total: int, *, loss: float | None = None, force=False, **fields
    ) -> None:
        """Record progress, at most about once a second unless `force`."""
        if self.on_progress is not None:
            self.on_progress(done, total, loss)
        now = time.monotonic()
        self._pending.update(fields)
        if not force and now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        pending, self._pending = self._pending, {}
        self.write(log_tail=self.log_tail(), **pending)

    # ------------------------------------------------------------------------ stopping
    def should_stop(self) -> bool:
        """True once a cancel was requested, the soft time limit passed, or the job was lost.

        Reads the flag from the database at most about once a second; safe to call after every
        step.
        """
        if self.stop_reason is not None:
            return True
        if self.lost:
            self.stop_reason = "lost"
            return True
        if shutdown.requested():
            # the process was asked to stop: "cancel" ends the job cancelled, "requeue" hands
            # it back to the queue (see finish)
            self.stop_reason = shutdown.requested()
            return True
        now = time.monotonic()
        if self._deadline is not None and now > self._deadline:
            self.stop_reason = "time"
            return True
        if now - self._last_cancel_check >= CANCEL_CHECK_EVERY_S:
            self._last_cancel_check = now
            row = (
                self.model.objects.filter(pk=self.job.pk)
                .values("cancel_requested", "status", "task_id")
                .first()
            )
            if row is None or row["status"] != JobStatus.RUNNING or row["task_id"] != self.token:
                self.lost = True
                self.stop_reason = "lost"
                return True
            if row["cancel_requested"]:
                self.stop_reason = "cancel"
                return True
        return False

    def finish(self, status: str, *, error: str = "", **fields) -> None:
        if status == JobStatus.CANCELLED and self.stop_reason == shutdown.REQUEUE:
            self.log("the worker is shutting down: handed back to the queue", flush=False)
            # Queued with no heartbeat: the recovery sweep publishes it again for the next
            # worker, which resumes it (the message of this run is acknowledged on return).
            self.write(status=JobStatus.QUEUED, heartbeat_at=None, log_tail=self.log_tail())
            return
        self.write(
            status=status,
            error=error[:10000],
            finished_at=timezone.now(),
            log_tail=self.log_tail(),
            **fields,
        )

    def time_limit_message(self, kept: str) -> str:
        limit = int(self.soft_time_limit_s or settings.GPU_TASK_SOFT_TIME_LIMIT)
        return (
            f"Stopped at the soft time limit ({limit} s, 0.9 x GPU_TASK_HARD_TIME_LIMIT). {kept} "
            f"Press Retry to continue, or raise GPU_TASK_HARD_TIME_LIMIT on the workers."
        )


__all__ = ["GenerationJob", "JobLost", "JobRunner", "TrainingRun", "claim", "default_worker_name"]
