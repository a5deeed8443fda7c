"""Benchmark: a 50-reader x 10,000-case study in the database, analysed and exported.

    .venv/bin/python bench/study_scale.py [--readers 50] [--cases 10000] [--bootstrap 1000]
        [--export-readers 100] [--small-export-readers 10] [--tracemalloc] [--keep]

Builds, with bulk_create, in a throwaway database:

- study A: `--readers` readers x `--cases` cases, every reader reading every case once
  (500,000 first readings by default) plus 2 practice cases and 5% repeated cases per reader;
- study B: `--export-readers` readers x the same cases (1,000,000 readings by default), and
  study C: `--small-export-readers` readers (100,000 readings), for the export measurement.

Then it times loading study A from the database into a `ReadingTable` plus `analyse` with
`--bootstrap` resamples (the spec's target: at most 10 s together on 2 cores), and exports the
`readings` table of C and of B to /dev/null, each in a fresh child process that samples its own
resident memory (RSS, every 5 ms) during the export: constant memory means the 1,000,000-row
export grows the process no more than the 100,000-row one.

The embedded default is a fresh SQLite file in a temporary folder. With DATABASE_URL set to
PostgreSQL it creates (and afterwards drops) a scratch database `spotthefake_bench_<pid>` on
that server, so it never touches the database DATABASE_URL names. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_SECONDS = 10.0
PAGE = os.sysconf("SC_PAGE_SIZE")


def _environment(var_dir: str | None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotthefake.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if var_dir:
        os.environ["SPOTTHEFAKE_VAR_DIR"] = var_dir


def _setup(scratch_db: str | None = None) -> None:
    import django
    from django.conf import settings

    django.setup()
    settings.DEBUG = False  # DEBUG keeps every query in memory: not what production does
    if scratch_db:
        settings.DATABASES["default"]["NAME"] = scratch_db
        from django.db import connection

        connection.settings_dict["NAME"] = scratch_db


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakRss:
    """Samples this process' resident memory every few milliseconds while active."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> Self:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


# ---------------------------------------------------------------------------------- building


def build_images(n_cases: int, n_practice: int, seed: int):
    import numpy as np

    from pool.models import Image

    rng = np.random.default_rng(seed)
    is_fake = rng.random(n_cases) < 0.5
    images = []
    generators = [
        {"generator": "ddpm", "model": "cxr-ddpm", "checkpoint": "cxr-ddpm/step-40000.pt",
         "weights_sha256": "a1" * 32, "scheduler": "ddim", "steps": 50, "guidance": 2.0},
        {"generator": "stable-diffusion", "model": "sd-cxr-lora", "base_checkpoint": "/m/sd15",
         "weights_sha256": "b2" * 32, "lora_sha256": "c3" * 32, "scheduler": "dpm++",
         "steps": 30, "guidance": 7.5},
    ]
    findings = ("normal", "pneumonia", "effusion")
    for index in range(n_cases + n_practice):
        fake = bool(is_fake[index]) if index < n_cases else index % 2 == 0
        finding = findings[index % 3]
        provenance = (
            {**generators[index % 2], "seed": index, "class": finding, "job": 1 + index % 4}
            if fake else {"dataset": "bench", "original_name": f"{index}.png"}
        )
        images.append(Image(
            truth="synthetic" if fake else "real", modality="CXR" if index % 5 else "CT",
            finding=finding, source="bench-generator" if fake else "bench-dataset",
            sha256=f"{index:064x}", original=f"bench/{index}.png", original_format="png",
            original_width=512, original_height=512, display=f"bench/{index}-display.png",
            provenance=provenance,
        ))
    return Image.objects.bulk_create(images, batch_size=2000)


