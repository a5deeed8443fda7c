"""Optional score feedback: a reader sees their own figures once the study is closed."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("readerstudy", "0004_study_designs"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="reader_feedback",
            field=models.BooleanField(default=False, help_text="Once the study is closed, show each reader their own score (accuracy, and how many fakes and real images they recognised); never anyone else's."),
        ),
    ]
