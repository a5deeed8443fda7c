"""The Docker image's tree, built without Docker: the Dockerfile's COPY lines, applied to the
build context as Docker would (its .dockerignore read by docker-py, the library Docker's own
Python client builds contexts with), must hold every package the project declares, and Django
must pass `check --deploy` and `collectstatic` in production mode from that tree alone."""

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from docker.utils.build import exclude_paths
from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_steps() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    steps, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip("\\").strip() + " "
        if line.rstrip().endswith("\\"):
            continue
        if pending.strip():
            instruction, _, arguments = pending.strip().partition(" ")
            steps.append((instruction.upper(), arguments.strip()))
        pending = ""
    return steps


def context_files() -> list[str]:
    """The build context as the daemon receives it: every file not excluded by .dockerignore."""
    ignore = ROOT / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.exists() else [])
        if line.strip() and not line.startswith("#")
    ]
    # Despite its name, docker-py's exclude_paths answers the paths that go into the context.
    included = exclude_paths(str(ROOT), patterns)
    return sorted(relative for relative in included if (ROOT / relative).is_file())


def build_tree(target: Path) -> Path:
    """Apply WORKDIR and COPY to an empty root under `target`; the image's WORKDIR folder."""
    workdir = PurePosixPath("/")
    files = context_files()
    for instruction, arguments in dockerfile_steps():
        if instruction == "WORKDIR":
            workdir = workdir / arguments
        elif instruction in {"COPY", "ADD"}:
            parts = shlex.split(arguments)
            unsupported = f"unsupported: {instruction} {arguments}"
            assert not any(p.startswith("--") for p in parts), unsupported
            *sources, destination = parts
            base = target / (workdir / destination).relative_to("/")
            for source in sources:
                prefix = os.path.normpath(source).lstrip("./")
                for relative in files:
                    if prefix and relative != prefix and not relative.startswith(prefix + "/"):
                        continue
                    inner = relative[len(prefix):].lstrip("/") if prefix else relative
                    if relative == prefix and not destination.endswith("/"):
                        out = base
                    else:
                        out = base / (inner or Path(relative).name)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / relative, out)
    return target / workdir.relative_to("/")


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("image"))


def declared_packages(where: Path) -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return set(find_packages(where=str(where), include=include))


def production_env(tree: Path, var: Path) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    env.update(
        DJANGO_SETTINGS_MODULE="spotthefake.settings",
        PYTHONPATH=str(tree),
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="studies.example.org",
        SPOTTHEFAKE_VAR_DIR=str(var),
    )
    return env


def test_it_copies_every_declared_package(image_tree):
    in_repo = declared_packages(ROOT)
    assert {"spotthefake", "access", "readerstudy", "generation", "evaluation"} <= in_repo
    assert declared_packages(image_tree) == in_repo
    for needed in ("manage.py", "pyproject.toml", "templates/base.html", "static/css/site.css"):
        assert (image_tree / needed).is_file(), needed


def test_it_leaves_tests_caches_and_secrets_out(image_tree):
    assert not (image_tree / "tests").exists()
    assert not (image_tree / ".git").exists()
    assert not list(image_tree.rglob("__pycache__"))
    assert not list(image_tree.rglob(".env"))


def test_it_passes_the_deploy_check_from_the_copied_tree(image_tree, tmp_path):
    env = production_env(image_tree, tmp_path / "var")
    # Every app must come from the copied tree, not from the developer's checkout.
    where = subprocess.run(
        [sys.executable, "-c", "import django, json; django.setup(); from django.apps import apps;"
         "print(json.dumps({a.label: a.path for a in apps.get_app_configs()}))"],
        cwd=image_tree, env=env, capture_output=True, text=True, timeout=300,
    )
    assert where.returncode == 0, where.stderr
    for label in ("access", "readerstudy", "generation", "evaluation"):
        assert Path(json.loads(where.stdout)[label]).is_relative_to(image_tree), label
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=image_tree, env=env, capture_output=True, text=True, timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "System check identified no issues (0 silenced)."
    assert check.stderr == ""


def test_it_collects_the_static_files_from_the_copied_tree(image_tree, tmp_path):
    env = production_env(image_tree, tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=image_tree, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    collected = tmp_path / "var" / "staticfiles"
    assert (collected / "staticfiles.json").is_file()  # the manifest storage of production
    assert list(collected.glob("css/percent.*.css"))
    assert list(collected.glob("admin/css/base.*.css"))
