"""python manage.py export_study STUDY --table TABLE -o FILE  (-o - writes to stdout)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from readerstudy import exports
from readerstudy.analysis.bootstrap import CASE, KINDS
from readerstudy.management.commands._study_argument import add_study_argument
from readerstudy.models import Study
from readerstudy.results import DEFAULT_BOOTSTRAP, DEFAULT_SEED, find_study, run_analysis


class Command(BaseCommand):
    help = (
        "Export one table of a study as CSV, streamed in constant memory. STUDY is the study's "
        "public id or its primary key. Tables: "
        + "; ".join(f"{name}: {spec.description}" for name, spec in exports.TABLES.items())
        + ". Columns and definitions: docs/results.md."
    )

    def add_arguments(self, parser) -> None:
        add_study_argument(parser)
        parser.add_argument(
            "--table", required=True, choices=sorted(exports.TABLES), help="The table to export."
        )
        parser.add_argument(
            "-o", "--output", required=True,
            help="File to write (replaced atomically when done), or - for standard output.",
        )
        parser.add_argument(
            "--bootstrap", type=int, default=DEFAULT_BOOTSTRAP,
            help="Case-bootstrap resamples for the statistics tables (default 1000; 0: none).",
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument(
            "--bootstrap-kind", choices=KINDS, default=CASE,
            help="case: resample cases, readers fixed (a fixed-reader interval; default); "
            "two-way: resample readers and cases (a random-reader interval).",
        )

    def handle(self, *args, study: str, table: str, output: str, bootstrap: int, seed: int,
               bootstrap_kind: str = CASE, **options) -> None:
        if bootstrap < 0:
            raise CommandError("--bootstrap must be 0 or more")
        try:
            found = find_study(study)
        except Study.DoesNotExist as error:
            raise CommandError(str(error)) from None
        spec = exports.TABLES[table]
        analysis = None
        if spec.uses_analysis:
            analysis = run_analysis(found, n_bootstrap=bootstrap, seed=seed,
                                    bootstrap=bootstrap_kind)
        lines = exports.stream_file(exports.csv_filename(found, table), spec.rows(found, analysis))
        if output == "-":
            count = self._to_stdout(lines)
            target = "standard output"
        else:
            count = self._to_file(lines, Path(output))
            target = output
        self.stderr.write(f"{table}: {max(count - 1, 0)} row(s) of study {found.public_id} "
                          f"written to {target}")

    def _to_stdout(self, lines) -> int:
        count = 0
        try:
            for line in lines:
                self.stdout.write(line, ending="")
                count += 1
            self.stdout.flush()
        except BrokenPipeError:  # piped into e.g. `head`: stop quietly
            # Point stdout at /dev/null so the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return count

    def _to_file(self, lines, path: Path) -> int:
        if path.is_dir():
            raise CommandError(f"{path} is a folder; give a file name")
        if not path.parent.is_dir():
            raise CommandError(f"folder {path.parent} does not exist")
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            with partial.open("w", newline="", encoding="utf-8") as handle:
                count = 0
                for line in lines:
                    handle.write(line)
                    count += 1
            partial.replace(path)
        except OSError as error:
            raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
        finally:
            if partial.exists():
                partial.unlink()
        return count

