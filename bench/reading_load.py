"""Benchmark: N radiologists reading at once, through the real pages, on gunicorn + PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x .venv/bin/python bench/reading_load.py \
        [--readers 50] [--think 2-5 | --think 0] [--duration 120] [--ramp 60] [--cases 120]
        [--workers 4] [--url http://host:port --study PUBLIC_ID --password PW]

Without --url it creates a scratch database `spotthefake_bench_<pid>` on the PostgreSQL server
DATABASE_URL names (never that database itself), builds a study of `--cases` real-looking chest
X-rays (512 px display derivatives of the bundled sample) with `--readers` readers, collects the
static files and starts `gunicorn --workers W` on it (sessions in REDIS_URL's Redis if set). With --url it uses a running server whose
study and reader accounts (bench-reader-1..N, --password) exist already.

Each simulated reader (one thread, its own session) logs in (the logins ramped over `--ramp`
seconds: password hashing is deliberately slow), then loops like a person at the reading page:
the case page (full page), its image, a think time drawn from `--think` (seconds; 0 is a stress
test), then the answer POST through the htmx endpoint, whose reply is the next case's fragment.
Each loop also requests /healthz, a trivial endpoint, so that every figure can be compared with
the floor of this machine in the same run.

It prints per request type: count, errors, p50 / p95 / p99 (ms) and p50 / trivial p50; the
throughput; the CPU gunicorn spent per request once every reader had logged in (less swayed by
other work on the machine than the latencies); then checks in the database that every
acknowledged answer is stored exactly once with the answer sent. A benchmark, not a test;
figures on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-reader-password"
TARGET_P99_MS = 100.0
TARGET_RATIO = 3.0
CASE_TOKEN = re.compile(r'hx-post="/read/([A-Za-z0-9_-]+)/"')
IMAGE_URL = re.compile(r'src="(/read/[A-Za-z0-9_-]+/image\.png)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ANSWERS = ("real", "fake", "unsure")


# ------------------------------------------------------------------------------ set-up
def _scratch_database(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit("DATABASE_URL must name a PostgreSQL server (the benchmark is for production)")
    return urlunsplit(parts._replace(path=f"/spotthefake_bench_{os.getpid()}"))


def _environment(database_url: str, var_dir: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    environ.update(
        DJANGO_SETTINGS_MODULE="spotthefake.settings",
        DATABASE_URL=database_url,
        SPOTTHEFAKE_VAR_DIR=var_dir,
        SECRET_KEY="bench-only-not-a-secret",
        DEBUG="0",
        # Plain HTTP on the loopback: the TLS proxy in front is not what is measured here.
        ALLOW_PLAIN_HTTP="1",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
    )
    return environ


def _manage(environ: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _create_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')


def _drop_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def _build_study(environ: dict[str, str], readers: int, cases: int) -> str:
    """The study, its images and readers, made in this process; returns its public id."""
    os.environ.update(environ)
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.files.base import ContentFile
    from PIL import Image as PILImage

    from pool.imaging import make_display_png
    from pool.models import Truth
    from readerstudy.models import Assignment
    from readerstudy.services.studies import open_study
    from tests.factories import ImageFactory, StudyFactory

    samples = sorted((ROOT / "sample_data").rglob("*.jp*g"))[:20]
    displays = []
    for path in samples:
        with PILImage.open(path) as picture:
            grey = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
        displays.append(make_display_png(grey, 512))
    study = StudyFactory(title="Reading under load", confidence_scale=5)
    for index in range(cases):
        image = ImageFactory(truth=Truth.REAL if index % 2 else Truth.SYNTHETIC)
        # the same pictures on both sides: the blinding audit must find nothing to separate
        picture = displays[(index // 2) % len(displays)]
        image.display.save("display.png", ContentFile(picture), save=True)
        study.cases.create(image=image)
    hashed = make_password(PASSWORD)
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench-reader-{n}", password=hashed)
        for n in range(1, readers + 1)
    )
    Assignment.objects.bulk_create(Assignment(study=study, reader=user) for user in users)
    open_study(study)
    return study.public_id


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_gunicorn(environ: dict[str, str], workers: int, port: int) -> subprocess.Popen:
    """gunicorn with the project's gunicorn.conf.py, on this port with this many workers. With
    REDIS_URL set, it reads sessions from that Redis as production does (access.sessions); the
    set-up above ran without it, so no task of the scratch study is queued there."""
    redis = os.environ.get("REDIS_URL")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "spotthefake.wsgi", "--workers", str(workers),
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env={**environ, "REDIS_URL": redis} if redis else environ,
    )  # fmt: skip


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 300  # a loaded machine starts slowly
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=30).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    sys.exit("gunicorn did not start")


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of gunicorn's master and workers so far (Linux /proc): a
    figure that other work on a shared machine does not inflate the way it does latencies."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that just ended
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # the master, or its child
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# ------------------------------------------------------------------------------ readers
@dataclass
class Results:
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: dict[str, str] = field(default_factory=dict)  # slot token -> answer
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Server CPU once every reader has logged in (password hashing is deliberately slow and
    # would swamp the reading figures), and the requests finished after that.
    server_pid: int | None = None
    logged_in: int = 0
    reading_since: tuple[float, float] | None = None  # (monotonic time, server CPU seconds)
    reading_requests: int = 0

    def log_in_done(self, readers: int) -> None:
        with self.lock:
            self.logged_in += 1
            if self.logged_in == readers and self.server_pid is not None:
                self.reading_since = (time.monotonic(), server_cpu_s(self.server_pid))

    def timed(self, kind: str, session, method: str, url: str, ok=(200,), **options):
        """One request, timed; the response, or None (counted as an error of `kind`)."""
        began = time.perf_counter()
        try:
            response = session.request(method, url, timeout=120, **options)
        except requests.RequestException as error:
            with self.lock:
                self.errors[kind].append(type(error).__name__)
            return None
        elapsed = (time.perf_counter() - began) * 1000
        with self.lock:
            self.timings[kind].append(elapsed)
            self.reading_requests += self.reading_since is not None
            if response.status_code not in ok:
                self.errors[kind].append(str(response.status_code))
                return None
        return response


def _log_in(session: requests.Session, url: str, username: str, password: str, results) -> bool:
    page = results.timed("login page", session, "GET", f"{url}/accounts/login/")
    if page is None:
        return False
    token = CSRF.search(page.text).group(1)
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    done = results.timed(
        "login", session, "POST", f"{url}/accounts/login/", ok=(302,), data=form,
        allow_redirects=False,
    )  # fmt: skip
    return done is not None


def _answer(session, url: str, token: str, rng: random.Random, results: Results):
    """The answer POST as htmx sends it; the reply (next case fragment, or 204 at the end)."""
    answer = rng.choice(ANSWERS)
    csrf = session.cookies.get("csrftoken")
    form = {
        "answer": answer,
        "confidence": str(rng.randint(1, 5)),
        "comment": "",
        "client_ms": "2000",
        "csrfmiddlewaretoken": csrf,
    }
    headers = {"HX-Request": "true", "X-CSRFToken": csrf, "HX-Current-URL": f"{url}/read/{token}/"}
    reply = results.timed(
        "answer", session, "POST", f"{url}/read/{token}/", ok=(200, 204), data=form,
        headers=headers,
    )  # fmt: skip
    if reply is not None:
        with results.lock:
            results.acknowledged[token] = answer
    return reply


def _read(session, url: str, study_id: str, until: float, think, results: Results) -> None:
    """One reader's loop: case page, image, think, answer (htmx); until time is up or done."""
    page = results.timed("case", session, "GET", f"{url}/studies/{study_id}/next/")
    rng = random.Random()
    while page is not None and time.monotonic() < until:
        match = CASE_TOKEN.search(page.text)
        if match is None:
            return  # the study is done
        token = match.group(1)
        results.timed("image", session, "GET", url + IMAGE_URL.search(page.text).group(1))
        results.timed("trivial", session, "GET", f"{url}/healthz")
        time.sleep(think(rng))
        reply = _answer(session, url, token, rng, results)
        if reply is None or reply.status_code == 204:
            return  # an error, or HX-Redirect to the completion page
        # The reply holds the next case; the reader's next loop loads its page in full, as
        # after a reload (the "case" figure), which renders the same case again.
        following = CASE_TOKEN.search(reply.text)
        if following is None:
            return
        page = results.timed("case", session, "GET", f"{url}/read/{following.group(1)}/")


