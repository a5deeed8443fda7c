"""All settings, read from the environment through the typed helpers in `env`.

The embedded default needs no server: SQLite, a Celery broker on kombu's filesystem
transport, media on the local disk, all under VAR_DIR. DATABASE_URL and REDIS_URL switch
to PostgreSQL and Redis; STORAGE_S3_BUCKET switches media to an S3-compatible store.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from spotthefake.env import env_bool, env_int, env_list, env_path, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("SPOTTHEFAKE_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG=1")
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
    "readerstudy",
    "generation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
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
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
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
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport.
REDIS_URL = env_url("REDIS_URL", {"redis", "rediss"})
GPU_TASK_HARD_TIME_LIMIT = env_int("GPU_TASK_HARD_TIME_LIMIT", 24 * 3600, minimum=60)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A task held by a dead worker comes back only after the visibility timeout;
    # it must outlast the longest legitimate run or Redis would hand it out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(GPU_TASK_HARD_TIME_LIMIT * 1.1)}
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
CELERY_ACCEPT_CONTENT = ["json"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
