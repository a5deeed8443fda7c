"""Celery tasks of the reader study."""

from __future__ import annotations

from spotthefake.celery import project_task


@project_task()
def build_presentation(*, study_pk: int) -> int | None:
    """Build the missing derivatives of the study's cases; returns how many were built.

    Safe to run twice: derivatives are keyed by (image, profile) and built only when missing.
    A build error is kept for opening, which refuses with the reason.
    """
    from pool.imaging.pipeline import PresentationError
    from readerstudy.models import Study
    from readerstudy.services.presentation import build_study_derivatives

    study = Study.objects.filter(pk=study_pk).first()
    if study is None:
        return None
    try:
        return build_study_derivatives(study)
    except PresentationError:
        return 0
