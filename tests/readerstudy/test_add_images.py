"""Other apps add pool images to a study through the reader study's service."""

import pytest

from pool.models import Truth
from readerstudy.services.studies import Balance, add_images, open_study
from tests.factories import AssignmentFactory, ImageFactory, StudyCaseFactory, StudyFactory

pytestmark = pytest.mark.django_db


def case_ids(study) -> list[int]:
    return sorted(study.cases.values_list("image_id", flat=True))


def test_it_adds_images_not_yet_in_the_study():
    study = StudyFactory()
    already = StudyCaseFactory(study=study).image
    new = [ImageFactory(truth=Truth.SYNTHETIC) for _ in range(2)]
    outcome = add_images(study.pk, [already.pk, *(image.pk for image in new)])
    assert (outcome.study_title, outcome.added, outcome.balancing) == (study.title, 2, 0)
    assert case_ids(study) == sorted([already.pk, *(image.pk for image in new)])


def test_it_balances_with_matching_real_images_as_far_as_the_pool_has_them():
    study = StudyFactory()
    synthetic = [ImageFactory(truth=Truth.SYNTHETIC, finding="pneumonia") for _ in range(3)]
    real = [ImageFactory(truth=Truth.REAL, finding="pneumonia") for _ in range(2)]
    ImageFactory(truth=Truth.REAL, finding="normal")
    outcome = add_images(
        study.pk, [image.pk for image in synthetic], balance=Balance("CXR", "Pneumonia")
    )
    assert (outcome.added, outcome.balancing) == (3, 2)
    assert case_ids(study) == sorted(image.pk for image in [*synthetic, *real])


def test_it_adds_nothing_once_orders_are_drawn():
    case = StudyCaseFactory()
    AssignmentFactory(study=case.study)
    open_study(case.study)
    assert case.study.has_drawn_orders()
    outcome = add_images(case.study.pk, [ImageFactory().pk])
    assert outcome.frozen and outcome.added == 0
    assert case_ids(case.study) == [case.image_id]


def test_it_says_when_the_study_is_gone():
    assert add_images(10**9, [ImageFactory().pk]).study_title is None
