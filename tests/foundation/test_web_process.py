"""The web process never loads the ML stack: pages read rows and files, only workers run models.

Checked in a fresh interpreter (this test process has long imported torch through other
tests): import the WSGI application, resolve every URL pattern, render the staff and reader
pages of a small study and a trained model, then look at ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from generation.models import GenerationJob, GeneratorModel, JobStatus, TrainingRun
from tests.factories import StaffFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder, case_url, slots_of

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "sklearn", "torchmetrics", "peft")

SCRIPT = r"""
import json, sys
from spotthefake.wsgi import application  # noqa: F401 - what gunicorn imports
from django.urls import URLPattern, URLResolver, get_resolver

def walk(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns)
        else:
            yield pattern

views = [pattern.callback for pattern in walk(get_resolver().url_patterns)]

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pages = json.loads(sys.argv[1])
heavy = set(sys.argv[2].split(","))

def loaded():
    return sorted({name.split(".")[0] for name in sys.modules} & heavy)

statuses, loaded_by = {}, {"(import and resolve)": loaded()}
for username, urls in pages.items():
    if username.startswith("_"):
        continue
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    if username == pages["_staff"][0]:
        urls = urls + [
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            for model in admin.site._registry
        ]
    for url in urls:
        before = loaded()
        statuses[url] = client.get(url).status_code
        if loaded() != before:
            loaded_by[url] = sorted(set(loaded()) - set(before))
print(json.dumps({
    "views": len(views),
    "statuses": statuses,
    "loaded": loaded(),
    "loaded_by": {url: names for url, names in loaded_by.items() if names},
}))
"""


def _pages(staff, reader, study, slot, generators, run, job) -> dict[str, list[str]]:
    staff_pages = [
        "/admin/",
        "/staff/generation/train/",
        "/staff/generation/generate/",
        "/staff/generation/jobs/",
        *[f"/staff/generation/models/{generator.pk}/" for generator in generators],
        f"/staff/generation/jobs/training/{run.pk}/",
        f"/staff/generation/jobs/generation/{job.pk}/",
        "/staff/import/",
        f"/staff/studies/{study.public_id}/results/",
        f"/admin/generation/generatormodel/{generators[0].pk}/change/",
        f"/admin/readerstudy/study/{study.pk}/change/",
    ]
    reader_pages = [
        "/",
        f"/studies/{study.public_id}/",
        case_url(slot),
        f"{case_url(slot)}image.png",
    ]
    return {staff.username: staff_pages, reader.username: reader_pages, "_staff": [staff.username]}


@pytest.mark.django_db(transaction=True)
def test_it_serves_every_page_without_loading_the_ml_stack(settings):
    staff, reader = StaffFactory(is_superuser=True), UserFactory()
    study = StudyBuilder()(readers=[reader], n_real=2, n_synthetic=2)
    generator = GeneratorModel.objects.create(
        name="m",
        kind="ddpm",
        findings=["normal"],
        trained_steps=10,
        config={"findings": ["normal"]},
    )
    lora = GeneratorModel.objects.create(
        name="sd", kind="stable-diffusion", base_checkpoint=str(settings.MEDIA_ROOT / "sd")
    )
    api = GeneratorModel.objects.create(name="api", kind="image-api")
    run = TrainingRun.objects.create(
        generator=generator, total_steps=10, status=JobStatus.SUCCEEDED
    )
    job = GenerationJob.objects.create(
        generator=generator, count=1, finding="normal", status=JobStatus.RUNNING,
        started_at=timezone.now(),
    )  # fmt: skip
    pages = _pages(
        staff, reader, study, slots_of(study, reader)[0], [generator, lora, api], run, job
    )
    database = connection.settings_dict
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spotthefake.settings_test",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "ALLOWED_HOSTS": "testserver",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),  # the images the factories wrote
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(pages), ",".join(HEAVY)],
        check=False,
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["views"] > 20
    assert {url: code for url, code in report["statuses"].items() if code != 200} == {}
    assert len(report["statuses"]) >= 20
    assert report["loaded"] == [], report["loaded_by"]
