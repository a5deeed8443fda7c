"""The migrations of fair case selection, on PostgreSQL with rows in place: free-text findings
become vocabulary entries (one per spelling in any case), generated images get their indexed
provenance, and existing studies keep reader feedback off."""

import pytest
from django.utils import timezone

from tests.migrating import leaves, migrate

BEFORE = [
    ("pool", "0001_initial"),
    ("generation", "0003_job_balance_sources"),
    ("readerstudy", "0004_study_designs"),
]


def _image(Image, n: int, finding: str, truth: str = "real", provenance=None):
    return Image.objects.create(
        public_id=f"image-{n}", truth=truth, modality="CXR", finding=finding, source="old",
        sha256=f"{n:064x}", original=f"originals/{n}.png", original_format="png",
        original_width=40, original_height=30, display=f"display/{n}.png",
        provenance=provenance or {}, created_at=timezone.now(),
    )


def _old_world(apps) -> dict:
    Image = apps.get_model("pool", "Image")
    spellings = ["Pneumonia", "Pneumonia", "pneumonia", " PNEUMONIA ", "normal", "   ", ""]
    images = {n: _image(Image, n, finding) for n, finding in enumerate(spellings)}
    provenance = {
        "generator": "ddpm",
        "model": "old-ddpm",
        "checkpoint": "/nowhere/old-ddpm/checkpoints/step-000002",
        "weights_sha256": "ab" * 32,
    }
    fake = _image(Image, 50, "pneumonia", truth="synthetic", provenance=provenance)
    generator = apps.get_model("generation", "GeneratorModel").objects.create(
        name="old-ddpm", kind="ddpm", modality="CXR"
    )
    job = apps.get_model("generation", "GenerationJob").objects.create(
        generator=generator, count=1
    )
    apps.get_model("generation", "GeneratedImage").objects.create(job=job, index=0, image=fake)
    study = apps.get_model("readerstudy", "Study").objects.create(
        public_id="study-1", title="Old study", seed=7
    )
    return {"images": images, "fake": fake.pk, "job": job.pk, "study": study.pk}


@pytest.mark.django_db(transaction=True)
def test_it_maps_free_text_findings_and_fills_generation_provenance():
    world = _old_world(migrate(BEFORE))

    new = migrate(leaves())

    Image = new.get_model("pool", "Image")
    Finding = new.get_model("pool", "Finding")
    assert sorted(Finding.objects.values_list("name", flat=True)) == ["Pneumonia", "normal"]
    by_n = {image.public_id: image.finding for image in Image.objects.all()}
    assert [by_n[f"image-{n}"] for n in range(7)] == [
        "Pneumonia", "Pneumonia", "Pneumonia", "Pneumonia", "normal", "", ""
    ]
    fake = Image.objects.get(pk=world["fake"])
    assert fake.finding == "Pneumonia"
    assert (fake.generator, fake.generation_job) == ("old-ddpm", world["job"])
    assert fake.checkpoint == "checkpoints/step-000002@sha256:" + "ab" * 8
    real = Image.objects.get(public_id="image-0")
    assert (real.generator, real.checkpoint, real.generation_job) == ("", "", None)
    Study = new.get_model("readerstudy", "Study")
    assert Study.objects.get(pk=world["study"]).reader_feedback is False


@pytest.mark.django_db(transaction=True)
def test_it_migrates_back_and_forth_keeping_the_images():
    world = _old_world(migrate(BEFORE))
    migrate(leaves())
    old = migrate(BEFORE)
    Image = old.get_model("pool", "Image")
    assert Image.objects.count() == len(world["images"]) + 1
    assert Image.objects.get(public_id="image-2").finding == "Pneumonia"
    new = migrate(leaves())
    assert new.get_model("pool", "Finding").objects.count() == 2
