"""A sharded generation job on two real GPU-queue workers: each worker takes a shard, the job
ends with exactly the requested images, each slot made once.

Real parts only, as in test_worker_kill.py (whose helpers this uses): a real Redis, a
file-based SQLite database shared by every process, real `celery worker` processes. Every wait
is on an event with minutes of patience; nothing depends on the machine's speed.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.generation.test_worker_kill import (
    environment,
    manage,
    query,
    redis_for_this_test,
    start_worker,
    wait_until,
)

COUNT = 4
SHARDS = 2


@pytest.mark.worker
def test_it_shares_one_job_between_two_workers_and_makes_each_image_once(
    tmp_path, tiny_model_folder
):
    redis_url = redis_for_this_test()
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    environ = environment(tmp_path, redis_url)
    manage(environ, "migrate", "--noinput", "-v", "0")
    db = tmp_path / "db.sqlite3"
    workers = [start_worker(environ, name) for name in ("first", "second")]
    logs = [log for _, log in workers]
    try:
        for _, log in workers:  # both idle before the job exists: one shard each
            assert log.wait_for("ready.", timeout=300), "".join(log.lines)
        folder, config = tiny_model_folder
        shutil.copytree(folder, tmp_path / "models" / "sharded")
        script = f"""
import json
from generation import services
from generation.models import GeneratorModel
from generation.tasks import record_checkpoints
generator = GeneratorModel.objects.create(name="sharded", kind="ddpm", resolution=32,
                                          findings={config.findings!r},
                                          config=json.loads({json.dumps(config.to_dict())!r}))
record_checkpoints(generator)
job = services.start_generation(generator=generator, count={COUNT}, finding="normal", steps=80,
                                batch_size=1, seed=7, user=None, shards={SHARDS})
print("JOB", job.pk)
"""
        output = manage(environ, "shell", "-c", script)
        job_pk = int(output.split("JOB")[-1].split()[0])

        def finished():
            row = query(db, "SELECT status FROM generation_generationjob WHERE id = ?", job_pk)[0]
            return row[0] if row[0] in ("succeeded", "failed", "cancelled") else None

        final = wait_until(finished, 900, "the sharded job to end", logs)
        status, error, done = query(
            db,
            "SELECT status, error, done_count FROM generation_generationjob WHERE id = ?",
            job_pk,
        )[0]
        assert final == "succeeded", error
        slots = query(
            db,
            'SELECT "index", image_id FROM generation_generatedimage '
            'WHERE job_id = ? ORDER BY "index"',
            job_pk,
        )
        assert [index for index, _ in slots] == list(range(COUNT))
        assert len({image for _, image in slots}) == COUNT and done == COUNT
        shards = query(
            db,
            "SELECT number, status, worker FROM generation_generationshard "
            "WHERE job_id = ? ORDER BY number",
            job_pk,
        )
        assert [(n, s) for n, s, _ in shards] == [(0, "succeeded"), (1, "succeeded")]
        hosts = {worker.split("@")[0] for _, _, worker in shards}
        assert hosts == {"first", "second"}, shards  # one shard on each worker
        print(json.dumps({"job": job_pk, "shards": shards}))
    finally:
        for process, _ in workers:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
