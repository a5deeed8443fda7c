"""Every command the README shows runs as written in a fresh shell (issue 15).

A fresh shell: `bash -c COMMAND` from the repository root with only PATH (no virtualenv on it),
HOME and the demo's settings file, written by the demo's own code and pointing at the test
database. Commands with placeholders (NAME, [--option], a|b, ...) or that run for minutes (a
server, a worker, training, a benchmark) run with --help; `make` commands as dry runs (the
target exists and its recipe expands); the others for real.

`.venv` in a command is this test run's virtualenv (the same folder when the suite runs through
`make test`).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from spotthefake import demo

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
VENV = Path(sys.prefix)
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"

FENCED = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")
ASSIGNMENTS = r"(?:[A-Z_]+=\S+\s+)*"
COMMAND = re.compile(rf"^{ASSIGNMENTS}(?:\./manage\s|make\s|\.venv/bin/)")
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z0-9]+\b(?!=)|[\[|…]|\.\.\.")
# Subcommands and programs that run for minutes or until stopped.
LONG = re.compile(r"run_demo|runserver|train_model|generate_images|evaluate_images|celery|bench/")


def readme_commands() -> list[str]:
    """The shell commands of the README: its `sh` blocks' lines, and inline code that starts
    like one (`./manage ...`, `make ...`, `.venv/bin/...`)."""
    found = []
    for block in FENCED.findall(README):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                found.append(" ".join(line.split()))
    for span in INLINE.findall(FENCED.sub("", README)):
        span = " ".join(span.split())
        if COMMAND.match(span):
            found.append(span)
    return list(dict.fromkeys(found))


def as_run(command: str) -> str:
    """The command as this test runs it (see the module's docstring)."""
    command = command.replace(".venv/", f"{VENV}/")
    prefix = re.match(ASSIGNMENTS, command).group(0)
    words = command[len(prefix) :].split()
    if words[0] == "make":
        return f"{prefix}make -n {' '.join(words[1:])} VENV={VENV}"
    if words[0] == "./manage" and (PLACEHOLDER.search(command) or LONG.search(words[1])):
        return f"{prefix}./manage {words[1]} --help"
    if PLACEHOLDER.search(command[len(prefix) :]) or LONG.search(command):
        return f"{command} --help"
    return command


def test_it_finds_the_readmes_commands():
    commands = readme_commands()
    assert "make demo" in commands
    assert any(command.startswith("./manage import_images") for command in commands)
    assert len([command for command in commands if command.startswith("./manage")]) >= 8
    # The form that needs an activated virtualenv and exported settings is gone.
    assert "python manage.py" not in README


def test_it_has_no_command_of_an_unknown_form():
    for line in FENCED.findall(README):
        for command in line.replace("\\\n", " ").splitlines():
            command = command.strip()
            assert not command or COMMAND.match(command + " "), command


@pytest.fixture
def fresh_shell(tmp_path, settings, monkeypatch) -> dict[str, str]:
    """The environment of a new shell after `make demo` pointed at the test database."""
    settings.VAR_DIR = tmp_path / "var"
    environ = {"PATH": FRESH_PATH, "HOME": str(tmp_path), "VENV": str(VENV)}
    values = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{values['PASSWORD']}" if values.get("PASSWORD") else ""
        monkeypatch.setenv(
            "DATABASE_URL",
            f"postgres://{values['USER']}{password}@{values['HOST'] or '127.0.0.1'}:"
            f"{values['PORT'] or 5432}/{values['NAME']}",
        )
    else:  # the embedded default: the demo's own SQLite file, migrated as `make demo` does
        monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    env_file = tmp_path / ".env.demo"
    demo.write_env_file(env_file)
    environ["SPOTTHEFAKE_ENV_FILE"] = str(env_file)
    if connection.vendor != "postgresql":
        run(environ, "./manage migrate --verbosity 0")
    return environ


def run(environ: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=environ, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", readme_commands(), ids=lambda command: command[:60])
def test_it_runs_the_readmes_command_in_a_fresh_shell(fresh_shell, command):
    result = run(fresh_shell, as_run(command))
    assert result.returncode == 0, f"{as_run(command)}\n{result.stdout[-2000:]}{result.stderr}"


@pytest.mark.django_db(transaction=True)
def test_it_refuses_without_the_demo_settings_and_says_what_to_do(fresh_shell, tmp_path):
    bare = {**fresh_shell, "SPOTTHEFAKE_ENV_FILE": str(tmp_path / "missing")}
    result = run(bare, "./manage check")
    assert result.returncode != 0
    assert "make demo" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_it_lets_the_shell_win_over_the_demo_settings(fresh_shell):
    code = "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"
    from_file = run(fresh_shell, f'./manage shell -c "{code}"')
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.split()[-2:] == ["True", demo.read_env_file(
        Path(fresh_shell["SPOTTHEFAKE_ENV_FILE"]))["SECRET_KEY"]]  # fmt: skip
    # A configured deployment (its own SECRET_KEY) never reads the demo's DEBUG=1.
    deployed = run(
        {**fresh_shell, "SECRET_KEY": "own", "SPOTTHEFAKE_VAR_DIR": fresh_shell["HOME"]},
        f'./manage shell -c "{code}"',
    )
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.split()[-2:] == ["False", "own"]


def test_it_keeps_the_secret_key_and_the_file_private(tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    path = tmp_path / ".env.demo"
    first = demo.write_env_file(path)
    second = demo.write_env_file(path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 50
    assert second["DEBUG"] == "1" and second["SPOTTHEFAKE_VAR_DIR"] == str(tmp_path / "var")
    assert path.stat().st_mode & 0o777 == 0o600
    assert ".env.demo" in (ROOT / ".gitignore").read_text().splitlines()