def build_study(title: str, images, n_cases: int, n_practice: int, n_readers: int, *,
                repeat_fraction: float, seed: int, reader_prefix: str) -> tuple[object, int]:
    """A closed study, every reader reading every case (and the practice cases) once, plus
    `repeat_fraction` of the cases a second time. Returns the study and its readings count."""
    import numpy as np

    rng = np.random.default_rng(seed)
    study, cases, assignments = _create_study(
        title, images, n_cases, n_readers, repeat_fraction=repeat_fraction,
        reader_prefix=reader_prefix,
    )
    study_cases = cases[:n_cases]
    practice = cases[n_cases:]
    is_fake = np.array([image.truth == "synthetic" for image in images[:n_cases]])
    difficulty = rng.normal(0.0, 0.8, n_cases)
    n_repeat = round(repeat_fraction * n_cases)
    total = 0
    for j, assignment in enumerate(assignments):
        plan = _reader_plan(rng, study_cases, practice, is_fake, difficulty, n_repeat)
        _store_readings(assignment, plan, j)
        total += len(plan)
    return study, total


def _create_study(title: str, images, n_cases: int, n_readers: int, *, repeat_fraction: float,
                  reader_prefix: str):
    """The study, its cases (study cases first, then practice) and one assignment per reader."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from readerstudy.models import Assignment, Study, StudyCase

    with transaction.atomic():
        study = Study.objects.create(title=title, status="closed", confidence_scale=5,
                                     repeat_fraction=repeat_fraction)
        cases = StudyCase.objects.bulk_create(
            [StudyCase(study=study, image=image, is_practice=i >= n_cases)
             for i, image in enumerate(images)],
            batch_size=5000,
        )
        users = get_user_model().objects.bulk_create(
            [get_user_model()(username=f"{reader_prefix}{j:03d}") for j in range(n_readers)]
        )
        assignments = Assignment.objects.bulk_create(
            [Assignment(study=study, reader=user) for user in users]
        )
    return study, cases, assignments


def _reader_plan(rng, study_cases, practice, is_fake, difficulty, n_repeat: int) -> list:
    """One simulated reader's (case, answer, confidence, showing, is_practice) in reading order:
    a skill drawn per reader, harder cases answered wrong more often, some unsure answers."""
    import numpy as np

    n_cases = len(study_cases)
    answers = np.array(["real", "unsure", "fake"])
    skill = rng.uniform(0.72, 0.82)
    logit = np.log(skill / (1 - skill)) - difficulty
    correct = rng.random(n_cases) < 1 / (1 + np.exp(-logit))
    code = np.where(correct == is_fake, 2, 0)
    code[rng.random(n_cases) < rng.uniform(0.05, 0.15)] = 1
    confidence = np.where(correct, rng.integers(2, 6, n_cases), rng.integers(1, 5, n_cases))
    order = rng.permutation(n_cases)
    repeats = rng.choice(n_cases, n_repeat, replace=False)
    plan = [(case, "real", 3, 1, True) for case in practice]
    plan += [(study_cases[i], answers[code[i]], int(confidence[i]), 1, False) for i in order]
    plan += [(study_cases[i], answers[code[i]] if rng.random() < 0.8 else "unsure",
              int(rng.integers(1, 6)), 2, False) for i in repeats]
    return plan


def _store_readings(assignment, plan: list, j: int) -> None:
    """The reader's slots and readings, 7 s apart, shifted by j seconds per reader."""
    from datetime import UTC, datetime, timedelta

    from django.db import transaction

    from readerstudy.models import Reading, ReadingSlot

    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    with transaction.atomic():
        slots = ReadingSlot.objects.bulk_create(
            [ReadingSlot(assignment=assignment, case=case, position=p, showing=showing,
                         is_practice=is_practice)
             for p, (case, _a, _c, showing, is_practice) in enumerate(plan, start=1)],
            batch_size=5000,
        )
        readings = []
        for slot, (_case, answer, conf, _s, _p) in zip(slots, plan, strict=True):
            served = start + timedelta(seconds=7 * slot.position + j)
            readings.append(Reading(
                slot_id=slot.pk, answer=answer, confidence=conf, served_at=served,
                answered_at=served + timedelta(seconds=5), client_ms=4800,
            ))
        Reading.objects.bulk_create(readings, batch_size=5000)


