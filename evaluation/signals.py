"""A study's cases changed: audit it again once the change is committed. A generation job
succeeded: evaluate its images."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from generation.signals import generation_succeeded
from readerstudy.models import StudyCase
from readerstudy.signals import cases_added

logger = logging.getLogger(__name__)


def _enqueue_audit(study_pk: int) -> None:
    """On commit; a broker that is down is logged, never an error: opening audits anyway."""
    from evaluation.tasks import audit_study_blinding

    def publish() -> None:
        try:
            audit_study_blinding.delay(study_pk=study_pk)
        except Exception:
            logger.exception("could not enqueue the blinding audit of study %s", study_pk)

    transaction.on_commit(publish)


@receiver(post_save, sender=StudyCase, dispatch_uid="evaluation-audit-on-case-save")
def _case_saved(sender, instance: StudyCase, raw=False, **kwargs) -> None:
    if not raw:
        _enqueue_audit(instance.study_id)


@receiver(post_delete, sender=StudyCase, dispatch_uid="evaluation-audit-on-case-delete")
def _case_deleted(sender, instance: StudyCase, **kwargs) -> None:
    _enqueue_audit(instance.study_id)


@receiver(cases_added, dispatch_uid="evaluation-audit-on-cases-added")
def _cases_added(sender, study, **kwargs) -> None:
    _enqueue_audit(study.pk)


@receiver(generation_succeeded, dispatch_uid="evaluation-evaluate-finished-job")
def _generation_succeeded(sender, job_pk: int, **kwargs) -> None:
    # Sent after the job's commit already, so the task is published at once.
    from evaluation.quality import publish_evaluation

    publish_evaluation(job_pk)


def _profile_saved(sender, instance, raw=False, **kwargs) -> None:
    if not raw and not instance.is_frozen:
        _enqueue_audit(instance.study_id)


def connect_profile_signal() -> None:
    from readerstudy.models.presentation import PresentationProfile

    post_save.connect(
        _profile_saved, sender=PresentationProfile, dispatch_uid="evaluation-audit-on-profile"
    )


connect_profile_signal()
