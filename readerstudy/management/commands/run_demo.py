import os
import signal
import subprocess
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from tqdm import tqdm

from readerstudy import demo


class Command(BaseCommand):
    help = (
        "Set up the demo (migrate, import the bundled X-rays, accounts) and run the web server "
        "and a Celery worker together. Ctrl-C stops both."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--setup-only", action="store_true", help="Set up, then exit.")

    def handle(self, *args, **options) -> None:
        self.stdout.write("Setting up the demo database…")
        call_command("migrate", interactive=False, verbosity=0)
        with tqdm(total=len(demo.read_manifest(demo.SAMPLE_MANIFEST, demo.ImportLabels())),
                  desc="Importing bundled X-rays", unit="img") as bar:
            imported, existing = demo.import_sample(progress=lambda outcome: bar.update())
        self.stdout.write(f"Images: {imported} imported, {existing} already in the pool.")
        accounts = demo.ensure_accounts()
        if options["setup_only"]:
            self._print_accounts(accounts, options["port"])
            return
        self._run(accounts, options["port"])

    def _print_accounts(self, accounts, port: int) -> None:
        self.stdout.write(self.style.SUCCESS(f"\nSpot the fake is at http://127.0.0.1:{port}/"))
        for account in accounts:
            role = "researcher (admin)" if account.is_staff else "reader"
            self.stdout.write(f"  {role:19} {account.username} / {account.password}")
        self.stdout.write(f"  admin: http://127.0.0.1:{port}/admin/\n")

    def _run(self, accounts, port: int) -> None:
        python = sys.executable
        processes = [
            subprocess.Popen([python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]),
            subprocess.Popen([
                python, "-m", "celery", "-A", "spotthefake", "worker", "--queues", "default,gpu",
                "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", "solo",
                "--loglevel", "INFO", "--hostname", "demo@%h",
            ]),
        ]
        time.sleep(2)
        self._print_accounts(accounts, port)
        self.stdout.write("Press Ctrl-C to stop the web server and the worker.")
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
