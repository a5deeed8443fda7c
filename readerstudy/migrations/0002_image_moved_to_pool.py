"""The Image model now belongs to the pool app; its table keeps its name.

State only: the foreign key column of a study case already points at ``readerstudy_image``,
which is the pool's table too, so the database is left exactly as it is.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("readerstudy", "0001_initial"),
        ("pool", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="studycase",
                    name="image",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="study_cases", to="pool.image"),
                ),
                migrations.DeleteModel(name="Image"),
            ],
        ),
    ]
