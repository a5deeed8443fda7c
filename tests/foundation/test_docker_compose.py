"""docker-compose.yml is checked by parsing it (Docker does not run on these machines)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.access.test_production_settings import production_env
from tests.foundation.test_gunicorn_config import gunicorn_settings

ROOT = Path(__file__).resolve().parents[2]
# Settings an operator sets in .env that the containers must see (the settings and
# gunicorn.conf.py read them); each passed as ${NAME:-default}.
PASSED_THROUGH = {
    "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
    "EMAIL_USE_SSL", "EMAIL_TIMEOUT_S", "DEFAULT_FROM_EMAIL", "EMAIL_BACKEND",
    "PASSWORD_RESET_TIMEOUT_S", "SESSION_CACHE", "WEB_WORKERS", "WEB_TIMEOUT_S",
}  # fmt: skip
GUNICORN = {"WEB_WORKERS", "WEB_TIMEOUT_S"}
PRINT_MAIL = """
import json, django
django.setup()
from django.conf import settings as s
names = ["EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
         "EMAIL_USE_SSL", "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL", "EMAIL_BACKEND",
         "PASSWORD_RESET_TIMEOUT", "SESSION_ENGINE"]
print(json.dumps({name: getattr(s, name) for name in names}))
"""


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_it_defines_the_production_services(compose):
    assert set(compose["services"]) == {
        "proxy", "postgres", "redis", "web", "worker", "beat", "gpu-worker"
    }  # fmt: skip


def test_it_runs_one_celery_beat_for_the_job_recovery_sweep(compose):
    beat = compose["services"]["beat"]
    assert beat["command"][:4] == ["celery", "-A", "spotthefake", "beat"]
    assert "REDIS_URL" in beat["environment"] and "DATABASE_URL" in beat["environment"]
    assert "deploy" not in beat or "replicas" not in beat["deploy"]


def test_it_runs_gunicorn_and_both_queues(compose):
    services = compose["services"]
    assert "gunicorn spotthefake.wsgi" in " ".join(services["web"]["command"])
    worker = services["worker"]["command"]
    assert worker[worker.index("--queues") + 1] == "default"
    gpu = services["gpu-worker"]["command"]
    assert gpu[gpu.index("--queues") + 1] == "gpu"
    assert gpu[gpu.index("--concurrency") + 1] == "1"
    assert gpu[gpu.index("--prefetch-multiplier") + 1] == "1"


def test_it_reserves_an_nvidia_device_for_the_gpu_worker(compose):
    devices = compose["services"]["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_it_shares_media_and_models_between_web_and_workers(compose):
    for name in ("web", "worker", "gpu-worker"):
        volumes = compose["services"][name]["volumes"]
        assert "media:/var/lib/spotthefake/media" in volumes
        assert "models:/var/lib/spotthefake/models" in volumes
        environment = compose["services"][name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert {"pgdata", "media", "models"} <= set(compose["volumes"])


def test_it_publishes_only_the_tls_proxy(compose):
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    ports = {port.split(":")[-1].split("/")[0] for port in services["proxy"]["ports"]}
    assert ports == {"80", "443"}
    # gunicorn is reached on the compose networks only, and the proxy sits on the same one.
    assert services["web"]["expose"] == ["8000"]
    assert set(services["proxy"]["networks"]) & set(services["web"]["networks"])
    assert "frontend" not in services["postgres"]["networks"]
    assert "frontend" not in services["redis"]["networks"]


def test_it_terminates_tls_in_caddy_in_front_of_gunicorn(compose):
    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    caddyfile = (ROOT / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile
    assert "tls {$CADDY_TLS:internal}" in caddyfile
    for name in ("web", "worker", "gpu-worker"):
        environment = compose["services"][name]["environment"]
        # Production mode: HTTPS settings on, nothing switches them off.
        assert "ALLOW_PLAIN_HTTP" not in environment and "DEBUG" not in environment
        assert environment["ALLOWED_HOSTS"].startswith("${SITE_DOMAIN")


def compose_defaults(compose: dict) -> dict[str, str]:
    """Each passed-through variable's default: what the containers get when .env lacks it."""
    environment = compose["x-app"]["environment"]
    defaults = {}
    for name in PASSED_THROUGH:
        match = re.fullmatch(r"\$\{(\w+):-(.*)\}", str(environment.get(name)))
        assert match and match.group(1) == name, f"{name}: {environment.get(name)!r}"
        defaults[name] = match.group(2)
    return defaults


def mail_settings(tmp_path: Path, **environ: str) -> dict:
    env = production_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/5")
    for name in PASSED_THROUGH:
        env.pop(name, None)
    env.update(environ)
    result = subprocess.run(
        [sys.executable, "-c", PRINT_MAIL], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_it_passes_mail_session_and_gunicorn_settings_with_the_same_defaults(compose, tmp_path):
    defaults = compose_defaults(compose)
    read = (ROOT / "spotthefake" / "settings.py").read_text()
    read += (ROOT / "gunicorn.conf.py").read_text()
    for name in PASSED_THROUGH:
        assert f'"{name}"' in read, f"{name} is read by neither settings.py nor gunicorn.conf.py"
    # A .env without them gives the containers what an environment without them gives.
    django_defaults = {k: v for k, v in defaults.items() if k not in GUNICORN}
    assert mail_settings(tmp_path, **django_defaults) == mail_settings(tmp_path)
    passed = gunicorn_settings(**{name: defaults[name] for name in GUNICORN})
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout == gunicorn_settings().stdout


def test_it_is_valid_for_docker_compose(tmp_path):
    """`docker-compose config` validates the file against the Compose schema without an engine."""
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed: .ci/run installs it")
        pytest.skip("docker-compose (Debian package) is not installed; .ci/run installs it")
    env_file = tmp_path / ".env"
    env_file.write_text(
        "SECRET_KEY=x\nPOSTGRES_PASSWORD=y\nTORCH_INDEX_URL=http://wheels.invalid/\n"
        "SITE_DOMAIN=studies.example.org\n"
    )
    result = subprocess.run(
        [binary, "--project-directory", str(ROOT), "--env-file", str(env_file),
         "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
