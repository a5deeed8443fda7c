"""The managed finding vocabulary: one canonical spelling per finding, synonyms merged.

Every image entering the pool goes through ``pool.storing``, which calls :func:`canonical`, so
whatever an import, the staff import page or a generator says ("Pneumonia", "pneumonia ",
a synonym) ends up as the vocabulary entry's name. A finding seen for the first time becomes
a new entry with the spelling it came with. Images keep the name as text (``Image.finding``),
so everything that filters, groups or exports findings reads them as before; renaming and
merging here rewrite the images' text in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

# tidy lives with the models, whose clean() uses it too; importable from here as before.
from pool.models import Finding, FindingSynonym, Image, tidy


def lookup(text: str | None) -> Finding | None:
    """The vocabulary entry named or also called ``text`` (any case), or None."""
    name = tidy(text)
    if not name:
        return None
    finding = Finding.objects.filter(name__iexact=name).first()
    if finding is None:
        synonym = FindingSynonym.objects.filter(name__iexact=name).select_related("finding")
        finding = next((entry.finding for entry in synonym[:1]), None)
    return finding


def canonical_name(text: str | None) -> str:
    """The canonical spelling of ``text`` if the vocabulary knows it, else ``text`` tidied.

    For filters: it creates nothing, and an unknown finding simply matches no image.
    """
    finding = lookup(text)
    return finding.name if finding is not None else tidy(text)


def canonical(text: str | None) -> str:
    """The canonical spelling of ``text``, adding it to the vocabulary when it is new.

    "" stays "" (no finding). Safe against a concurrent import adding the same finding.
    """
    name = tidy(text)[: Finding._meta.get_field("name").max_length]
    if not name:
        return ""
    for _attempt in range(2):
        finding = lookup(name)
        if finding is not None:
            return finding.name
        try:
            with transaction.atomic():
                return Finding.objects.create(name=name).name
        except IntegrityError:
            continue  # another import added it meanwhile: look it up again
    raise RuntimeError(f"could not add the finding {name!r} to the vocabulary")


def relabel(old_name: str, new_name: str) -> int:
    """Images saying ``old_name`` (any case) say ``new_name`` from now on; returns how many."""
    return Image.objects.filter(finding__iexact=old_name).update(finding=new_name)


def _ensure_synonym(finding: Finding, name: str) -> None:
    if name.lower() != finding.name.lower():
        if not FindingSynonym.objects.filter(name__iexact=name).exists():
            FindingSynonym.objects.create(finding=finding, name=name)


def rename(finding: Finding, old_name: str) -> int:
    """After ``finding`` was renamed from ``old_name``: images follow, the old name stays a synonym.

    Returns how many images were relabelled.
    """
    with transaction.atomic():
        FindingSynonym.objects.filter(finding=finding, name__iexact=finding.name).delete()
        _ensure_synonym(finding, old_name)
        return relabel(old_name, finding.name)


def adopt_synonyms(finding: Finding, synonyms: Iterable[FindingSynonym]) -> int:
    """After ``synonyms`` of ``finding`` were saved (added or respelled): images saying one of
    them carry the finding's name from now on. Returns how many images were relabelled."""
    with transaction.atomic():
        return sum(relabel(synonym.name, finding.name) for synonym in synonyms)


def merge(target: Finding, others: Iterable[Finding]) -> int:
    """Fold ``others`` into ``target``: their names and synonyms become synonyms of it and their
    images carry its name. Returns how many images were relabelled."""
    relabelled = 0
    with transaction.atomic():
        for other in others:
            if other.pk == target.pk:
                continue
            names = [other.name, *other.synonyms.values_list("name", flat=True)]
            other.delete()  # its synonyms go with it, freeing their names
            for name in names:
                _ensure_synonym(target, name)
                relabelled += relabel(name, target.name)
    return relabelled


def findings_in_use() -> list[str]:
    """Every canonical finding name, and any finding an image carries that the vocabulary does
    not know (a row written around ``pool.storing``), once each in any case, sorted."""
    names = {name.lower(): name for name in Finding.objects.values_list("name", flat=True)}
    carried = Image.objects.exclude(finding="").values_list("finding", flat=True).distinct()
    for name in carried.order_by("finding"):
        names.setdefault(name.lower(), name)
    return sorted(names.values(), key=str.lower)
