"""All settings, read from the environment through the typed helpers in `env`.

The embedded default needs no server: SQLite, a Celery broker on kombu's filesystem
transport, media on the local disk, all under VAR_DIR. DATABASE_URL and REDIS_URL switch
to PostgreSQL and Redis; STORAGE_S3_BUCKET switches media to an S3-compatible store.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from spotthefake.env import (
    env_bool,
    env_header_name,
    env_int,
    env_list,
    env_path,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("SPOTTHEFAKE_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set unless DEBUG=1 (for the demo's settings: run `make demo` "
            "once, then use ./manage COMMAND)"
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "access",
    "pool",
    "readerstudy",
    "generation",
    "evaluation",
    # Last: the wiring of every room above (the demo command), which nothing else imports.
    "spotthefake",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "access.middleware.IdleSessionMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that it sees the lock-out flag the authentication backend sets.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "spotthefake.urls"
WSGI_APPLICATION = "spotthefake.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite under VAR_DIR unless DATABASE_URL names PostgreSQL.
DATABASE_URL = env_url("DATABASE_URL", {"postgres", "postgresql", "sqlite"})
if DATABASE_URL:
    # Health checks: a connection that a PostgreSQL restart broke is replaced at the start of
    # the next request instead of failing it.
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # WAL and a busy timeout let the web server and the worker share the file.
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: a locked-out user or address is refused before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# whitenoise would add `Access-Control-Allow-Origin: *`; no other site needs our files.
WHITENOISE_ALLOW_ALL_ORIGINS = False
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# Media never has a public URL: readers get images only through per-reading tokens,
# staff through permission-checked views. Originals may hold (de-identified) DICOM.
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MODEL_ROOT = env_path("MODEL_ROOT", VAR_DIR / "models")
STORAGE_S3_BUCKET = env_str("STORAGE_S3_BUCKET", "")
if STORAGE_S3_BUCKET:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": STORAGE_S3_BUCKET,
            "endpoint_url": env_url("STORAGE_S3_ENDPOINT_URL", {"http", "https"}),
            "access_key": env_str("STORAGE_S3_ACCESS_KEY", ""),
            "secret_key": env_str("STORAGE_S3_SECRET_KEY", ""),
            "region_name": env_str("STORAGE_S3_REGION", "us-east-1"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": _media_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The image pool.
IMAGE_DISPLAY_SIZE = env_int("IMAGE_DISPLAY_SIZE", 512, minimum=64)
IMAGE_MAX_FILE_BYTES = env_int("IMAGE_MAX_FILE_BYTES", 200 * 1024 * 1024, minimum=1024)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 100_000_000, minimum=4096)
# One web upload (all its files together); a larger one is refused before its body is read.
IMAGE_UPLOAD_MAX_BYTES = env_int("IMAGE_UPLOAD_MAX_BYTES", 512 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport.
REDIS_URL = env_url("REDIS_URL", {"redis", "rediss"})
GPU_TASK_HARD_TIME_LIMIT = env_int("GPU_TASK_HARD_TIME_LIMIT", 24 * 3600, minimum=10)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A task held by a dead worker comes back after the visibility timeout. It need not outlast
    # the longest job: a job whose message comes back while its worker still runs it is left
    # alone (its heartbeat is fresh; see generation.runner.claim). The trade-off: shorter means a
    # killed worker's job resumes sooner, but every job longer than the timeout gets one
    # duplicate delivery, which costs a second GPU worker (if any) about
    # GENERATION_HEARTBEAT_STALE_S of waiting before it lets go. Other (short) tasks are safe to
    # run twice. 240 s + the restore interval keeps a killed worker's job under ~5 minutes.
    CELERY_VISIBILITY_TIMEOUT_S = env_int("CELERY_VISIBILITY_TIMEOUT_S", 240, minimum=5)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_S}
else:
    _broker_dir = VAR_DIR / "broker"
    # The filesystem transport does not create its folders; the embedded default must just work.
    for _folder in (_broker_dir / "queue", _broker_dir / "control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
# Celery beat runs the periodic sweep that queues again the jobs whose worker died and whose
# message is gone too (a flushed or failed-over Redis, the filesystem transport's consumed
# files). A lost job is found within GENERATION_HEARTBEAT_STALE_S + GENERATION_SWEEP_INTERVAL_S
# (2 minutes by default); a shorter interval costs one cheap query and a queue scan each time.
GENERATION_SWEEP_INTERVAL_S = env_int("GENERATION_SWEEP_INTERVAL_S", 60, minimum=1)
CELERY_IMPORTS = ["generation.recovery"]
CELERY_BEAT_SCHEDULE = {
    "recover-lost-jobs": {
        "task": "generation.recovery.recover_lost_jobs",
        "schedule": float(GENERATION_SWEEP_INTERVAL_S),
        # A sweep that waited longer than its interval is superseded by the next one.
        "options": {"expires": float(GENERATION_SWEEP_INTERVAL_S)},
    },
}
CELERY_ACCEPT_CONTENT = ["json"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# ----------------------------------------------------------------------------------------------
# Security (docs/deployment.md). Secure by default: HTTPS only, behind a TLS-terminating proxy
# (Caddy in docker-compose.yml). ALLOW_PLAIN_HTTP=1 is the one switch for plain HTTP on a trusted
# network; DEBUG implies it so that `runserver` works.
# ----------------------------------------------------------------------------------------------
ALLOW_PLAIN_HTTP = env_bool("ALLOW_PLAIN_HTTP", False) or DEBUG
_https = not ALLOW_PLAIN_HTTP
SECURE_SSL_REDIRECT = _https
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the container's own health check speaks plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0) if _https else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
# No script reads the CSRF cookie: htmx sends the token from the page (base.html, hx-headers).
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The proxy terminates TLS and says so in X-Forwarded-Proto; it must overwrite what clients send.
# Off when gunicorn is reached directly, or a client could claim HTTPS.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", True)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Idle sessions end after SESSION_IDLE_TIMEOUT_S without a request; the expiry moves forward at
# most every SESSION_REFRESH_S (access.middleware), not with a write on every request.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT_S", 8 * 3600, minimum=60)
SESSION_REFRESH_S = env_int("SESSION_REFRESH_S", 300, minimum=1)
SESSION_EXPIRE_AT_BROWSER_CLOSE = False
# With Redis, a request reads its session from Redis instead of the database; every write still
# goes to the database first (access.sessions). SESSION_CACHE=0 keeps them in the database only.
# Never a per-process cache: a session logged out in one worker would live on in the others.
if REDIS_URL and env_bool("SESSION_CACHE", True):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "spotthefake",
            # Redis down or unreachable must cost a request a second, not the worker's whole
            # timeout: access.sessions then falls back to the database. The options go to
            # redis-py's connection pool.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }
    SESSION_ENGINE = "access.sessions"
    SESSION_CACHE_ALIAS = "sessions"

# Content-Security-Policy (django-csp): every script, style, image and font is our own; no inline
# code, no eval, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# Login throttling (django-axes): LOGIN_FAILURE_LIMIT wrong passwords lock the account and,
# separately, the client address (LOGIN_LOCKOUT_PARAMETERS, "+" combines) for
# LOGIN_COOLOFF_MINUTES, or until an admin deletes the access attempt (admin: Axes).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [
    part.split("+") if "+" in part else part
    for part in env_list("LOGIN_LOCKOUT_PARAMETERS", ["username", "ip_address"])
]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # its start-up banner would be the only output of `check --deploy`
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind the proxy the client is the X-Forwarded-For entry the proxy wrote (access.client_ip).
AXES_CLIENT_IP_CALLABLE = "access.client_ip.client_ip"

# Roles (access app, docs/deployment.md): members of this group get every permission of these
# apps; a new app that researchers use must be listed here.
RESEARCHER_GROUP = env_str("RESEARCHER_GROUP", "Researchers")
RESEARCHER_APPS = ["pool", "readerstudy", "generation", "evaluation"]

# ----------------------------------------------------------------------------------------------
# Generation jobs on the GPU queue (issue 6). Added by the generation-jobs work; keep together.
# ----------------------------------------------------------------------------------------------
# Soft limit 0.9 x hard: a job past it stops cleanly (keeping finished images / checkpoints) and
# is marked failed. The solo pool does not enforce Celery time limits, so the task also checks
# the soft limit itself between steps.
GPU_TASK_SOFT_TIME_LIMIT = int(GPU_TASK_HARD_TIME_LIMIT * 0.9)
if REDIS_URL:
    # Sweep for messages of dead workers every few seconds (kombu's default is ~100 s), so a job
    # whose worker was killed is redelivered soon after its visibility timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        unacked_restore_interval=env_int("CELERY_REDIS_RESTORE_INTERVAL_S", 5, minimum=1),
        unacked_restore_throttle=1,
        socket_connect_timeout=5,
    )
# A running job's worker writes a heartbeat this often (a background thread, independent of the
# model code); a job silent for GENERATION_HEARTBEAT_STALE_S is taken over by a redelivered
# message and may be cancelled from the admin at once.
GENERATION_HEARTBEAT_INTERVAL_S = env_int("GENERATION_HEARTBEAT_INTERVAL_S", 5, minimum=1)
GENERATION_HEARTBEAT_STALE_S = env_int("GENERATION_HEARTBEAT_STALE_S", 60, minimum=2)
if GENERATION_HEARTBEAT_STALE_S <= GENERATION_HEARTBEAT_INTERVAL_S:
    raise ImproperlyConfigured(
        "GENERATION_HEARTBEAT_STALE_S must be longer than GENERATION_HEARTBEAT_INTERVAL_S"
    )
GENERATION_BROKER_CHECK_TIMEOUT_S = env_int("GENERATION_BROKER_CHECK_TIMEOUT_S", 3, minimum=1)
GENERATION_MAX_COUNT = env_int("GENERATION_MAX_COUNT", 10_000, minimum=1)
# "" picks CUDA, then MPS, then CPU; or name one ("cuda:1", "cpu").
GENERATION_DEVICE = env_str("GENERATION_DEVICE", "")
# Model folders are written under MODEL_ROOT on the worker's disk. With an object store for
# media (STORAGE_S3_BUCKET), each checkpoint is also copied there and fetched by other workers.
GENERATION_SHARE_MODELS = env_bool("GENERATION_SHARE_MODELS", bool(STORAGE_S3_BUCKET))
# The hosted text-to-image API ("image-api" generators): off unless all three are set.
IMAGE_API_BASE_URL = env_url("IMAGE_API_BASE_URL", {"http", "https"}) or ""
IMAGE_API_KEY = env_str("IMAGE_API_KEY", "")
IMAGE_API_MODEL = env_str("IMAGE_API_MODEL", "")
IMAGE_API_SIZE = env_str("IMAGE_API_SIZE", "1024x1024")
IMAGE_API_TIMEOUT_S = env_int("IMAGE_API_TIMEOUT_S", 120, minimum=1)
IMAGE_API_MAX_RETRIES = env_int("IMAGE_API_MAX_RETRIES", 3, minimum=0)
# A request that reached the API and failed may already have been billed: it is retried only
# when the provider takes an idempotency key in this header (e.g. "Idempotency-Key"; empty: no).
IMAGE_API_IDEMPOTENCY_HEADER = env_header_name("IMAGE_API_IDEMPOTENCY_HEADER", "")
# Requests in flight at once across every worker (slots in Redis; without Redis, per host).
IMAGE_API_MAX_IN_FLIGHT = env_int("IMAGE_API_MAX_IN_FLIGHT", 4, minimum=1)

# ----------------------------------------------------------------------------------------------
# E-mail (reader invitations and password resets; access.invites). With EMAIL_HOST set, mail
# goes out over SMTP and invitation links are no longer shown to the researcher; without it,
# mail is written to the console (or wherever EMAIL_BACKEND says, e.g. the file backend with
# EMAIL_FILE_PATH) and the researcher passes the link on.
# ----------------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_S", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Spot the fake <noreply@localhost>")
# Empty is unset: docker-compose passes EMAIL_BACKEND through empty when .env leaves it out.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
if EMAIL_BACKEND.endswith("filebased.EmailBackend"):
    EMAIL_FILE_PATH = env_path("EMAIL_FILE_PATH", VAR_DIR / "mail")
# How long an invitation or password-reset link works (it also stops once used).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_S", 7 * 24 * 3600, minimum=60)