def time_analysis(study, n_bootstrap: int) -> dict:
    import json as _json

    from readerstudy.analysis import analyse
    from readerstudy.results import load_readings

    runs = []
    for _ in range(2):  # the first run also warms the database's page cache
        t0 = time.perf_counter()
        loaded = load_readings(study)
        t1 = time.perf_counter()
        analysis = analyse(loaded.table, n_bootstrap=n_bootstrap, seed=0)
        t2 = time.perf_counter()
        payload = _json.dumps(analysis.to_jsonable())
        t3 = time.perf_counter()
        runs.append({"load": t1 - t0, "analyse": t2 - t1, "total": t2 - t0, "json": t3 - t2,
                     "readings": len(loaded.table), "json_mb": len(payload) / 1e6})
    # The dashboard's path: study_analysis() with the cache (Django's default local-memory
    # cache here): a miss loads and analyses and stores; a hit costs the key's aggregate
    # queries, the reader labels and unpickling the cached analysis.
    from django.core.cache import cache

    from readerstudy.results import study_analysis

    cache.clear()
    t0 = time.perf_counter()
    study_analysis(study, n_bootstrap=n_bootstrap)
    t1 = time.perf_counter()
    study_analysis(study, n_bootstrap=n_bootstrap)
    t2 = time.perf_counter()
    return {"runs": runs, "analysis": analysis, "cache_miss": t1 - t0, "cache_hit": t2 - t1}


def child_export(study_pk: int, use_tracemalloc: bool) -> None:
    """In a fresh process: export a study's readings to /dev/null, report time and memory."""
    from readerstudy import exports
    from readerstudy.models import Study

    study = Study.objects.get(pk=study_pk)
    if use_tracemalloc:
        import tracemalloc

        tracemalloc.start()
    baseline = rss_bytes()
    t0 = time.perf_counter()
    with open(os.devnull, "w", newline="") as sink, PeakRss() as peak:
        lines = exports.write_csv(exports.table_rows("readings", study), sink)
    seconds = time.perf_counter() - t0
    result = {"rows": lines - 1, "seconds": seconds, "rss_baseline": baseline,
              "rss_peak": peak.peak, "rss_growth": peak.peak - baseline}
    if use_tracemalloc:
        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
    print("RESULT " + json.dumps(result))


def measure_export(study_pk: int, use_tracemalloc: bool, scratch_db: str | None) -> dict:
    command = [sys.executable, __file__, "--child-export", str(study_pk)]
    if use_tracemalloc:
        command.append("--tracemalloc")
    if scratch_db:
        command += ["--scratch-db", scratch_db]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(),
                          check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"export child failed:\n{done.stdout}\n{done.stderr}")


def mib(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


def main() -> int:
    args = _arguments()
    if args.child_export:
        _environment(None)
        _setup(args.scratch_db)
        child_export(args.child_export, args.tracemalloc)
        return 0

    postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    var_dir = tempfile.mkdtemp(prefix="spotthefake-bench-")
    _environment(var_dir)
    _setup()
    from django.db import connection

    scratch_db, original_db = _open_database(postgres)
    try:
        t0 = time.perf_counter()
        images = build_images(args.cases, args.practice, seed=1)
        _bench_analysis(args, images, t0)
        _bench_exports(args, images, scratch_db)
    finally:
        if postgres and not args.keep:
            connection.creation.destroy_test_db(original_db, verbosity=0)
        if args.keep:
            print(f"kept: {scratch_db or var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--practice", type=int, default=2)
    parser.add_argument("--repeat-fraction", type=float, default=0.05)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--export-readers", type=int, default=100,
                        help="readers of the export study (x cases readings); 0 skips it")
    parser.add_argument("--small-export-readers", type=int, default=10)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also report the export's peak Python allocations (slower)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--child-export", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scratch-db", help=argparse.SUPPRESS)
    return parser.parse_args()


