"""`make demo` (`./manage run_demo`): the web page first, then the demo's jobs on the worker and
the study open by itself; Ctrl-C stops every process it started; a second start reuses what
exists (issue 15).

The demo runs as `make demo` runs it, on the embedded default (SQLite, the filesystem broker)
in a fresh environment, with a tiny model (DEMO_STEPS=2, 32 px, 2 fakes per finding). The test
waits on events with wide margins, never on durations.
"""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.foundation.test_celery_worker import OutputCollector

ROOT = Path(__file__).resolve().parents[2]
STUDY_STATE = (
    "import json; from generation.models import GenerationJob as G, TrainingRun as T; "
    "from readerstudy.models import Study as S; print(json.dumps({"
    "'training': list(T.objects.values_list('status', flat=True)), "
    "'generation': list(G.objects.values_list('status', flat=True)), "
    "'study': list(S.objects.values_list('status', flat=True)), "
    "'cases': list(S.objects.values_list('cases__image__truth', flat=True))}))"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_environ(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "VENV": sys.prefix,
        "DEBUG": "1",  # as `make demo` passes it
        "SPOTTHEFAKE_VAR_DIR": str(tmp_path / "var"),
        "SPOTTHEFAKE_ENV_FILE": str(tmp_path / ".env.demo"),
        "DEMO_PORT": str(free_port()),
        "DEMO_STEPS": "2",
        "DEMO_RESOLUTION": "32",
        "DEMO_IMAGES": "2",
    }


def start(environ: dict[str, str]) -> tuple[subprocess.Popen, OutputCollector]:
    demo = subprocess.Popen(
        ["./manage", "run_demo"], cwd=ROOT, env=environ, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return demo, OutputCollector(demo)


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def interrupt_and_check_all_gone(demo: subprocess.Popen, output: OutputCollector) -> None:
    children = children_of(demo.pid)
    assert len(children) == 3, "".join(output.lines)  # web server, worker, beat
    demo.send_signal(signal.SIGINT)
    assert demo.wait(timeout=300) == 0, "".join(output.lines)
    assert wait_until(lambda: not any(map(is_running, children)), 60), children


def state(environ: dict[str, str]) -> dict:
    result = subprocess.run(
        ["./manage", "shell", "-c", STUDY_STATE], cwd=ROOT, env=environ, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def stop(demo: subprocess.Popen) -> None:
    """After a failure: SIGKILL; its processes follow (they get SIGTERM when it dies)."""
    if demo.poll() is None:
        demo.kill()
        demo.wait()


@pytest.mark.worker
def test_it_serves_first_then_trains_generates_and_opens_the_study(tmp_path):
    environ = fresh_environ(tmp_path)
    url = f"http://127.0.0.1:{environ['DEMO_PORT']}/"
    demo, output = start(environ)
    try:
        assert output.wait_for("the web server answers", 600), "".join(output.lines)
        with urllib.request.urlopen(url + "accounts/login/", timeout=60) as page:
            assert page.status == 200
        assert output.wait_for("training job #1", 600), "".join(output.lines)
        text = "".join(output.lines)
        # The address and the three accounts come first, before any job.
        assert text.index("reader2 / spot-the-fake-reader2") < text.index("training job #1")
        assert output.wait_for("training done", 1800), "".join(output.lines)
        assert output.wait_for("generation done", 1800), "".join(output.lines)
        assert output.wait_for("is open", 1800), "".join(output.lines)
        interrupt_and_check_all_gone(demo, output)
    finally:
        stop(demo)
    after_first = state(environ)
    assert after_first["training"] == ["succeeded"]
    assert after_first["generation"] == ["succeeded", "succeeded"]
    assert after_first["study"] == ["open"]
    assert sorted(after_first["cases"]) == ["real"] * 4 + ["synthetic"] * 4

    again, output = start(environ)
    try:
        assert output.wait_for("is open", 600), "".join(output.lines)
        interrupt_and_check_all_gone(again, output)
    finally:
        stop(again)
    assert state(environ) == after_first  # nothing made twice