def _reader(n: int, args, url: str, study_id: str, start_at: float, until: float, results):
    time.sleep(max(0.0, start_at - time.monotonic()))
    session = requests.Session()
    if not _log_in(session, url, f"bench-reader-{n}", args.password, results):
        return
    results.log_in_done(args.readers)
    _read(session, url, study_id, until, args.think_time, results)


# ------------------------------------------------------------------------------ report
def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _report(results: Results, elapsed: float) -> dict[str, dict[str, float]]:
    floor = _percentile(results.timings["trivial"], 50)
    rows = {}
    print(
        f"\n{'request':<12}{'count':>7}{'errors':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'p50/trivial':>13}"
    )
    for kind in ("trivial", "case", "image", "answer", "login page", "login"):
        values = results.timings[kind]
        row = {q: _percentile(values, q) for q in (50, 95, 99)}
        rows[kind] = row
        print(
            f"{kind:<12}{len(values):>7}{len(results.errors[kind]):>7}{row[50]:>9.1f}"
            f"{row[95]:>9.1f}{row[99]:>9.1f}{row[50] / floor:>13.1f}"
        )
    total = sum(len(v) for v in results.timings.values())
    print(f"\n{total} requests in {elapsed:.0f} s: {total / elapsed:.1f} requests/s, "
          f"{len(results.timings['answer']) / elapsed:.1f} answers/s")  # fmt: skip
    for kind, errors in results.errors.items():
        if errors:
            print(f"errors in {kind}: {sorted(set(errors))[:5]}")
    return rows


