"""Redis unreachable: launching a job says so and creates nothing; reading pages never notice."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from generation import services
from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus, TrainingRun
from tests.factories import StaffFactory, UserFactory
from tests.generation.conftest import use_broker
from tests.readerstudy.helpers import StudyBuilder, answer_payload, case_url, slots_of

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dead_redis():
    port = closed_port()
    with use_broker(f"redis://127.0.0.1:{port}/0", {"socket_connect_timeout": 1}):
        yield port


def test_it_refuses_to_start_a_generation_job_and_creates_nothing(
    real_pool, tiny_generator, dead_redis
):
    started = time.monotonic()
    with pytest.raises(services.BrokerUnavailable) as raised:
        services.start_generation(
            generator=tiny_generator, count=2, finding="normal", user=StaffFactory()
        )
    assert time.monotonic() - started < 10
    assert str(raised.value) == (
        f"The task queue (Redis at 127.0.0.1:{dead_redis}) is unreachable: nothing was created. "
        f"Try again when it is back."
    )
    assert not GenerationJob.objects.exists()


def test_it_refuses_to_start_training_and_creates_nothing(real_pool, dead_redis):
    generator = GeneratorModel.objects.create(name="m", kind=GeneratorKind.DDPM, resolution=32)
    with pytest.raises(services.BrokerUnavailable, match="unreachable: nothing was created"):
        services.start_training(generator=generator, total_steps=5, params={}, user=None)
    assert not TrainingRun.objects.exists()


def test_it_leaves_a_failed_job_failed_when_retry_cannot_reach_the_queue(
    real_pool, tiny_generator, dead_redis
):
    job = services.create_generation_job(generator=tiny_generator, count=1, finding="normal")
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error="worker died", finished_at=timezone.now()
    )
    with pytest.raises(services.BrokerUnavailable):
        services.retry(job)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == "worker died"


def test_it_serves_every_reading_page_without_touching_the_broker(
    transactional_db, client, dead_redis, monkeypatch
):
    import kombu.connection

    opened = []
    original = kombu.connection.Connection.__init__

    def spy(self, *args, **kwargs):
        opened.append(args[:1])
        original(self, *args, **kwargs)

    reader = UserFactory()
    # built before the spy: saving cases enqueues their blinding audit (evaluation app)
    study = StudyBuilder()(readers=[reader], n_real=1, n_synthetic=1)
    monkeypatch.setattr(kombu.connection.Connection, "__init__", spy)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]

    assert client.get("/").status_code == 200
    assert client.get(f"/studies/{study.public_id}/").status_code == 200
    assert client.get(case_url(slot)).status_code == 200
    assert client.get(f"{case_url(slot)}image.png").status_code == 200
    response = client.post(case_url(slot), answer_payload("fake"))
    assert response.status_code in (200, 302, 303)

    assert opened == []


def test_it_refuses_with_redis_url_pointing_at_a_closed_port_in_a_fresh_process(tmp_path):
    """The real settings path: REDIS_URL in the environment, read at start-up."""
    port = closed_port()
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
    environ.update(
        DJANGO_SETTINGS_MODULE="spotthefake.settings",
        SPOTTHEFAKE_VAR_DIR=str(tmp_path),
        SECRET_KEY="redis-down-test",
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        ALLOWED_HOSTS="testserver",
        DEBUG="1",  # DEBUG: static URLs without a collected manifest
    )
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        check=False,
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr
    script = """
from django.contrib.auth import get_user_model
from django.test import Client
from generation import services
from generation.models import GeneratorModel, GenerationJob
user = get_user_model().objects.create_user("reader", password="x-very-long-pass")
generator = GeneratorModel.objects.create(name="m", kind="ddpm", findings=["normal"], trained_steps=1,
                                          config={"findings": ["normal"]})
try:
    services.start_generation(generator=generator, count=1, finding="normal", user=user)
except services.BrokerUnavailable as error:
    print("REFUSED:", error)
print("ROWS:", GenerationJob.objects.count())
client = Client()
client.force_login(user)
print("HOME:", client.get("/").status_code)
"""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        check=False,
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"REFUSED: The task queue (Redis at 127.0.0.1:{port}) is unreachable" in result.stdout
    assert "ROWS: 0" in result.stdout
    assert "HOME: 200" in result.stdout
