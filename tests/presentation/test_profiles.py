"""A study's presentation: built before opening, all or nothing, frozen with the orders."""

import io

import pytest
from django.core.exceptions import ValidationError
from PIL import Image as PILImage

from pool.models import Modality
from readerstudy.models import StudyStatus
from readerstudy.models.presentation import Derivative, SourceResolution
from readerstudy.services.presentation import build_study_derivatives, profile_of, resolve_profile
from readerstudy.services.studies import StudyRefused, open_study
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


def test_it_builds_every_derivative_when_the_study_opens_and_freezes_the_profile(
    build_study, reader
):
    study = build_study(readers=[reader], open=False)
    profile = profile_of(study)
    profile.display_size = 128
    profile.save()
    open_study(study)
    profile.refresh_from_db()
    assert profile.is_frozen and profile.frozen_params["display_size"] == 128
    key = resolve_profile(study).key()
    assert Derivative.objects.filter(key=key).count() == study.cases.count()
    profile.display_size = 1024
    with pytest.raises(ValidationError):
        profile.full_clean()
    with pytest.raises(ValidationError):
        profile.save()


def test_it_leaves_the_study_closed_and_nothing_built_when_a_derivative_fails(
    build_study, reader
):
    study = build_study(readers=[reader], n_real=3, n_synthetic=3, open=False)
    broken = study.cases.order_by("id").last().image
    with broken.original.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n not a png at all")
    with pytest.raises(StudyRefused) as refused:
        open_study(study)
    assert broken.public_id in refused.value.message
    assert "could not be built" in refused.value.message
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT and not study.has_drawn_orders()
    assert not Derivative.objects.exists()  # the five good images were removed again
    assert not profile_of(study).is_frozen


def test_it_rebuilds_the_derivatives_when_a_draft_profile_changes(build_study):
    study = build_study(open=False)
    profile = profile_of(study)
    profile.display_size = 128
    profile.save()
    assert build_study_derivatives(study) == 4
    assert build_study_derivatives(study) == 0  # cached
    profile.display_size = 256
    profile.source_resolution_mode = SourceResolution.FIXED
    profile.source_resolution = 32
    profile.save()
    assert build_study_derivatives(study) == 4
    new = Derivative.objects.filter(key=resolve_profile(study).key())
    sizes = {PILImage.open(io.BytesIO(d.file.read())).size for d in new}
    assert sizes == {(256, 256)}


def test_it_matches_the_lowest_native_resolution_of_the_cases(build_study):
    study = build_study(open=False)
    profile = profile_of(study)
    profile.source_resolution_mode = SourceResolution.LOWEST
    profile.save()
    first = study.cases.first().image
    first.original_width, first.original_height = 300, 40
    first.save()
    assert resolve_profile(study).source_resolution == 48  # the others: 48 x 48
    profile.aspect = "crop"
    profile.save()
    assert resolve_profile(study).source_resolution == 40


def test_it_serves_ct_cases_in_every_preset_window_with_the_same_length_and_headers(
    client, build_study, reader
):
    study = build_study(readers=[reader], n_real=1, n_synthetic=1, open=False)
    for case in study.cases.all():
        case.image.modality = Modality.CT
        case.image.save()
    open_study(study)
    client.force_login(reader)
    for slot in slots_of(study, reader):
        bodies = {}
        for window in ("study", "lung", "mediastinum", "bone", "brain"):
            response = client.get(f"/read/{slot.token}/window/{window}.png")
            assert response.status_code == 200
            assert response["Content-Type"] == "image/png"
            bodies[window] = response.content
        assert len({len(body) for body in bodies.values()}) == 1
        assert bodies["study"] == bodies["lung"] == client.get(f"/read/{slot.token}/image.png").content
        assert bodies["lung"] != bodies["mediastinum"]
        assert client.get(f"/read/{slot.token}/window/soft.png").status_code == 404


def test_it_answers_every_window_of_an_x_ray_with_its_one_derivative(client, build_study, reader):
    study = build_study(readers=[reader], n_real=1, n_synthetic=1)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    plain = client.get(f"/read/{slot.token}/image.png").content
    assert client.get(f"/read/{slot.token}/window/bone.png").content == plain


def test_it_builds_a_draft_studys_derivatives_in_a_task_safe_to_run_twice(build_study):
    from readerstudy.tasks import build_presentation

    study = build_study(open=False)
    assert build_presentation(study_pk=study.pk) == 4
    assert build_presentation(study_pk=study.pk) == 0
    assert build_presentation(study_pk=study.pk + 1000) is None


def test_it_enqueues_a_rebuild_when_a_draft_profile_is_saved(
    build_study, django_capture_on_commit_callbacks, monkeypatch
):
    from readerstudy import tasks

    queued = []
    monkeypatch.setattr(tasks.build_presentation, "delay", lambda **kw: queued.append(kw))
    study = build_study(open=False)
    with django_capture_on_commit_callbacks(execute=True):
        profile = profile_of(study)
        profile.display_size = 1024
        profile.save()
    assert {"study_pk": study.pk} in queued
