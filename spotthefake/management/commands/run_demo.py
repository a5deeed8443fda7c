import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from spotthefake import demo
from spotthefake.env import env_int

WORKER = [
    "-m", "celery", "-A", "spotthefake", "worker", "--queues", "default,gpu",
    "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", "solo",
    "--loglevel", "WARNING", "--hostname", "demo@%h",
]  # fmt: skip
# The scheduler of the job-recovery sweep, as its own process (as in docker-compose.yml).
BEAT = ["-m", "celery", "-A", "spotthefake", "beat", "--loglevel", "WARNING"]
# A Ctrl-C during a job hands it back to the queue, and the filesystem broker forgets the
# message: with these, the next `make demo` runs it again within a minute, not three.
DEMO_RECOVERY = {"GENERATION_HEARTBEAT_STALE_S": "30", "GENERATION_SWEEP_INTERVAL_S": "10"}
# What these log at INFO in this process would drown the demo's own lines.
QUIET_LOGGERS = {"axes": logging.WARNING, "kombu.connection": logging.ERROR}
TICK_S = 1.0
# The line printed when the chain moves on from a stage: the demo's timeline.
ENDED = {"training": "training done", "generating": "generation done"}
ORDER = ("training", "generating", "open")
REPORT_EVERY_S = 30.0
# A training step can take a minute on a busy CPU; the worker stops after the current one.
STOP_GRACE_S = 60.0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """In the child before exec: on Linux, SIGTERM when `run_demo` dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _moved_on(before: str, now: str) -> bool:
    """From training to generating or open, or from generating to open (not to stopped)."""
    return before in ENDED and now in ORDER and ORDER.index(now) > ORDER.index(before)


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __str__(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"[{seconds // 60:2d}m{seconds % 60:02d}s]"


class Command(BaseCommand):
    help = (
        "Run the demo: migrate, create the accounts, start the web server, a Celery worker and "
        "Celery beat, import the bundled X-rays, then train the demo model and generate its "
        "fakes as ordinary jobs on the worker (watch them on the job pages) and open the study "
        "'Spot the fake lungs' for the two demo readers once its fakes exist. Whatever exists "
        "is reused. Ctrl-C stops everything."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=env_int("DEMO_PORT", 8000, minimum=1))
        parser.add_argument(
            "--steps",
            type=int,
            default=env_int("DEMO_STEPS", demo.DEFAULT_STEPS, minimum=1),
            help="Training steps of the demo model (DEMO_STEPS; default %(default)s).",
        )
        parser.add_argument(
            "--resolution",
            type=int,
            default=env_int("DEMO_RESOLUTION", demo.DEFAULT_RESOLUTION, minimum=32),
            help="Side of the demo model's images, when it is first made (DEMO_RESOLUTION).",
        )
        parser.add_argument(
            "--images",
            type=int,
            default=env_int("DEMO_IMAGES", demo.DEFAULT_IMAGES_PER_FINDING, minimum=1),
            help="Fakes per finding (DEMO_IMAGES; default %(default)s).",
        )

    def handle(self, *args, **options) -> None:
        clock = Clock()
        # Ctrl-C and SIGTERM stop the demo, even when started where SIGINT is ignored (`cmd &`).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        for name, level in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)
        url = f"http://127.0.0.1:{options['port']}/"
        processes: dict[str, subprocess.Popen] = {}
        try:
            self._say(f"{clock} setting up the database")
            call_command("migrate", interactive=False, verbosity=0)
            accounts = demo.ensure_accounts()
            environ = self._child_environ(demo.write_env_file())
            processes = self._start_processes(options["port"], environ)
            self._welcome(url, accounts, options, clock)
            threading.Thread(target=self._announce_web, args=(url, clock), daemon=True).start()
            imported, existing = demo.import_sample()
            self._say(f"{clock} bundled X-rays: {imported} imported, {existing} already there")
            chain = demo.DemoChain(
                demo.DemoOptions(options["steps"], options["resolution"], options["images"])
            )
            self._run(processes, chain, url, clock)
        except KeyboardInterrupt:
            self._say(
                f"\n{clock} stopping the web server, the worker and beat (the worker finishes its "
                f"current step; Ctrl-C again stops at once)"
            )
        finally:
            self._stop(processes)

    def _say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _welcome(self, url: str, accounts, options, clock: Clock) -> None:
        self._say(self.style.SUCCESS(f"{clock} Spot the fake demo: {url}"))
        for account in accounts:
            role = "researcher (admin)" if account.is_staff else "reader"
            self._say(f"  {role:19} {account.username} / {account.password}")
        self._say(
            f"  jobs:               {url}staff/generation/jobs/\n\n"
            f"The demo trains its model ({options['steps']} steps, DEMO_STEPS) and then generates "
            f"{options['images']} fakes per finding as jobs on the worker;\nthe study "
            f"'{demo.DEMO_STUDY}' opens for the readers once they exist. Logs: "
            f"{self._log_dir()}/. Commands from another shell: ./manage COMMAND.\n"
            f"Ctrl-C stops everything; `make demo` again carries on where it stopped.\n"
        )

    def _announce_web(self, url: str, clock: Clock) -> None:
        while True:
            try:
                with urllib.request.urlopen(url + "accounts/login/", timeout=5) as response:
                    if response.status == 200:
                        self._say(f"{clock} the web server answers: {url}")
                        return
            except OSError:
                pass
            time.sleep(0.5)

    def _run(self, processes: dict, chain: demo.DemoChain, url: str, clock: Clock) -> None:
        """Supervise the processes and move the demo's jobs on until Ctrl-C."""
        shown, reported_at = None, 0.0
        while True:
            self._check_alive(processes)
            if shown is None or shown.stage != "open":
                progress = chain.advance()
                now = time.monotonic()
                changed = shown is None or progress.key != shown.key
                if shown is not None and _moved_on(shown.stage, progress.stage):
                    self._say(f"{clock} {ENDED[shown.stage]}")
                if changed or (progress.text != shown.text and now - reported_at > REPORT_EVERY_S):
                    page = (
                        f"  {url.rstrip('/')}{progress.path}" if changed and progress.path else ""
                    )
                    self._say(f"{clock} {progress.text}{page}")
                    shown, reported_at = progress, now
                    if progress.stage == "open":
                        self._say(f"         readers log in at {url} (reader1, reader2)")
            time.sleep(TICK_S)

    def _check_alive(self, processes: dict) -> None:
        for name, process in processes.items():
            if process.poll() is not None:
                log = self._log_dir() / f"{name}.log"
                tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
                raise CommandError(
                    f"the {name} process stopped (exit status {process.returncode}); the end of "
                    f"{log}:\n{tail}"
                )

    @staticmethod
    def _log_dir() -> Path:
        return Path(settings.VAR_DIR) / "logs"

    @staticmethod
    def _child_environ(values: dict[str, str]) -> dict[str, str]:
        """The demo's settings file under the real environment (which wins)."""
        return {**DEMO_RECOVERY, **values, **os.environ, "PYTHONUNBUFFERED": "1"}

    def _start_processes(self, port: int, environ: dict) -> dict[str, subprocess.Popen]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web": [python, manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            "worker": [python, *WORKER],
            "beat": [
                python,
                *BEAT,
                "--schedule",
                str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
            ],
        }
        self._log_dir().mkdir(parents=True, exist_ok=True)
        processes = {}
        for name, command in commands.items():
            with open(self._log_dir() / f"{name}.log", "ab") as log:
                # Their own session: a Ctrl-C reaches only this command, which stops them once
                # (a second signal would make the worker drop its job mid-step).
                processes[name] = subprocess.Popen(
                    command,
                    cwd=settings.BASE_DIR,
                    env=environ,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # safe: no thread runs yet
                )
        return processes

    def _stop(self, processes: dict[str, subprocess.Popen]) -> None:
        """SIGTERM (the worker's warm shutdown hands its job back to the queue), then SIGKILL
        after a grace."""
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: no more waiting
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                process.wait()
