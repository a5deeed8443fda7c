"""gunicorn's settings for the web process; gunicorn reads ./gunicorn.conf.py from where it
starts (/app in the image), and command-line options override it (the benchmark's --bind)."""

from pathlib import Path

from spotthefake.env import env_int

bind = "0.0.0.0:8000"
# Sync workers: one request at a time each, so a request waiting on PostgreSQL holds only its
# worker. About two per core keeps the cores busy while some wait; each costs its memory
# (README, "Memory of the web process") and one database connection (CONN_MAX_AGE keeps it).
workers = env_int("WEB_WORKERS", 3, minimum=1)
timeout = env_int("WEB_TIMEOUT_S", 120, minimum=1)
# The workers' heartbeat files on tmpfs: on a container's overlay /tmp a slow disk stalls the
# workers' heartbeats, and so their requests (gunicorn's FAQ, "Blocking OS calls").
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"
