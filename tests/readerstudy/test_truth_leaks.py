"""An image whose truth a reader saw as a practice case is never their regular case elsewhere."""

import pytest

from readerstudy.models import StudyCase
from readerstudy.services.studies import StudyRefused, assign_reader, open_study
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


def test_it_refuses_to_open_a_study_with_a_readers_former_practice_image(
    build_study, reader, other_reader
):
    first = build_study(readers=[reader], n_practice=2)
    practice_image = first.cases.filter(is_practice=True).first().image
    second = build_study(readers=[reader, other_reader], open=False)
    StudyCase.objects.create(study=second, image=practice_image)
    with pytest.raises(StudyRefused) as refused:
        open_study(second)
    assert practice_image.public_id in refused.value.message
    assert reader.username in refused.value.message
    assert other_reader.username not in refused.value.message
    second.refresh_from_db()
    assert not second.is_open and slots_of(second, other_reader) == []


def test_it_refuses_a_former_regular_image_as_practice_and_assigning_to_an_open_study(
    build_study, reader, other_reader
):
    first = build_study(readers=[reader])
    regular_image = first.cases.filter(is_practice=False).first().image
    second = build_study(readers=[other_reader], open=False)
    StudyCase.objects.create(study=second, image=regular_image, is_practice=True)
    open_study(second)  # the other reader never saw it
    with pytest.raises(StudyRefused) as refused:
        assign_reader(second, reader)
    assert regular_image.public_id in refused.value.message
    assert not second.assignments.filter(reader=reader).exists()
