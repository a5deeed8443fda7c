"""Every free-text finding the pool's images carry becomes a vocabulary entry.

Spellings that differ only in case or whitespace ("Pneumonia", "pneumonia ", "PNEUMONIA") are
one finding: the entry takes the spelling most images use (ties: the first in sorted order)
and every image of the group is relabelled to it; a finding of only blanks becomes none. Going back keeps the images' (now canonical)
findings and removes the vocabulary.
"""

from collections import Counter, defaultdict

from django.db import migrations
from django.db.models import Count


def _tidy(text: str) -> str:
    return " ".join(text.split())


def forwards(apps, schema_editor) -> None:
    Image = apps.get_model("pool", "Image")
    Finding = apps.get_model("pool", "Finding")
    db = schema_editor.connection.alias
    groups: dict[str, Counter] = defaultdict(Counter)  # lower-case tidy key -> raw spellings
    counts = (
        Image.objects.using(db).exclude(finding="").values_list("finding")
        .annotate(n=Count("id")).order_by()
    )
    for raw, n in counts:
        if _tidy(raw):
            groups[_tidy(raw).lower()][raw] += n
    Image.objects.using(db).filter(finding__regex=r"^\s+$").update(finding="")
    for spellings in groups.values():
        tidied: Counter = Counter()
        for raw, n in spellings.items():
            tidied[_tidy(raw)] += n
        name = min(tidied.items(), key=lambda item: (-item[1], item[0]))[0]
        Finding.objects.using(db).create(name=name)
        Image.objects.using(db).filter(finding__in=list(spellings)).exclude(finding=name).update(
            finding=name
        )


def backwards(apps, schema_editor) -> None:
    apps.get_model("pool", "Finding").objects.using(schema_editor.connection.alias).all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("pool", "0003_finding_vocabulary"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