def _check_stored(results: Results) -> bool:
    """Every acknowledged answer is in the database exactly once, with the answer sent."""
    from django.db.models import Count

    from readerstudy.models import Reading, ReadingSlot

    tokens = list(results.acknowledged)
    stored = {
        token: (answer, count)
        for token, answer, count in ReadingSlot.objects.filter(token__in=tokens)
        .annotate(count=Count("reading"))
        .values_list("token", "reading__answer", "count")
    }
    missing = [t for t in tokens if stored.get(t, (None, 0))[1] == 0]
    duplicated = [t for t in tokens if stored.get(t, (None, 0))[1] > 1]
    wrong = [t for t in tokens if t in stored and stored[t][0] != results.acknowledged[t]]
    extra = Reading.objects.exclude(slot__token__in=tokens).count()
    print(
        f"acknowledged answers: {len(tokens)}; stored exactly once: "
        f"{len(tokens) - len(missing) - len(duplicated)}; missing {len(missing)}, "
        f"duplicated {len(duplicated)}, different answer {len(wrong)}; stored without an "
        f"acknowledgement (reply lost): {extra}"
    )
    return not (missing or duplicated or wrong)


# -------------------------------------------------------------------------------- main
def _think(spec: str):
    low, _, high = spec.partition("-")
    low_s, high_s = float(low), float(high or low)
    if low_s < 0 or high_s < low_s:
        raise argparse.ArgumentTypeError(f"think time {spec!r}: use e.g. 2-5, 2 or 0")
    return lambda rng: rng.uniform(low_s, high_s)


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument(
        "--think",
        dest="think_time",
        type=_think,
        default=_think("2-5"),
        help="seconds per case, a range (2-5), a value, or 0 (stress)",
    )
    parser.add_argument("--duration", type=float, default=120, help="seconds of reading")
    parser.add_argument("--ramp", type=float, default=60, help="logins spread over this")
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--url", help="a running server (its study and readers exist)")
    parser.add_argument("--study", help="with --url: the study's public id")
    parser.add_argument("--password", default=PASSWORD)
    return parser.parse_args()  # fmt: skip


def _run_readers(args, url: str, study_id: str, server_pid=None) -> tuple[Results, float]:
    results = Results(server_pid=server_pid)
    began = time.monotonic()
    until = began + args.ramp + args.duration
    threads = [
        threading.Thread(
            target=_reader,
            args=(n, args, url, study_id, began + args.ramp * (n - 1) / args.readers, until,
                  results),
            daemon=True,
        )
        for n in range(1, args.readers + 1)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - began


def main() -> int:
    args = _arguments()
    if args.url:
        if not args.study:
            sys.exit("--url needs --study")
        results, elapsed = _run_readers(args, args.url.rstrip("/"), args.study)
        _report(results, elapsed)
        return 0
    database_url = _scratch_database(os.environ.get("DATABASE_URL", ""))
    var_dir = tempfile.mkdtemp(prefix="spotthefake-bench-")
    environ = _environment(database_url, var_dir)
    _create_database(database_url)
    server = None
    try:
        _manage(environ, "migrate", "--noinput")
        _manage(environ, "collectstatic", "--noinput")
        study_id = _build_study(environ, args.readers, args.cases)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _start_gunicorn(environ, args.workers, port)
        _wait_ready(url)
        sessions = "Redis" if os.environ.get("REDIS_URL") else "PostgreSQL"
        print(f"{args.readers} readers, gunicorn --workers {args.workers} on PostgreSQL, "
              f"sessions in {sessions}, logins over {args.ramp:.0f} s, "
              f"then {args.duration:.0f} s of reading")  # fmt: skip
        results, elapsed = _run_readers(args, url, study_id, server.pid)
        rows = _report(results, elapsed)
        _report_server_cpu(results)
        intact = _check_stored(results)
        floor = rows["trivial"][50]
        for kind in ("answer", "case"):
            print(f"{kind}: p99 {rows[kind][99]:.0f} ms (target <= {TARGET_P99_MS:.0f}), "
                  f"p50 {rows[kind][50] / floor:.1f} x trivial (target <= {TARGET_RATIO:.0f})")  # fmt: skip
        return 0 if intact and not any(results.errors.values()) else 1
    finally:
        _stop(server)
        from django.db import connections

        connections.close_all()
        _drop_database(database_url)
        shutil.rmtree(var_dir, ignore_errors=True)


def _report_server_cpu(results: Results) -> None:
    if results.reading_since is None or not results.reading_requests:
        print("server CPU: not measured (a reader failed to log in)")
        return
    began, cpu_before = results.reading_since
    cpu = server_cpu_s(results.server_pid) - cpu_before
    seconds = time.monotonic() - began
    print(f"server CPU after the last login: {cpu * 1000 / results.reading_requests:.1f} ms per "
          f"request over {results.reading_requests} requests (all kinds), "
          f"{100 * cpu / seconds:.0f}% of one core")  # fmt: skip


def _stop(server: subprocess.Popen | None) -> None:
    if server is None:
        return
    server.terminate()
    try:
        server.wait(timeout=120)  # a loaded machine stops slowly
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
