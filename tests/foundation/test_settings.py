"""Settings come from the environment, with an embedded default and loud failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from spotthefake import env

ROOT = Path(__file__).resolve().parents[2]

PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "host": settings.DATABASES["default"].get("HOST", ""),
    "broker": settings.CELERY_BROKER_URL,
    "storage": settings.STORAGES["default"]["BACKEND"],
    "visibility": settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout"),
    "restore": settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("unacked_restore_interval"),
    "health_checks": settings.DATABASES["default"].get("CONN_HEALTH_CHECKS"),
    "sweep": settings.GENERATION_SWEEP_INTERVAL_S,
    "stale": settings.GENERATION_HEARTBEAT_STALE_S,
    "beat": sorted(
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    ),
}))
"""


def load_settings(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update(
        DJANGO_SETTINGS_MODULE="spotthefake.settings",
        SPOTTHEFAKE_VAR_DIR=str(tmp_path),
        SECRET_KEY="x",
    )
    clean.update(environ)
    code = "import django; django.setup()\n" + PRINT_SETTINGS
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_it_uses_the_embedded_default_without_servers(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["name"] == str(tmp_path / "db.sqlite3")
    assert loaded["broker"] == "filesystem://"
    assert loaded["storage"] == "django.core.files.storage.FileSystemStorage"


def test_it_switches_to_postgresql_and_redis(tmp_path):
    result = load_settings(
        tmp_path,
        DATABASE_URL="postgres://postgres@db.example:5433/studies",
        REDIS_URL="redis://cache.example:6380/2",
        GPU_TASK_HARD_TIME_LIMIT="1000",
        CELERY_VISIBILITY_TIMEOUT_S="100",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert (loaded["name"], loaded["host"]) == ("studies", "db.example")
    assert loaded["health_checks"] is True
    assert loaded["broker"] == "redis://cache.example:6380/2"
    assert loaded["visibility"] == 100  # its own setting, not tied to the time limit


def test_it_runs_a_killed_workers_job_again_within_five_minutes_by_default(tmp_path):
    """Read from the settings: the message comes back after the visibility timeout (plus the
    restore interval); if it was lost, the sweep finds the job once its heartbeat is stale."""
    result = load_settings(tmp_path, REDIS_URL="redis://cache.example:6380/2")
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["visibility"] + loaded["restore"] <= 300
    assert loaded["stale"] + loaded["sweep"] <= 300
    assert loaded["beat"] == ["generation.recovery.recover_lost_jobs"]


def test_it_switches_media_to_s3_when_a_bucket_is_set(tmp_path):
    result = load_settings(
        tmp_path, STORAGE_S3_BUCKET="studies", STORAGE_S3_ENDPOINT_URL="http://127.0.0.1:9000"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["storage"] == "storages.backends.s3.S3Storage"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x", "scheme must be one of"),
        ("DATABASE_URL", "postgres:///nohost", "has no host"),
        ("REDIS_URL", "http://localhost:6379", "scheme must be one of"),
        ("DEBUG", "maybe", "is not a boolean"),
        ("IMAGE_DISPLAY_SIZE", "big", "is not an integer"),
        ("IMAGE_DISPLAY_SIZE", "8", "must be at least 64"),
        ("IMAGE_API_IDEMPOTENCY_HEADER", "Idempotency Key:", "is not an HTTP header name"),
        ("IMAGE_API_MAX_IN_FLIGHT", "0", "must be at least 1"),
    ],
)
def test_it_fails_loudly_on_bad_values(tmp_path, variable, value, message):
    result = load_settings(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_it_refuses_to_start_without_a_secret_key_in_production(tmp_path):
    result = load_settings(tmp_path, SECRET_KEY="", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_reads_typed_values(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    monkeypatch.setenv("SOME_LIST", "a, b,,c")
    monkeypatch.setenv("SOME_INT", "42")
    assert env.env_bool("SOME_FLAG", False) is True
    assert env.env_list("SOME_LIST", []) == ["a", "b", "c"]
    assert env.env_int("SOME_INT", 0, minimum=1) == 42
    assert env.env_url("UNSET_URL_FOR_TEST", {"redis"}) is None
    monkeypatch.setenv("SOME_HEADER", " Idempotency-Key ")
    assert env.env_header_name("SOME_HEADER", "") == "Idempotency-Key"
    assert env.env_header_name("UNSET_HEADER_FOR_TEST", "") == ""
    monkeypatch.setenv("SOME_INT", "0")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("SOME_INT", 5, minimum=1)


def test_it_runs_the_suite_against_the_configured_database(settings):
    """CI sets DATABASE_URL: the suite must then really be on PostgreSQL, not silently SQLite."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert engine == "django.db.backends.postgresql"
    else:
        assert engine == "django.db.backends.sqlite3"
