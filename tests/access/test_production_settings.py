"""Production mode (DEBUG off, nothing else set) is HTTPS-only with strict headers; one switch,
ALLOW_PLAIN_HTTP, turns the HTTPS parts off for a trusted network. Settings are loaded in a
subprocess, as a server would load them."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "ssl_redirect": s.SECURE_SSL_REDIRECT, "hsts": s.SECURE_HSTS_SECONDS,
    "hsts_subdomains": s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "hsts_preload": s.SECURE_HSTS_PRELOAD,
    "session_secure": s.SESSION_COOKIE_SECURE, "csrf_secure": s.CSRF_COOKIE_SECURE,
    "session_httponly": s.SESSION_COOKIE_HTTPONLY, "csrf_httponly": s.CSRF_COOKIE_HTTPONLY,
    "proxy_header": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "session_age": s.SESSION_COOKIE_AGE, "cors_all": s.WHITENOISE_ALLOW_ALL_ORIGINS,
    "csp": s.CONTENT_SECURITY_POLICY["DIRECTIVES"], "failure_limit": s.AXES_FAILURE_LIMIT,
    "cooloff_s": s.AXES_COOLOFF_TIME.total_seconds(), "lockout": s.AXES_LOCKOUT_PARAMETERS,
    "session_engine": s.SESSION_ENGINE,
    "session_cache": s.CACHES.get(s.SESSION_CACHE_ALIAS, {}).get("BACKEND"),
}))
"""


def production_env(tmp_path: Path, **environ: str) -> dict[str, str]:
    drop = {"DATABASE_URL", "REDIS_URL", "DEBUG", "ALLOW_PLAIN_HTTP", "DJANGO_SETTINGS_MODULE"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("LOGIN_")}
    env.update(
        DJANGO_SETTINGS_MODULE="spotthefake.settings",
        SPOTTHEFAKE_VAR_DIR=str(tmp_path),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="studies.example.org",
    )
    env.update(environ)
    return env


def load(tmp_path: Path, **environ: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, env=production_env(tmp_path, **environ),
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def deploy_check(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT,
        env=production_env(tmp_path, **environ), capture_output=True, text=True, timeout=300,
    )


def test_it_is_https_only_in_production_mode(tmp_path):
    loaded = load(tmp_path)
    assert loaded["ssl_redirect"] is True
    assert loaded["hsts"] == 365 * 24 * 3600
    assert loaded["hsts_subdomains"] is True and loaded["hsts_preload"] is True
    assert loaded["session_secure"] is True and loaded["csrf_secure"] is True
    assert loaded["session_httponly"] is True and loaded["csrf_httponly"] is True
    assert loaded["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert loaded["cors_all"] is False


def test_it_sets_a_strict_content_security_policy(tmp_path):
    loaded = load(tmp_path)
    assert loaded["session_age"] == 8 * 3600  # idle timeout
    csp = loaded["csp"]
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["form-action"] == ["'self'"]
    assert not any("unsafe" in source for sources in csp.values() for source in sources)


def test_it_reads_lock_out_and_idle_timeout_from_the_environment(tmp_path):
    loaded = load(tmp_path)
    assert (loaded["failure_limit"], loaded["cooloff_s"]) == (5, 1800)
    assert loaded["lockout"] == ["username", "ip_address"]
    loaded = load(
        tmp_path, LOGIN_FAILURE_LIMIT="10", LOGIN_COOLOFF_MINUTES="5",
        LOGIN_LOCKOUT_PARAMETERS="username, username+ip_address", SESSION_IDLE_TIMEOUT_S="900",
    )
    assert loaded["session_age"] == 900
    assert (loaded["failure_limit"], loaded["cooloff_s"]) == (10, 300)
    assert loaded["lockout"] == ["username", ["username", "ip_address"]]


def test_it_passes_the_deploy_check_silently(tmp_path):
    result = deploy_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert result.stderr == ""


def test_it_switches_https_off_only_when_told_to(tmp_path):
    loaded = load(tmp_path, ALLOW_PLAIN_HTTP="1")
    assert loaded["ssl_redirect"] is False and loaded["hsts"] == 0
    assert loaded["session_secure"] is False and loaded["csrf_secure"] is False
    assert loaded["csrf_httponly"] is True  # unrelated to the transport
    # The deploy check still says what is off, so the choice stays visible.
    warnings = deploy_check(tmp_path, ALLOW_PLAIN_HTTP="1").stderr
    assert "security.W004" in warnings and "security.W008" in warnings
