import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from spotthefake import demo

WORKER = [
    "-m", "celery", "-A", "spotthefake", "worker", "--queues", "default,gpu",
    "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", "solo",
    "--loglevel", "WARNING", "--hostname", "demo@%h",
]
# The scheduler of the job-recovery sweep, as its own process (as in docker-compose.yml).
BEAT = ["-m", "celery", "-A", "spotthefake", "beat", "--loglevel", "WARNING"]


class Command(BaseCommand):
    help = (
        "Set up the demo and run it: migrate, import the bundled X-rays, create the accounts, "
        "train a small pixel-diffusion model, then start the web server and a Celery worker, "
        "generate synthetic images through the worker (with Celery beat for job recovery), "
        "and open the study 'Spot the fake "
        "lungs' for the two demo readers. Every step is skipped when already done. Ctrl-C "
        "stops the server and the worker."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument(
            "--setup-only", action="store_true",
            help="Set up everything (generation runs in this process), then exit.",
        )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        self.stdout.write("[1/5] Database")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("[2/5] Bundled real X-rays")
        rows = demo.read_manifest(demo.SAMPLE_MANIFEST, demo.ImportLabels())
        with tqdm(total=len(rows), unit="img", leave=False) as bar:
            imported, existing = demo.import_sample(progress=lambda outcome: bar.update())
        self.stdout.write(f"      {imported} imported, {existing} already in the pool")
        accounts = demo.ensure_accounts()
        self.stdout.write("[3/5] Training the demo model (a few minutes on a CPU)")
        demo.train_demo_model()
        if options["setup_only"]:
            self._make_study(worker_runs_jobs=False)
            self._print_accounts(accounts, options["port"], started)
            return
        processes = self._start_processes(options["port"])
        try:
            self._make_study(worker_runs_jobs=True)
            self._print_accounts(accounts, options["port"], started)
            self.stdout.write("Press Ctrl-C to stop the web server and the worker.")
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(processes)

    def _make_study(self, *, worker_runs_jobs: bool) -> None:
        study = demo.demo_study()
        if study is None:
            where = "the worker" if worker_runs_jobs else "this process"
            self.stdout.write(f"[4/5] Generating synthetic X-rays through {where}")
            jobs = demo.start_demo_generation()
            if not worker_runs_jobs:
                from generation.tasks import run_generation

                for job in jobs:
                    run_generation(job.pk)
            with tqdm(total=sum(job.count for job in jobs), unit="img", leave=False) as bar:
                jobs = demo.wait_for_jobs(
                    jobs, lambda done, total: bar.update(done - bar.n), timeout_s=900
                )
            failed = [job for job in jobs if job.status != "succeeded"]
            if failed:
                self.stderr.write(f"      generation did not finish: {failed[0].error or failed[0].status}")
                return
        self.stdout.write(f"[5/5] Opening the study '{demo.DEMO_STUDY}'")
        study = demo.open_demo_study()
        audit = study.blinding_audits.order_by("-computed_at").first()
        if audit is not None and audit.blocking:
            cues = ", ".join(f"{row['name']} {row['auc']:.2f}" for row in audit.blocking)
            self.stdout.write(
                f"      the blinding audit flags {cues}: expected from a CPU demo model, "
                f"acknowledged as admin (see the study's admin page)"
            )
        self.stdout.write(
            f"      {study.cases.count()} cases ({study.cases.filter(is_practice=True).count()} "
            f"practice), {study.assignments.count()} readers"
        )

    def _start_processes(self, port: int) -> list[subprocess.Popen]:
        python = sys.executable
        return [
            subprocess.Popen([python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]),
            subprocess.Popen([python, *WORKER]),
            subprocess.Popen(
                [python, *BEAT, "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")]
            ),
        ]

    def _stop(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def _print_accounts(self, accounts, port: int, started: float) -> None:
        minutes = (time.monotonic() - started) / 60
        self.stdout.write(self.style.SUCCESS(
            f"\nSpot the fake is at http://127.0.0.1:{port}/  (set up in {minutes:.1f} min)"
        ))
        for account in accounts:
            role = "researcher (admin)" if account.is_staff else "reader"
            self.stdout.write(f"  {role:19} {account.username} / {account.password}")
        self.stdout.write(f"  admin: http://127.0.0.1:{port}/admin/\n")
