"""Indexed provenance of generated images (generator, checkpoint, generation job) and an index
on ``source``, so the reader study's case rules can filter on them. The generation app fills
them for images it stored before (``generation.0004_image_provenance``)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("pool", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="image",
            name="checkpoint",
            field=models.CharField(blank=True, db_index=True, help_text="Generator weights (generated images).", max_length=255),
        ),
        migrations.AddField(
            model_name="image",
            name="generation_job",
            field=models.PositiveIntegerField(blank=True, db_index=True, help_text="Generation job number (generated images).", null=True),
        ),
        migrations.AddField(
            model_name="image",
            name="generator",
            field=models.CharField(blank=True, db_index=True, help_text="Generator model (generated images).", max_length=100),
        ),
        migrations.AlterField(
            model_name="image",
            name="source",
            field=models.CharField(blank=True, db_index=True, help_text="Dataset or generator name.", max_length=200),
        ),
    ]
