"""Moving the Image model into the pool app keeps an existing database and its data intact."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.migrating import leaves, migrate

# The last schema in which the reader-study app owned images.
BEFORE = [("pool", None), ("readerstudy", "0001_initial"), ("generation", "0001_initial")]


def _old_world(apps) -> dict:
    """Rows of every kind that points at an image, made through the old (historical) models."""
    User = apps.get_model("auth", "User")
    Image = apps.get_model("readerstudy", "Image")
    Study = apps.get_model("readerstudy", "Study")
    StudyCase = apps.get_model("readerstudy", "StudyCase")
    Assignment = apps.get_model("readerstudy", "Assignment")
    ReadingSlot = apps.get_model("readerstudy", "ReadingSlot")
    Reading = apps.get_model("readerstudy", "Reading")
    GeneratorModel = apps.get_model("generation", "GeneratorModel")
    GenerationJob = apps.get_model("generation", "GenerationJob")
    GeneratedImage = apps.get_model("generation", "GeneratedImage")
    images = [
        Image.objects.create(
            public_id=f"image-{n}",
            truth=truth,
            modality="CXR",
            finding="normal",
            source="old",
            sha256=f"{n:064x}",
            original=f"originals/{n}.png",
            original_format="png",
            original_width=40,
            original_height=30,
            display=f"display/{n}.png",
            provenance={"n": n},
        )
        for n, truth in enumerate(["real", "synthetic", "real"])
    ]
    reader = User.objects.create(username="reader")
    study = Study.objects.create(public_id="study-1", title="Old study", seed=7)
    cases = [StudyCase.objects.create(study=study, image=image) for image in images]
    assignment = Assignment.objects.create(study=study, reader=reader)
    now = timezone.now()
    for position, case in enumerate(cases, start=1):
        slot = ReadingSlot.objects.create(
            assignment=assignment, case=case, position=position, token=f"token-{position}"
        )
        Reading.objects.create(
            slot=slot, answer="fake" if position == 2 else "real", served_at=now, answered_at=now
        )
    generator = GeneratorModel.objects.create(name="old-ddpm", kind="ddpm", modality="CXR")
    job = GenerationJob.objects.create(generator=generator, count=1, study=study)
    GeneratedImage.objects.create(job=job, index=0, image=images[1])
    return {"image_ids": [image.pk for image in images], "study_id": study.pk}


@pytest.mark.django_db(transaction=True)
def test_it_migrates_a_database_with_images_studies_and_readings_without_losing_a_row():
    old = migrate(BEFORE)
    world = _old_world(old)
    image_type = old.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="readerstudy", model="image"
    )[0]

    new = migrate(leaves())

    Image = new.get_model("pool", "Image")
    assert Image._meta.db_table == "readerstudy_image"
    assert sorted(Image.objects.values_list("pk", flat=True)) == world["image_ids"]
    assert Image.objects.get(public_id="image-1").truth == "synthetic"
    assert Image.objects.get(public_id="image-2").provenance == {"n": 2}
    StudyCase = new.get_model("readerstudy", "StudyCase")
    assert StudyCase._meta.get_field("image").related_model is Image
    cases = StudyCase.objects.filter(study_id=world["study_id"]).order_by("pk")
    assert [case.image.public_id for case in cases] == ["image-0", "image-1", "image-2"]
    Reading = new.get_model("readerstudy", "Reading")
    answers = Reading.objects.order_by("slot__position")
    assert [(r.slot.case.image.truth, r.answer) for r in answers] == [
        ("real", "real"),
        ("synthetic", "fake"),
        ("real", "real"),
    ]
    GeneratedImage = new.get_model("generation", "GeneratedImage")
    assert GeneratedImage._meta.get_field("image").related_model is Image
    assert GeneratedImage.objects.get().image.public_id == "image-1"
    # Permissions and admin history follow the model: its content type was relabelled.
    ContentType = new.get_model("contenttypes", "ContentType")
    assert ContentType.objects.get(pk=image_type.pk).app_label == "pool"


@pytest.mark.django_db(transaction=True)
def test_it_moves_the_model_without_touching_the_database():
    executor = MigrationExecutor(connection)
    for app, name in [
        ("pool", "0001_initial"),
        ("readerstudy", "0002_image_moved_to_pool"),
        ("generation", "0002_image_moved_to_pool"),
    ]:
        out = StringIO()
        call_command("sqlmigrate", app, name, stdout=out)
        statements = [line for line in out.getvalue().splitlines() if line.strip()]
        assert not [
            s for s in statements if not s.startswith("--") and s not in ("BEGIN;", "COMMIT;")
        ]
    assert executor.loader.graph.leaf_nodes()


@pytest.mark.django_db
def test_it_has_no_model_change_without_a_migration():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
