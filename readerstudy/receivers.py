"""Receivers of the reader study. A draft study's profile changed: rebuild its derivatives once the change is committed."""

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from readerstudy.models.presentation import PresentationProfile

logger = logging.getLogger(__name__)


@receiver(post_save, sender=PresentationProfile, dispatch_uid="presentation-rebuild-on-save")
def _profile_saved(sender, instance: PresentationProfile, raw=False, update_fields=None, **kw):
    if raw or instance.is_frozen:
        return
    from readerstudy.tasks import build_presentation

    study_pk = instance.study_id

    def publish() -> None:
        try:
            build_presentation.delay(study_pk=study_pk)
        except Exception:  # a broker that is down: opening builds anyway
            logger.exception("could not enqueue the derivatives of study %s", study_pk)

    transaction.on_commit(publish)
