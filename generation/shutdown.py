"""Stopping a running job cleanly when its process is asked to stop (SIGTERM, SIGINT).

A job is never left "running" by a process that was asked to stop: the runner sees the request
at its next step (`JobRunner.should_stop`) and ends the job with a checkpoint of that step.

* `manage.py train_model` (a person at a terminal, or a service manager): the run ends
  cancelled; `--resume` or Retry continues from the checkpoint. A second signal stops at once
  (the command then marks the run failed, still resumable).
* a Celery worker's warm shutdown (SIGTERM or the first SIGINT, e.g. a deploy): the job is
  handed back to the queue, and the recovery sweep (`generation.recovery`) queues it for the
  next worker, which resumes it.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from celery import signals

CANCEL = "cancel"
REQUEUE = "requeue"

_requested = threading.Event()
_how = CANCEL


def requested() -> str | None:
    """CANCEL or REQUEUE once this process was asked to stop, else None."""
    return _how if _requested.is_set() else None


def request(how: str) -> None:
    global _how
    _how = how
    _requested.set()


def reset() -> None:
    _requested.clear()


@contextlib.contextmanager
def cancel_on_signals():
    """While inside, the first SIGTERM / SIGINT asks the running job to stop (cancelled); a
    second one gets the usual behaviour (KeyboardInterrupt / termination)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame) -> None:
        if _requested.is_set():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.raise_signal(signum)
            return
        request(CANCEL)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        reset()


@signals.worker_shutting_down.connect
def _hand_back_on_worker_shutdown(sig=None, how=None, exitcode=None, **kwargs) -> None:
    # A warm shutdown waits for the running task: make it end soon, and resumable by another
    # worker. A cold shutdown (second signal) or SIGKILL is left to the recovery sweep.
    request(REQUEUE)
