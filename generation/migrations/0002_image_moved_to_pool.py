"""A generated image's row points at the pool's Image (same table as before; state only)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0001_initial"),
        ("pool", "0001_initial"),
    ]

    # The reader-study app drops its Image from the state there; nothing may still point at it.
    run_before = [("readerstudy", "0002_image_moved_to_pool")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="generatedimage",
                    name="image",
                    field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="generated_by", to="pool.image"),
                ),
            ],
        ),
    ]
