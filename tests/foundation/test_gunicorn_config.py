"""gunicorn's settings (gunicorn.conf.py), as gunicorn itself reads them from the working
directory: the workers and timeout from the environment, failing loudly on a typo."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READ = """
import sys
sys.argv = ["gunicorn", "spotthefake.wsgi"]  # as the Dockerfile starts it
from gunicorn.app.wsgiapp import WSGIApplication
c = WSGIApplication().cfg
print(c.workers, c.timeout, c.bind, c.worker_tmp_dir)
"""


def gunicorn_settings(**environ: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **environ}
    return subprocess.run(
        [sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_it_runs_three_workers_on_port_8000_by_default():
    result = gunicorn_settings()
    assert result.returncode == 0, result.stderr
    workers, timeout, bind, tmp = result.stdout.split()
    assert (workers, timeout, bind) == ("3", "120", "['0.0.0.0:8000']")
    assert tmp == ("/dev/shm" if Path("/dev/shm").is_dir() else "None")


def test_it_takes_workers_and_timeout_from_the_environment():
    result = gunicorn_settings(WEB_WORKERS="5", WEB_TIMEOUT_S="30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["5", "30"]


@pytest.mark.parametrize("value", ["five", "0"])
def test_it_refuses_a_bad_worker_count(value):
    result = gunicorn_settings(WEB_WORKERS=value)
    assert result.returncode != 0
    assert "WEB_WORKERS" in result.stderr


def test_the_image_and_compose_start_gunicorn_without_overriding_it():
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    assert 'CMD ["gunicorn", "spotthefake.wsgi"]' in dockerfile
    assert 'gunicorn spotthefake.wsgi"]' in compose
    assert "gunicorn.conf.py" not in (ROOT / ".dockerignore").read_text()
