"""The production session cache gives up on an unreachable Redis within a second (the request
then reads its session from the database) instead of holding a worker until its timeout."""

import json
import subprocess
import sys

from tests.access.test_production_settings import ROOT, production_env

POOL = """
import json, django
django.setup()
from django.core.cache import caches
from django.conf import settings
pool = caches[settings.SESSION_CACHE_ALIAS]._cache._get_connection_pool(write=True)
kwargs = pool.connection_kwargs
print(json.dumps([kwargs.get("socket_connect_timeout"), kwargs.get("socket_timeout")]))
"""


def test_it_bounds_the_session_cache_connect_and_read_timeouts(tmp_path):
    env = production_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/5")
    result = subprocess.run(
        [sys.executable, "-c", POOL], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [1, 1]
