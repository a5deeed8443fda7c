"""The pool takes over the Image model from the reader-study app.

The table was created by ``readerstudy.0001_initial`` as ``readerstudy_image`` and keeps that
name (``Meta.db_table``), so this migration changes Django's state only: no row, column, index
or constraint is touched. The content type is relabelled so that permissions and admin history
follow the model.
"""

from django.db import migrations, models

import pool.models


def _relabel_content_type(apps, schema_editor, *, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if ContentType.objects.using(db).filter(app_label=new, model="image").exists():
        return
    ContentType.objects.using(db).filter(app_label=old, model="image").update(app_label=new)


def forwards(apps, schema_editor) -> None:
    _relabel_content_type(apps, schema_editor, old="readerstudy", new="pool")


def backwards(apps, schema_editor) -> None:
    _relabel_content_type(apps, schema_editor, old="pool", new="readerstudy")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        # The table this model lives in is created there.
        ("readerstudy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Image",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("public_id", models.CharField(default=pool.models.new_public_id, editable=False, max_length=32, unique=True)),
                        ("truth", models.CharField(choices=[("real", "Real"), ("synthetic", "Synthetic")], db_index=True, max_length=10)),
                        ("modality", models.CharField(choices=[("CXR", "Chest X-ray"), ("CT", "CT slice")], db_index=True, max_length=3)),
                        ("finding", models.CharField(blank=True, db_index=True, max_length=100)),
                        ("source", models.CharField(blank=True, help_text="Dataset or generator name.", max_length=200)),
                        ("sha256", models.CharField(help_text="SHA-256 of the file as received.", max_length=64)),
                        ("frame_index", models.PositiveIntegerField(default=0, help_text="Frame or slice within a multi-frame file; 0 otherwise.")),
                        ("original", models.FileField(max_length=255, upload_to=pool.models.original_upload_to)),
                        ("original_format", models.CharField(max_length=10)),
                        ("original_width", models.PositiveIntegerField()),
                        ("original_height", models.PositiveIntegerField()),
                        ("display", models.FileField(max_length=255, upload_to=pool.models.display_upload_to)),
                        ("provenance", models.JSONField(blank=True, default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "readerstudy_image",
                        "ordering": ["-created_at", "-id"],
                        "constraints": [models.UniqueConstraint(fields=("sha256", "frame_index"), name="image_unique_content")],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