def _open_database(postgres: bool) -> tuple[str | None, str]:
    """A scratch PostgreSQL database (or the migrated SQLite file); returns the scratch database's
    name (None for SQLite) and the configured name to restore afterwards."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    scratch_db = None
    original_db = settings.DATABASES["default"]["NAME"]
    if postgres:
        scratch_db = f"spotthefake_bench_{os.getpid()}"
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = scratch_db
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        where = f"PostgreSQL scratch database {scratch_db}"
    else:
        call_command("migrate", verbosity=0)
        where = f"SQLite {settings.DATABASES['default']['NAME']}"
    print(f"database: {where}; cpu cores: {os.cpu_count()}")
    return scratch_db, original_db


def _bench_analysis(args: argparse.Namespace, images, t0: float) -> None:
    """Study A: load + analyse timings against the target."""
    study, n_a = build_study(
        "bench A", images, args.cases, args.practice, args.readers,
        repeat_fraction=args.repeat_fraction, seed=2, reader_prefix="a-reader-",
    )
    print(f"built study A: {args.readers} readers x {args.cases:,} cases = "
          f"{n_a:,} readings incl. practice and repeats, in {time.perf_counter() - t0:.1f} s")

    timing = time_analysis(study, args.bootstrap)
    for k, run in enumerate(timing["runs"], start=1):
        print(f"  run {k}: load {run['load']:.2f} s ({run['readings']:,} non-practice "
              f"readings) + analyse(n_bootstrap={args.bootstrap}) {run['analyse']:.2f} s "
              f"= {run['total']:.2f} s; to_jsonable + json.dumps {run['json']:.2f} s "
              f"({run['json_mb']:.1f} MB)")
    print(f"  study_analysis() as the dashboard calls it: cache miss {timing['cache_miss']:.2f} s"
          f", cache hit {timing['cache_hit']:.2f} s")
    best = min(run["total"] for run in timing["runs"])
    averaged = timing["analysis"].reader_averaged.accuracy
    print(f"  reader-averaged accuracy {averaged.estimate:.3f} "
          f"[{averaged.ci_low:.3f}, {averaged.ci_high:.3f}]")
    print(f"load + analyse target <= {TARGET_SECONDS:.0f} s: "
          f"{'MET' if best <= TARGET_SECONDS else 'MISSED'} (best {best:.2f} s)")


def _bench_exports(args: argparse.Namespace, images, scratch_db: str | None) -> None:
    """Studies C (small) and B (large): the readings export's speed and memory, to show the
    export's memory stays constant as the rows grow."""
    exports_done = []
    for label, readers in (("C", args.small_export_readers), ("B", args.export_readers)):
        if readers <= 0:
            continue
        t0 = time.perf_counter()
        export_study, n = build_study(
            f"bench {label}", images[: args.cases], args.cases, 0, readers, repeat_fraction=0.0,
            seed=3, reader_prefix=f"{label.lower()}-reader-",
        )
        print(f"built study {label}: {readers} readers x {args.cases:,} cases = {n:,} "
              f"readings in {time.perf_counter() - t0:.1f} s")
        result = measure_export(export_study.pk, args.tracemalloc, scratch_db)
        exports_done.append(result)
        line = (f"  export readings of {label}: {result['rows']:,} rows in "
                f"{result['seconds']:.1f} s ({result['rows'] / result['seconds']:,.0f} rows/s)"
                f"; RSS {mib(result['rss_baseline'])} before, peak {mib(result['rss_peak'])}"
                f", growth {mib(result['rss_growth'])}")
        if "tracemalloc_peak" in result:
            line += f"; tracemalloc peak {mib(result['tracemalloc_peak'])}"
        print(line)
    if len(exports_done) == 2:
        small, large = exports_done
        print(f"constant memory: {large['rows'] / small['rows']:.0f}x the rows, RSS growth "
              f"{mib(small['rss_growth'])} -> {mib(large['rss_growth'])}")


if __name__ == "__main__":
    raise SystemExit(main())
