"""Cross-study truth leaks: a practice case reveals its image's truth to that reader.

An image a reader has been given as a practice case in any study (truth shown after the answer)
is never a regular case for that reader in another study, and an image a reader has been given
as a regular case is never their practice case elsewhere (it would reveal a truth they answered
blind, or will). "Given" means a stored slot in the reader's drawn order, shown or not yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from pool.models import Image
from readerstudy.models import ReadingSlot, Study


def truth_leaks(study: Study, reader_ids: Iterable[int]) -> dict[int, list[str]]:
    """Reader id -> public ids of the images that would leak truth in ``study``."""
    cases = list(study.cases.values_list("image_id", "is_practice"))
    practice = {image for image, is_practice in cases if is_practice}
    regular = {image for image, is_practice in cases if not is_practice}
    leaks: dict[int, set[int]] = {}
    elsewhere = (
        ReadingSlot.objects.filter(assignment__reader_id__in=list(reader_ids))
        .exclude(assignment__study=study)
        .values_list("assignment__reader_id", "case__image_id", "is_practice")
        .distinct()
    )
    for reader_id, image_id, was_practice in elsewhere:
        if (was_practice and image_id in regular) or (not was_practice and image_id in practice):
            leaks.setdefault(reader_id, set()).add(image_id)
    leaked = set().union(*leaks.values()) if leaks else set()
    names = dict(Image.objects.filter(id__in=leaked).values_list("id", "public_id"))
    return {reader: sorted(names[i] for i in images) for reader, images in leaks.items()}


def leak_message(study: Study, leaks: dict[int, list[str]]) -> str:
    from django.contrib.auth import get_user_model

    users = dict(get_user_model().objects.filter(id__in=leaks).values_list("id", "username"))
    parts = [
        f"{users.get(reader, reader)}: images {', '.join(ids)}"
        for reader, ids in sorted(leaks.items())
    ]
    return (
        f"“{study}” would show a reader an image whose truth they were shown as a practice case "
        f"in another study, or a practice case they read blind elsewhere ({'; '.join(parts)}). "
        "Remove those images from this study, or do not assign those readers."
    )


def refuse_truth_leaks(study: Study, reader_ids: Iterable[int] | None = None) -> None:
    """Raise StudyRefused naming the images when a reader's orders would leak truth."""
    from readerstudy.services.studies import StudyRefused

    if reader_ids is None:
        reader_ids = study.assignments.filter(order_drawn_at__isnull=True).values_list(
            "reader_id", flat=True
        )
    leaks = truth_leaks(study, reader_ids)
    if leaks:
        raise StudyRefused(leak_message(study, leaks))
