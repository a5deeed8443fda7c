"""docker-compose.yml is checked by parsing it (Docker does not run on these machines)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


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
