"""Keeping a study's balance: where the real images come from."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0002_image_moved_to_pool"),
    ]

    operations = [
        migrations.AddField(
            model_name="generationjob",
            name="balance_sources",
            field=models.JSONField(blank=True, default=list, help_text="Keeping the balance: the real images come only from these sources (datasets); empty: from any source."),
        ),
    ]
