"""Fill the pool's new provenance fields (generator, checkpoint, generation job) of the images
generation jobs stored before they existed, from each image's job and provenance JSON."""

from django.db import migrations

BATCH = 500


def forwards(apps, schema_editor) -> None:
    # The label the statistics group checkpoints by (and new images are stored with).
    from readerstudy.results import checkpoint_label

    GeneratedImage = apps.get_model("generation", "GeneratedImage")
    Image = apps.get_model("pool", "Image")
    db = schema_editor.connection.alias
    slots = (
        GeneratedImage.objects.using(db)
        .filter(image__generation_job__isnull=True)
        .values_list("image_id", "job_id", "job__generator__name", "image__provenance")
        .order_by("image_id")
    )
    pending = []
    for image_id, job_id, generator, provenance in slots.iterator(chunk_size=BATCH):
        label = checkpoint_label(provenance or {})[:255]
        pending.append(Image(pk=image_id, generator=generator, checkpoint=label,
                             generation_job=job_id))
        if len(pending) >= BATCH:
            Image.objects.using(db).bulk_update(pending, ["generator", "checkpoint", "generation_job"])
            pending = []
    Image.objects.using(db).bulk_update(pending, ["generator", "checkpoint", "generation_job"])


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0003_job_balance_sources"),
        ("pool", "0002_image_generation_provenance"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
