"""The managed finding vocabulary: findings and their synonyms, unique in any case."""

import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("pool", "0002_image_generation_provenance"),
    ]

    operations = [
        migrations.CreateModel(
            name="Finding",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="The canonical spelling images carry.", max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": [django.db.models.functions.text.Lower("name")],
                "constraints": [models.UniqueConstraint(django.db.models.functions.text.Lower("name"), name="finding_unique_name_ci", violation_error_message="A finding of this name (in any case) already exists.")],
            },
        ),
        migrations.CreateModel(
            name="FindingSynonym",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("finding", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="synonyms", to="pool.finding")),
            ],
            options={
                "ordering": [django.db.models.functions.text.Lower("name")],
                "constraints": [models.UniqueConstraint(django.db.models.functions.text.Lower("name"), name="finding_synonym_unique_name_ci", violation_error_message="This synonym (in any case) is already given.")],
            },
        ),
    ]
