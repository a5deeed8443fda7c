"""Test settings: the real settings, with throwaway folders and fast password hashing.

DATABASE_URL and REDIS_URL are honoured exactly as in production, so CI runs the suite
against real PostgreSQL and Redis; without them the embedded default is used.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "0")
# The test server speaks plain HTTP; production mode is tested in subprocesses.
os.environ.setdefault("ALLOW_PLAIN_HTTP", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("SPOTTHEFAKE_VAR_DIR", tempfile.mkdtemp(prefix="spotthefake-test-"))

from spotthefake.settings import *

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
TEST_OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", BASE_DIR / "test-output"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Off until a test arms it: the database "unreachable" for the next N requests.
MIDDLEWARE = ["spotthefake.testing.DatabaseOutageMiddleware", *MIDDLEWARE]
