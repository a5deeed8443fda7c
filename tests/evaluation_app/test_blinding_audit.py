import pytest
from django.urls import reverse

from evaluation.models import BlindingAudit, EvaluationStatus
from evaluation.services import current_audit, run_blinding_audit
from evaluation.tasks import audit_study_blinding
from pool.imaging import make_display_png
from pool.models import Truth
from readerstudy.models import ReadingSlot, StudyCase, StudyStatus
from readerstudy.services.studies import StudyRefused, open_study
from tests.evaluation_app.helpers import image_with_display, leaky_study, pixels, twin_study

pytestmark = pytest.mark.django_db


def test_it_refuses_to_open_a_leaky_study_until_a_researcher_acknowledges(reader, admin_client):
    study = leaky_study(readers=[reader])

    with pytest.raises(StudyRefused) as refusal:
        open_study(study)
    message = refusal.value.message
    assert "blinding audit" in message and "AUC 1.00" in message
    # The sizes differ (64 vs 80 px) but readers get the profile's derivatives, all one size:
    # the size can no longer leak; the brightness still does.
    assert "width" not in message and "mean_intensity" in message
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT
    assert not ReadingSlot.objects.filter(assignment__study=study).exists()  # nothing left over

    audit = current_audit(study)
    assert audit is not None and "mean_intensity" in {c["name"] for c in audit.blocking}
    assert all(c["remedy"] for c in audit.blocking)
    page = admin_client.get(reverse("admin:readerstudy_study_change", args=[study.pk]))
    assert b"Blinding audit" in page.content and b"Acknowledge audit" in page.content

    response = admin_client.post(
        reverse("admin:readerstudy_study_acknowledge_audit", args=[study.pk]),
        {"note": "sizes are normalised by the viewer"},
    )
    assert response.status_code == 302
    audit.refresh_from_db()
    assert audit.acknowledged_by.is_superuser
    assert audit.acknowledged_at is not None
    assert audit.acknowledgement_note == "sizes are normalised by the viewer"
    admin_client.post(
        reverse("admin:readerstudy_study_acknowledge_audit", args=[study.pk]),
        {"note": "a second look"},
    )
    audit.refresh_from_db()
    assert audit.acknowledgement_note == "sizes are normalised by the viewer"  # not overwritten
    assert [a.note for a in audit.acknowledgements.all()] == [
        "sizes are normalised by the viewer",
        "a second look",
    ]

    open_study(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN
    page = admin_client.get(reverse("admin:readerstudy_study_change", args=[study.pk]))
    assert b"Acknowledged by" in page.content


def test_it_refuses_an_acknowledgement_without_a_note(reader, admin_client):
    study = leaky_study(readers=[reader])
    admin_client.post(reverse("admin:readerstudy_study_acknowledge_audit", args=[study.pk]), {})
    assert not current_audit(study).is_acknowledged
    with pytest.raises(StudyRefused):
        open_study(study)


def test_it_opens_a_study_whose_two_halves_look_alike(reader):
    study = twin_study(readers=[reader])
    open_study(study)
    audit = current_audit(study)
    assert audit.status == EvaluationStatus.SUCCEEDED and audit.blocking == []
    assert audit.report["n_synthetic"] == 10 and audit.report["n_real"] == 10
    assert max(c["auc"]["estimate"] for c in audit.report["cues"] if c["auc"]["estimate"]) == pytest.approx(0.5)


def test_it_audits_exactly_the_headers_the_reader_image_view_sends(reader):
    study = twin_study(n=2)
    audit = run_blinding_audit(study)
    names = {cue["name"] for cue in audit.report["cues"]}
    assert {"header:content-type", "header:cache-control", "header:content-length"} <= names
    assert not ReadingSlot.objects.exists()  # the throwaway reader and slots were rolled back


def test_it_does_not_block_on_chance_in_a_tiny_study(reader):
    study = leaky_study(n=3, readers=[reader])
    open_study(study)  # too few images to tell a leak from chance: shown, not blocking
    audit = current_audit(study)
    assert audit.blocking == [] and "do not block" in audit.report["small_sample_note"]


def test_it_audits_again_when_the_cases_change():
    study = twin_study(n=3)
    first = audit_study_blinding(study_pk=study.pk)
    assert audit_study_blinding(study_pk=study.pk) == first  # same cases: nothing new
    assert BlindingAudit.objects.filter(study=study).count() == 1

    StudyCase.objects.create(
        study=study,
        image=image_with_display(Truth.SYNTHETIC, make_display_png(pixels(999), 64)),
    )
    assert current_audit(study) is None  # stale
    second = audit_study_blinding(study_pk=study.pk)
    assert second != first
    assert audit_study_blinding(study_pk=study.pk) == second
    assert BlindingAudit.objects.get(pk=second).report["n_synthetic"] == 4


def test_it_enqueues_the_audit_when_a_case_is_saved(django_capture_on_commit_callbacks, monkeypatch):
    calls = []
    monkeypatch.setattr(audit_study_blinding, "delay", lambda **kw: calls.append(kw))
    study = twin_study(n=2)
    with django_capture_on_commit_callbacks(execute=True):
        StudyCase.objects.filter(study=study).first().delete()
    assert calls == [{"study_pk": study.pk}]


def test_it_leaves_a_deleted_study_alone():
    assert audit_study_blinding(study_pk=987654) is None


def test_it_audits_again_when_cases_are_added_in_bulk(django_capture_on_commit_callbacks):
    """bulk_create sends no post_save: the reader study's cases_added signal stands in for it."""
    from readerstudy.services.studies import bulk_add_cases
    from tests.factories import ImageFactory, StudyFactory

    study = StudyFactory()
    images = [ImageFactory() for _ in range(3)]
    with django_capture_on_commit_callbacks() as callbacks:
        bulk_add_cases(study, [StudyCase(study=study, image=image) for image in images])
    assert len(callbacks) == 1  # one audit for the whole batch, published on commit
    assert callbacks[0].__qualname__.startswith("_enqueue_audit")
