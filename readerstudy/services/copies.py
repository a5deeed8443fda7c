"""Duplicating a study: a new draft with the same settings, presentation and cases.

What a copy takes: every option and design setting of the study (not its seed: the copy draws
new orders from a new seed, so a reader who reads both does not meet the same sequence), its
instructions, its presentation profile (unfrozen) and its cases with their practice flags.
What it never takes: status and dates, readers' orders, readings and their revisions. Reader
assignments are copied only when asked (``with_readers``), as plain assignments without an
order; a reader's order is drawn when the copy opens, like any study's.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from readerstudy.models import Assignment, PresentationProfile, Study, StudyCase
from readerstudy.services.studies import bulk_add_cases

# Fields that belong to this study alone, or are made fresh for the copy.
_NOT_COPIED = {
    "id", "public_id", "title", "status", "seed", "created_by", "created_at", "updated_at",
    "opened_at", "closed_at",
}
_PROFILE_NOT_COPIED = {
    "id", "study", "frozen_key", "frozen_params", "frozen_at", "has_ct", "updated_at",
}
TITLE_MAX = Study._meta.get_field("title").max_length


def copy_title(title: str) -> str:
    """“<title> (copy)”, or “(copy 2)”, “(copy 3)”… when that title is taken."""
    number = 1
    while True:
        suffix = " (copy)" if number == 1 else f" (copy {number})"
        candidate = title[: TITLE_MAX - len(suffix)] + suffix
        if not Study.objects.filter(title=candidate).exists():
            return candidate
        number += 1


def _fields(instance, skip: set[str]) -> dict:
    return {
        field.attname: getattr(instance, field.attname)
        for field in instance._meta.concrete_fields
        if field.name not in skip
    }


def duplicate_study(
    study: Study, *, user: AbstractBaseUser | None = None, with_readers: bool = False
) -> Study:
    """The new draft copy of ``study`` (see the module docstring for what it takes)."""
    with transaction.atomic():
        copy = Study.objects.create(
            **_fields(study, _NOT_COPIED),
            title=copy_title(study.title),
            created_by=user if getattr(user, "pk", None) else None,
        )
        profile = PresentationProfile.objects.filter(study=study).first()
        if profile is not None:
            PresentationProfile.objects.create(study=copy, **_fields(profile, _PROFILE_NOT_COPIED))
        cases = study.cases.order_by("id").values_list("image_id", "is_practice")
        bulk_add_cases(
            copy,
            [StudyCase(study=copy, image_id=image, is_practice=practice) for image, practice in cases],
        )
        if with_readers:
            readers = study.assignments.values_list("reader_id", flat=True)
            Assignment.objects.bulk_create(
                [Assignment(study=copy, reader_id=reader) for reader in readers]
            )
    return copy
