"""A real Celery worker starts on the embedded default (no servers) and runs a task."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spotthefake.celery import GpuWorkerMisconfigured, check_gpu_worker_options

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "chest-xray-pediatric" / "images" / "normal"


def embedded_env(var_dir: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    environ.update(
        DJANGO_SETTINGS_MODULE="spotthefake.settings",
        SPOTTHEFAKE_VAR_DIR=str(var_dir),
        SECRET_KEY="worker-test",
        PYTHONUNBUFFERED="1",
    )
    return environ


def manage(environ: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # `shell` may print a banner line first (auto-imports); the answer is the last line.
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


class OutputCollector:
    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.2)
        return False


@pytest.mark.worker
def test_it_runs_a_task_on_a_worker_with_the_embedded_default(tmp_path):
    environ = embedded_env(tmp_path)
    manage(environ, "migrate", "--noinput", "-v", "0")
    first = sorted(SAMPLE.glob("*.jpg"))[0]
    manage(environ, "import_images", str(first), "--no-progress", "--finding", "normal")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "spotthefake", "worker", "--queues",
         "default,gpu", "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", "solo",
         "--loglevel", "INFO", "--hostname", "test@%h"],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = OutputCollector(worker)
    try:
        assert output.wait_for("ready.", timeout=60), "".join(output.lines)
        before = manage(environ, "shell", "-c", "from pool.models import Image; "
                        "print(Image.objects.get().display.name)")
        manage(environ, "shell", "-c", "from pool.models import Image; "
               "from pool.tasks import rebuild_display; "
               "rebuild_display.delay(image_pk=Image.objects.get().pk)")
        assert output.wait_for("succeeded", timeout=60), "".join(output.lines)
        after = manage(environ, "shell", "-c", "from pool.models import Image; "
                       "print(Image.objects.get().display.name)")
        assert before != after
        assert (tmp_path / "media" / after).is_file()
        assert not (tmp_path / "media" / before).exists()
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.worker
def test_it_refuses_to_start_a_gpu_worker_that_takes_more_than_one_task(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "spotthefake", "worker", "--queues", "gpu",
         "--concurrency", "2", "--loglevel", "INFO"],
        cwd=ROOT, env=embedded_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "must run with --concurrency=1" in result.stderr + result.stdout


def test_it_accepts_only_one_task_at_a_time_on_the_gpu_queue():
    check_gpu_worker_options(["gpu"], concurrency=1, prefetch=1)
    check_gpu_worker_options(["default"], concurrency=4, prefetch=4)
    with pytest.raises(GpuWorkerMisconfigured):
        check_gpu_worker_options(["default", "gpu"], concurrency=1, prefetch=4)
