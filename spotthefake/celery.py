"""The Celery app, its two queues, and the one decorator every project task uses."""

import os

from celery import Celery, signals
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotthefake.settings")

DEFAULT_QUEUE = "default"
GPU_QUEUE = "gpu"

app = Celery("spotthefake")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [
    Queue(DEFAULT_QUEUE, Exchange(DEFAULT_QUEUE), routing_key=DEFAULT_QUEUE),
    Queue(GPU_QUEUE, Exchange(GPU_QUEUE), routing_key=GPU_QUEUE),
]
app.autodiscover_tasks()


def project_task(*, queue: str = DEFAULT_QUEUE, **options):
    """Register a task the way every task of this project must be registered.

    acks_late + reject_on_worker_lost: a task whose worker dies is redelivered, so every
    task must be safe to run twice (status guard or conditional update).
    """
    if queue not in (DEFAULT_QUEUE, GPU_QUEUE):
        raise ValueError(f"unknown queue {queue!r}")
    options.setdefault("acks_late", True)
    options.setdefault("reject_on_worker_lost", True)
    return app.task(queue=queue, **options)


class GpuWorkerMisconfigured(RuntimeError):
    pass


def check_gpu_worker_options(queues: list[str], concurrency: int, prefetch: int) -> None:
    """A worker on the gpu queue runs one task at a time and reserves no other."""
    if GPU_QUEUE in queues and (concurrency != 1 or prefetch != 1):
        raise GpuWorkerMisconfigured(
            f"a worker consuming the '{GPU_QUEUE}' queue must run with --concurrency=1 and "
            f"--prefetch-multiplier=1 (got concurrency={concurrency}, prefetch={prefetch})"
        )


@signals.celeryd_after_setup.connect
def _refuse_misconfigured_gpu_worker(sender, instance, conf, **kwargs) -> None:
    queues = list(instance.app.amqp.queues.consume_from or instance.app.amqp.queues)
    try:
        check_gpu_worker_options(queues, instance.concurrency, conf.worker_prefetch_multiplier)
    except GpuWorkerMisconfigured as error:
        # Celery logs and swallows exceptions from signal handlers; SystemExit stops the worker.
        raise SystemExit(f"refusing to start: {error}") from None
